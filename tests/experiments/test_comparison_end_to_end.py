"""A real tiny comparison (training, evaluation, probe, report) and the colours experiment."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from losslab.experiments import evaluate_run, experiment_from_dict, run_comparison
from losslab.report import build_report

pytestmark = pytest.mark.slow

_FAST = {"val_every": 3, "sample_every": 0, "grad_share_every": 2, "log_every": 1,
         "accelerator": "cpu", "data": {"val_items": 6}}


def test_tiny_comparison_writes_every_file_and_the_report(tmp_path: Path) -> None:
    experiment = experiment_from_dict({
        "name": "tiny", "question": "Does the pipeline run?", "task": "reconstruct",
        "data": "bundled", "model_options": {"width": 8, "depth": 2, "code_channels": 4},
        "budget": {"steps": 4, "batch_size": 4, "crop_size": 16, "lr": 0.01},
        "train_options": _FAST, "entries": [{"loss": "l1"}, {"loss": "l1(luma)"}],
    })
    assert run_comparison(experiment, tmp_path, progress=False) == tmp_path
    assert not (tmp_path / "report").exists()  # the runner writes results; the report is apart
    index = build_report(tmp_path)
    assert index == tmp_path / "report" / "index.html"
    for name in ("experiment.yaml", "comparison.json", "metrics.json", "metrics.csv",
                 "probe.json", "probe.csv", "probe.png"):
        assert (tmp_path / name).is_file(), name
    for run in ("l1", "l1-luma"):
        run_dir = tmp_path / "runs" / run
        for name in ("DONE", "config.yaml", "metrics.json", "metrics.csv",
                     "evaluation/predictions.pt", "evaluation/spectrum.json",
                     "evaluation/neighbours.json"):
            assert (run_dir / name).is_file(), f"{run}/{name}"
    table = json.loads((tmp_path / "metrics.json").read_text())
    assert set(table) == {"l1", "l1(luma)"}
    assert isinstance(table["l1"]["psnr"], float) and 0 <= table["l1"]["retrieval_top1"] <= 1
    assert len(list(csv.DictReader((tmp_path / "metrics.csv").open()))) == 2
    probe = json.loads((tmp_path / "probe.json").read_text())
    assert set(probe) == {"l1", "l1(luma)"}
    text = index.read_text()
    assert "Does the pipeline run?" in text and 'src="grid.png"' in text

    # evaluate_run (losslab evaluate) is repeatable and gives the same numbers
    again = evaluate_run(tmp_path / "runs" / "l1")
    assert again["psnr"] == pytest.approx(table["l1"]["psnr"])
    # the report can be rebuilt from disk alone
    assert build_report(tmp_path) == index


def test_colour_losses_leave_exactly_their_blind_spots_free(tmp_path: Path) -> None:
    """Reduced colors experiment: l1(red) gets red right and not green/blue, l1(luma) luma but
    not chroma, plain l1 is balanced."""
    experiment = experiment_from_dict({
        "name": "colors-small", "question": "colours", "task": "reconstruct", "data": "bundled",
        "model": "autoencoder", "model_options": {"width": 16, "depth": 2, "code_channels": 8},
        "budget": {"steps": 120, "batch_size": 32, "crop_size": 32, "lr": 0.003},
        "train_options": {**_FAST, "val_every": 120, "grad_share_every": 0, "log_every": 20},
        "entries": [{"loss": "l1"}, {"loss": "l1(luma)"}, {"loss": "l1(red)"}],
    })
    run_comparison(experiment, tmp_path, probe=False, progress=False)
    table = json.loads((tmp_path / "metrics.json").read_text())
    red = table["l1(red)"]
    assert red["err_red"] < 0.5 * min(red["err_green"], red["err_blue"]), red
    luma = table["l1(luma)"]
    assert luma["err_luma"] < 0.5 * luma["err_chroma"], luma
    plain = table["l1"]
    errors = [plain["err_red"], plain["err_green"], plain["err_blue"]]
    assert max(errors) < 1.6 * min(errors), plain
    # CIEDE2000 is reported too, and sees the freedoms: the colours l1(red) and l1(luma) leave
    # free cost more CIELAB units than plain l1's balanced errors
    assert plain["err_deltae"] < min(red["err_deltae"], luma["err_deltae"]), table
