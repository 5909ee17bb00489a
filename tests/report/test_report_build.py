"""The HTML report built from a synthetic comparison directory (no training)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from losslab.report import NotAComparisonError, best_per_metric, build_report, load_comparison


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.scripts = 0
        self.best_cells: list[tuple[str, str]] = []
        self._row_label: str | None = None
        self._in_best = False
        self._in_row_header = False
        self.column = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag in ("link", "script"):
            self.scripts += 1
        if tag == "td" and "best" in (values.get("class") or ""):
            self._in_best = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_best = False

    def handle_data(self, data: str) -> None:
        if self._in_best:
            self.best_cells.append(data)


def test_report_is_self_contained_and_every_image_exists(built_report: Path) -> None:
    index = built_report
    assert index.parent.name == "report" and index.name == "index.html"
    text = index.read_text(encoding="utf-8")
    collector = _Collector()
    collector.feed(text)
    assert collector.scripts == 0, "no external CSS/JS (and no script at all)"
    assert not re.search(r"https?://", text.replace("http://www.w3.org", "")), "no network URL"
    expected = {"grid.png", "colour_errors.png", "spectrum.png", "perception_distortion.png",
                "training.png", "probe.png", "neighbours.png"}
    assert set(collector.images) == expected
    for source in collector.images:
        image = Image.open(index.parent / source)
        assert image.width > 100 and image.height > 100
        pixels = image.convert("L").getextrema()
        assert pixels[0] < pixels[1], f"{source} is a blank image"
    assert text.count("<figcaption>") == len(expected)
    assert text.count("What to look for") == len(expected)


def test_report_shows_question_settings_and_flags_random_weights(built_report: Path) -> None:
    text = built_report.read_text(encoding="utf-8")
    assert "Which synthetic run is sharpest?" in text
    assert 'class="warning"' in text and "randomly initialised" in text
    assert "random (seed 0)" in text
    for setting in ("colorize", "dead_leaves", "5 steps, batch 2, 16x16 crops"):
        assert setting in text
    assert "probed without the adversarial term" in text
    assert "2 hypotheses" in text


def test_no_random_warning_without_random_weights(comparison_dir: Path) -> None:
    summary = json.loads((comparison_dir / "comparison.json").read_text())
    summary["perceptual_weights"] = "imagenet"
    for run in summary["runs"]:
        run["weights"] = ["ImageNet (torchvision VGG19)"] if run["weights"] else []
    (comparison_dir / "comparison.json").write_text(json.dumps(summary))
    text = build_report(comparison_dir).read_text(encoding="utf-8")
    assert 'class="warning"' not in text
    assert "ImageNet (torchvision VGG19)" in text


def test_best_value_per_metric_follows_its_direction(built_report: Path) -> None:
    runs = load_comparison(built_report.parent.parent).runs
    best = best_per_metric(runs)
    assert best["psnr"] == {"sharp"}  # higher is better: 30 > 28 > 25
    assert best["err_luma"] == {"sharp"}  # lower is better
    assert best["hf_ratio"] == {"sharp"}  # closest to 1: |0.95-1| < |1.3-1| < |0.4-1|
    assert best["chroma_ratio"] == {"blurry", "sharp", "two guesses"}  # a three-way tie
    assert "lpips" not in best  # no values
    text = built_report.read_text(encoding="utf-8")
    collector = _Collector()
    collector.feed(text)
    assert "30" in collector.best_cells and "25" not in collector.best_cells
    assert "↑" in text and "↓" in text and "→1" in text
    assert "LPIPS weights are missing (synthetic test)" in text  # the reason for the dash


def test_rebuilding_replaces_stale_figures(comparison_dir: Path) -> None:
    report = comparison_dir / "report"
    report.mkdir()
    (report / "old.png").write_bytes(b"stale")
    build_report(comparison_dir)
    assert not (report / "old.png").exists()


def test_missing_evaluation_files_leave_notes_not_crashes(comparison_dir: Path) -> None:
    for run in (comparison_dir / "runs").iterdir():
        for name in ("evaluation", "logs"):
            for path in sorted((run / name).rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
        (run / "metrics.json").unlink()
    (comparison_dir / "probe.json").unlink()
    text = build_report(comparison_dir).read_text(encoding="utf-8")
    assert "No run has evaluation/predictions.pt yet" in text
    assert "No training logs found" in text
    assert "No probe results" in text
    assert "<img" not in text


def test_not_a_comparison_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotAComparisonError, match="no runs/ folder"):
        build_report(tmp_path)
    (tmp_path / "config.yaml").write_text("task: reconstruct\n")
    with pytest.raises(NotAComparisonError, match="single run: use losslab evaluate"):
        build_report(tmp_path)


def test_baseline_rows_and_hypothesis_scores_are_shown(comparison_dir: Path) -> None:
    import json

    from losslab.report import build_report
    from losslab.report.data import load_comparison

    summary = json.loads((comparison_dir / "comparison.json").read_text())
    summary["runs"][0]["baseline"] = True  # "sharp" plays an untrained baseline here
    (comparison_dir / "comparison.json").write_text(json.dumps(summary))
    metrics_path = comparison_dir / "runs" / "two-guesses" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["psnr_plausible"] = 31.5
    metrics["per_hypothesis"] = {"psnr": [28.0, 12.25], "psnr_plausible": [31.5, 13.0],
                                 "nearest_counts": [[5, 1, 0, 0], [0, 2, 2, 2]]}
    metrics["per_image"] = {"psnr": [27.0, 29.0, None, 26.5, 30.0, 28.0]}
    metrics_path.write_text(json.dumps(metrics))

    assert [run.baseline for run in load_comparison(comparison_dir).runs] == [True, False, False]
    html = build_report(comparison_dir).read_text()
    assert '<tr class="baseline"><th>sharp<span class="tag">no training</span>' in html
    assert "none: untrained baseline" in html
    assert "2 runs, identical but for the loss, and 1 untrained baseline." in html
    assert "12.25" in html and "0 / 2 / 2 / 2" in html  # per-hypothesis table
    assert "psnr_plausible" in html and "nearest plausible answer" in html
    assert "score (mean probability)" not in html  # no score head, no column
    assert (comparison_dir / "report" / "psnr_per_image.png").is_file()

    metrics["per_hypothesis"] |= {"score_mean": [0.8125, 0.1875], "score_accuracy": 0.625}
    metrics_path.write_text(json.dumps(metrics))
    html = build_report(comparison_dir).read_text()
    assert "score (mean probability)" in html
    assert '<td class="num">0.8125</td>' in html and '<td class="num">0.1875</td>' in html
    assert "nearest to the target in 62.5% of the" in html


def test_metamer_section_embeds_the_runners_figure(comparison_dir: Path) -> None:
    from losslab.synthesis import write_metamers

    write_metamers(["l1", "mse", "gdl"], "astronaut", comparison_dir, size=16, starts=["noise"],
                   steps=5, labels=["sharp", "blurry", "edges"], name="metamers",
                   extra={"notes": {"blurry": "shown as 'mse': adversarial terms left out"}})
    text = build_report(comparison_dir).read_text(encoding="utf-8")
    section = text[text.index('<section id="metamers">'):]
    section = section[: section.index("</section>")]
    assert "What each loss considers equal" in section
    assert 'src="metamers.png"' in section and "What to look for" in section
    assert "<code>astronaut</code> at 16x16 px; starts: noise; 5 Adam steps" in section
    # The quote is escaped (Jinja2 writes &#39;, html.escape wrote &#x27;: the same character).
    assert re.search(r"shown as &#(39|x27);mse&#(39|x27);: adversarial terms left out", section)
    assert (comparison_dir / "report" / "metamers.png").is_file()
    # the row synthesised with the automatic continuation says so; plain rows get no note
    assert re.search(r"edges.{0,80}3 x 5 steps, the loss first on blurred copies \(sigma 5 px",
                     section, re.S)
    assert "continuation over scale" in section and section.count("3 x 5 steps") == 1


def test_metamer_section_without_files_or_after_an_error(comparison_dir: Path) -> None:
    text = build_report(comparison_dir).read_text(encoding="utf-8")
    assert "No loss metamers (metamers.png / metamers.json)" in text
    (comparison_dir / "metamers.json").write_text(json.dumps({"error": "boom"}))
    text = build_report(comparison_dir).read_text(encoding="utf-8")
    assert "No metamers: the synthesis failed (boom)" in text
