"""The samples section of the report: a comparison with an MSE entry and a stochastic entry,
written by the evaluation code itself (``write_evaluation``), read back from disk only."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from losslab.experiments.evaluate import write_evaluation
from losslab.metrics.samples import ideal_mean_error
from losslab.report import build_report, load_comparison, sections


def _futures(inputs: int = 3, size: int = 16) -> torch.Tensor:
    """``(N, 4, 3, size, size)``: a coloured 4x4 square at four non-overlapping places."""
    answers = torch.zeros(inputs, 4, 3, size, size)
    colour = torch.tensor([1.0, 0.5, 0.2])[:, None, None]
    for k, (y, x) in enumerate([(1, 1), (1, 10), (10, 1), (10, 10)]):
        answers[:, k, :, y : y + 4, x : x + 4] = colour
    return answers


def _run(directory: Path, name: str, loss: str) -> Path:
    run = directory / "runs" / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"task": "predict_next", "loss": loss,
                                                     "name": name, "steps": 5}))
    (run / "DONE").write_text("{}")
    return run


@pytest.fixture
def comparison(tmp_path: Path) -> Path:
    answers = _futures()
    targets = answers[:, 0]
    inputs = torch.zeros_like(targets)
    inputs[..., 5:9, 5:9] = 0.7  # the shape where it was
    write_evaluation(_run(tmp_path, "mse", "mse"), inputs, answers.mean(dim=1), targets,
                     plausible=answers)
    ideal = torch.cat([answers, answers.flip(1)], dim=1)  # 8 samples: each future twice
    write_evaluation(_run(tmp_path, "sampler", "mse"), inputs, ideal[:, 0], targets,
                     plausible=answers, samples=ideal, sample_seed=0)
    ghost = answers.mean(dim=1, keepdim=True).repeat(1, 8, 1, 1, 1) * 0.9
    write_evaluation(_run(tmp_path, "ghost", "mse"), inputs, ghost[:, 0], targets,
                     plausible=answers, samples=ghost, sample_seed=0)
    runs = [{"label": "mse", "run_dir": "mse", "loss": "mse"},
            {"label": "cvae", "run_dir": "sampler", "loss": "mse + kl"},
            {"label": "ghost sampler", "run_dir": "ghost", "loss": "mse + kl"}]
    (tmp_path / "comparison.json").write_text(json.dumps({"runs": runs}))
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(
        {"name": "future", "question": "?", "task": "predict_next", "data": "moving_shapes",
         "budget": {"steps": 5}, "entries": [{"loss": "mse"}]}))
    return tmp_path


def test_samples_section_as_data(comparison: Path) -> None:
    runs = load_comparison(comparison).runs
    assert [run.stochastic for run in runs] == [False, True, True]
    section = sections.samples_section(runs, comparison)
    assert section.shown and section.src == "samples.png" and section.reference == "mse"
    assert (comparison / "samples.png").is_file() and section.inputs == [1, 2]
    keys = [c.key for c in section.columns]
    assert keys[:3] == ["psnr_best_of_n", "psnr_plausible_best_of_n", "psnr_sample_mean"]
    ideal, ghost = section.rows
    coverage = keys.index("mode_coverage")
    assert ideal.cells[coverage].value == 4.0 and ghost.cells[coverage].value == 0.0
    assert ideal.cells[coverage].best and not ghost.cells[coverage].best
    # the ideal sampler's mean of 8 samples is exactly the futures' mean, i.e. MSE's output
    assert ideal.to_mse == pytest.approx(0.0, abs=1e-7)
    assert ideal.to_exact_mean == pytest.approx(0.0, abs=1e-7)
    assert ideal.ideal == pytest.approx(ideal_mean_error(_futures(), 8), abs=1e-9)
    assert ghost.to_mse == pytest.approx(float((_futures().mean(dim=1) * 0.1).square().mean()
                                               .sqrt()), rel=1e-5)
    assert section.mse_to_exact_mean == pytest.approx(0.0, abs=1e-7)
    assert ideal.per_sample_key == "psnr_plausible" and ideal.per_sample == "exact"
    assert ideal.count == 8 and "sample 0" in section.definition
    # the main metrics table leaves the sample rows to this section
    main = [c.key for c in sections.metrics_section(runs).columns]
    assert "mode_coverage" not in main and "psnr" in main


def test_sample_titles_name_the_answer_reached() -> None:
    answers = _futures(inputs=1)[0]
    draws = torch.stack([answers[2], answers.mean(dim=0), answers[0] * 0.8])
    titles = sections._sample_titles(draws, answers, answers[0], 8)
    assert titles[0] == "1: answer 3\nexact"
    assert titles[1].startswith("2: no answer\n") and titles[2].startswith("3: answer 1\n")
    expected = 10 * math.log10(1 / float((answers[0] * 0.2).square().mean()))
    assert titles[2].endswith(f"{expected:.1f} dB")


def test_report_page_shows_the_strip_the_table_and_the_mse_comparison(comparison: Path) -> None:
    text = build_report(comparison).read_text()
    start = text.index('<section id="samples">')
    part = text[start : text.index("</section>", start)]
    assert 'src="samples.png"' in part and "Each sample should be sharp" in part
    assert "for validation inputs 1, 2," in " ".join(part.split())
    assert "one sample per input" in part and "mode_coverage" in part
    assert "mean of its samples ↔ mse output" in part
    assert (comparison / "report" / "samples.png").is_file()
    assert 'href="#samples"' in text


def test_no_samples_section_without_stochastic_runs(comparison: Path) -> None:
    summary = json.loads((comparison / "comparison.json").read_text())
    summary["runs"] = summary["runs"][:1]
    (comparison / "comparison.json").write_text(json.dumps(summary))
    assert not sections.samples_section(load_comparison(comparison).runs, comparison).shown
    assert '<section id="samples">' not in build_report(comparison).read_text()
