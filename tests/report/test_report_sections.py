"""Each section of the report, as data (report/sections.py) and as rendered HTML.

The synthetic comparison of ``conftest.py`` is read back section by section: the data functions
must carry the numbers of the files on disk, and the page must show them, escape user text and
say what is missing instead of failing.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import jinja2
import pytest
import yaml

from losslab.metrics import METRIC_TABLE
from losslab.report import build_report, load_comparison, metric_columns, render_page, sections
from losslab.report.build import environment, format_number

EVIL = "<script>alert('x')</script>"


def _section(text: str, anchor: str) -> str:
    """The HTML of one ``<section id=anchor>`` of the page."""
    start = text.index(f'<section id="{anchor}">')
    return text[start: text.index("</section>", start)]


def _cells(section_html: str) -> list[str]:
    """The text of every ``td``/``th`` cell, unescaped."""
    return [html.unescape(re.sub(r"<[^>]+>", "", c))
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", section_html, re.S)]


# -- data ------------------------------------------------------------------------------------


def test_metric_columns_are_the_single_table_of_directions_and_labels() -> None:
    columns = metric_columns()
    keys = [c.key for c in columns]
    assert keys[:2] == ["psnr", "psnr_plausible"] and len(set(keys)) == len(keys)
    by_key = {c.key: c for c in columns}
    assert (by_key["psnr"].direction, by_key["psnr"].arrow) == ("max", "↑")
    assert (by_key["lpips"].direction, by_key["lpips"].arrow) == ("min", "↓")
    assert (by_key["chroma_ratio"].direction, by_key["chroma_ratio"].arrow) == ("one", "→1")
    assert all(c.label for c in columns)
    # ... read from the one metric table of losslab.metrics (names, directions, labels)
    assert [(c.key, c.direction, c.label) for c in columns] == [
        (spec.name, spec.direction, spec.label) for spec in METRIC_TABLE]


def test_metrics_section_carries_the_numbers_on_disk(comparison_dir: Path) -> None:
    runs = load_comparison(comparison_dir).runs
    section = sections.metrics_section(runs)
    keys = [c.key for c in section.columns]
    # only metrics some run has, in table order (no ms_ssim, grad_ratio, retrieval_top1 here)
    assert keys == ["psnr", "ssim", "lpips", "hf_ratio", "err_red", "err_green", "err_blue",
                    "err_luma", "err_chroma", "chroma_ratio"]
    assert [row.label for row in section.rows] == ["sharp", "blurry", "two guesses"]
    for row, run in zip(section.rows, runs, strict=True):
        on_disk = json.loads((run.run_dir / "metrics.json").read_text())
        for column, cell in zip(section.columns, row.cells, strict=True):
            if column.key == "lpips":
                assert cell.value is None
                assert cell.reason == "LPIPS weights are missing (synthetic test)"
            else:
                assert cell.value == on_disk[column.key]
    psnr_best = [cell.best for row in section.rows for cell in row.cells[:1]]
    assert psnr_best == [True, False, False]
    assert section.unavailable == {"lpips": "LPIPS weights are missing (synthetic test)"}
    assert section.hypotheses == [] and section.has_plausible is False


def test_settings_header_and_runs_as_data(comparison_dir: Path) -> None:
    comparison = load_comparison(comparison_dir)
    header = sections.header(comparison)
    assert (header.title, header.trained, header.baselines) == ("synthetic", 3, 0)
    assert header.question == "Which synthetic run is sharpest?"
    settings = sections.settings(comparison)
    assert settings.budget == "5 steps, batch 2, 16x16 crops, lr 0.001"
    assert (settings.task, settings.data, settings.seed) == ("colorize", "dead_leaves", "0")
    assert settings.weights == "random (seed 0)" and settings.random_weights
    rows = sections.run_rows(comparison)
    assert [r.directory for r in rows] == ["runs/sharp", "runs/blurry", "runs/two-guesses"]
    assert rows[2].note == "2 hypotheses (winner-takes-all)"
    assert all(re.fullmatch(r"#[0-9a-f]{6}", r.colour) for r in rows)
    assert len({r.colour for r in rows}) == 3


def test_grid_and_figure_sections_name_their_files(comparison_dir: Path, tmp_path: Path) -> None:
    comparison = load_comparison(comparison_dir)
    page = sections.report_page(comparison, tmp_path)
    assert page.grid.src == "grid.png" and page.grid.crop == 4  # 16 px images: a quarter
    assert page.grid.input_text == "the luma-only input"
    assert page.grid.multi == ["two guesses"] and page.grid.not_evaluated == []
    assert (page.tradeoff.key, page.tradeoff.src) == ("hf_ratio", "perception_distortion.png")
    assert page.show_neighbours and page.neighbours == "neighbours.png"
    assert page.probe.notes == [("blurry", "probed without the adversarial term")]
    assert page.spread is None  # the fixture has no per-image PSNRs
    for name in ("grid.png", "colour_errors.png", "spectrum.png", "perception_distortion.png",
                 "training.png", "probe.png", "neighbours.png"):
        assert (tmp_path / name).is_file(), name


# -- rendered page -----------------------------------------------------------------------------


def test_every_section_shows_its_numbers(built_report: Path) -> None:
    text = built_report.read_text(encoding="utf-8")
    anchors = re.findall(r'<section id="([a-z]+)">', text)
    assert anchors == ["settings", "images", "metrics", "spread", "colour", "spectrum",
                       "tradeoff", "training", "probe", "metamers", "neighbours"]
    nav = re.search(r"<nav>(.*?)</nav>", text, re.S).group(1)
    assert re.findall(r'href="#([a-z]+)"', nav) == anchors[1:]
    assert "3 runs, identical but for the loss." in text

    settings = _cells(_section(text, "settings"))
    assert "5 steps, batch 2, 16x16 crops, lr 0.001" in settings
    assert "mse + 0.1*perceptual(weights=random)" in settings and "runs/two-guesses" in settings

    metrics = _section(text, "metrics")
    header = re.search(r"<thead>(.*?)</thead>", metrics, re.S).group(1)
    assert re.findall(r"<th title=\"[^\"]+\">([a-z_0-9]+)<span", header)[:4] == [
        "psnr", "ssim", "lpips", "hf_ratio"]
    rows = re.findall(r"<tr[^>]*><th>(.*?)</tr>", metrics.split("<tbody>")[1], re.S)
    sharp = _cells("<th>" + rows[0])
    # label, psnr, ssim (psnr / 40), lpips (missing), hf_ratio, err r/g/b/luma/chroma, chroma
    assert sharp == ["sharp", "30", "0.75", "—", "0.95", "0.02", "0.02", "0.02", "0.02",
                     "0.01", "0.8"]
    assert _cells("<th>" + rows[1])[:5] == ["blurry", "25", "0.625", "—", "0.4"]
    assert 'class="na" title="LPIPS weights are missing (synthetic test)"' in metrics
    assert '<td class="num best">30</td>' in metrics

    grid = _section(text, "images")
    assert "the first rows are the luma-only input and the target" in grid
    assert "yellow 4x4 box" in grid and "two guesses: one row per hypothesis" in grid
    assert "hf_ratio (high-frequency energy" in _section(text, "tradeoff")
    assert "No per-image PSNR in the runs' metrics.json" in _section(text, "spread")
    probe = _section(text, "probe")
    assert "<strong>blurry</strong>: probed without the adversarial term" in probe


def test_numbers_are_formatted_to_four_significant_digits() -> None:
    assert [format_number(v) for v in (30, 0.625, 1 / 3, 12345.6, 1000.0, float("nan"),
                                       True, "x")] == [
        "30", "0.625", "0.3333", "12346", "1000", "nan", "True", "x"]


def test_user_text_is_escaped_everywhere(comparison_dir: Path) -> None:
    """A run, loss, note, question or title named <script> shows as text, never as markup."""
    summary = json.loads((comparison_dir / "comparison.json").read_text())
    summary["runs"][1].update(label=EVIL, loss=f"mse + {EVIL}", note=EVIL, probe_note=EVIL)
    summary["runs"][2]["label"] = EVIL + " 2"
    (comparison_dir / "comparison.json").write_text(json.dumps(summary))
    experiment = yaml.safe_load((comparison_dir / "experiment.yaml").read_text())
    experiment.update(name=EVIL, question=EVIL, notes=EVIL, data=EVIL)
    (comparison_dir / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    metrics_path = comparison_dir / "runs" / "two-guesses" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["unavailable"]["lpips"] = EVIL
    metrics["notes"] = {"all": EVIL}
    metrics["per_hypothesis"] = {"psnr": [28.0, 12.25]}
    metrics_path.write_text(json.dumps(metrics))

    text = build_report(comparison_dir).read_text(encoding="utf-8")
    assert "<script" not in text
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    for anchor in ("settings", "images", "metrics", "probe"):
        assert escaped in _section(text, anchor), anchor
    assert f"<title>losslab: {escaped}</title>" in text
    assert f'<div class="question">{escaped}</div>' in text
    assert f"<code>mse + {escaped}</code>" in text  # the loss spec
    assert f"<strong>{escaped} 2</strong>" in _section(text, "metrics")  # hypothesis table
    assert f'title="{escaped}"' in _section(text, "metrics")  # the reason of a dash
    assert text.count("<script") == 0 and text.count("&lt;script&gt;") >= 10


def test_missing_data_notes_for_every_section(comparison_dir: Path) -> None:
    for run in ("blurry", "two-guesses"):
        (comparison_dir / "runs" / run / "evaluation" / "predictions.pt").unlink()
    (comparison_dir / "runs" / "blurry" / "DONE").unlink()
    for run in (comparison_dir / "runs").iterdir():
        (run / "evaluation" / "spectrum.json").unlink()
        for path in sorted((run / "logs").rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        metrics = json.loads((run / "metrics.json").read_text())
        for key in ("err_red", "err_green", "err_blue", "err_luma", "err_chroma", "hf_ratio"):
            metrics.pop(key)
        (run / "metrics.json").write_text(json.dumps(metrics))
    (comparison_dir / "probe.json").unlink()

    text = build_report(comparison_dir).read_text(encoding="utf-8")
    assert "Not evaluated yet: blurry, two guesses." in _section(text, "images")
    assert "blurry <span class=\"note\">(not finished)</span>" in _section(text, "settings")
    assert "No colour error metrics (err_red … err_chroma)" in _section(text, "colour")
    assert "No evaluation/spectrum.json in the runs." in _section(text, "spectrum")
    assert "PSNR or the perception metric is missing" in _section(text, "tradeoff")
    assert "No training logs found" in _section(text, "training")
    assert "No probe results (probe.json / probe.png)" in _section(text, "probe")
    assert "No loss metamers" in _section(text, "metamers")
    assert 'src="grid.png"' in text  # the one evaluated run still gets its grid
    assert text.count("<img") == 2  # grid and neighbours: nothing else has data


def test_no_metrics_at_all_says_which_command_makes_them(comparison_dir: Path) -> None:
    for run in (comparison_dir / "runs").iterdir():
        (run / "metrics.json").unlink()
    text = build_report(comparison_dir).read_text(encoding="utf-8")
    metrics = _section(text, "metrics")
    assert "No run has metrics yet" in metrics and "<code>losslab evaluate RUN_DIR</code>" in metrics
    assert 'class="metrics"' not in metrics


def test_the_page_inlines_the_packaged_css(built_report: Path) -> None:
    css = environment().loader.get_source(environment(), "report.css")[0]
    text = built_report.read_text(encoding="utf-8")
    assert f"<style>\n{css}" in text  # verbatim: the template engine leaves CSS alone
    assert "table.metrics td.best" in css


def test_a_misspelt_field_in_the_template_is_an_error(comparison_dir: Path,
                                                      tmp_path: Path) -> None:
    """StrictUndefined: a field the template reads but the data lacks fails loudly."""
    page = sections.report_page(load_comparison(comparison_dir), tmp_path)
    del page.header.__dict__["question"]
    with pytest.raises(jinja2.UndefinedError, match="question"):
        render_page(page)
