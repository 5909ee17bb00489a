"""A real tiny comparison over two seeds: the record, the spread, reuse, and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from losslab.experiments import experiment_from_dict, run_comparison
from losslab.report import build_report
from losslab.report.data import load_comparison
from losslab.report.sections import metrics_section, tradeoff

pytestmark = pytest.mark.slow

_FAST = {"val_every": 3, "sample_every": 0, "grad_share_every": 0, "log_every": 1,
         "accelerator": "cpu", "data": {"val_items": 6}}


def _experiment(**changes):
    values = {
        "name": "tiny", "question": "Do seeds differ?", "task": "reconstruct", "data": "bundled",
        "model_options": {"width": 8, "depth": 2, "code_channels": 4},
        "budget": {"steps": 4, "batch_size": 4, "crop_size": 16, "lr": 0.01},
        "train_options": _FAST, "entries": [{"loss": "l1"}, {"loss": "l1(luma)"}],
    }
    values.update(changes)
    return experiment_from_dict(values)


def _run_metrics(root: Path, run_dir: str) -> dict:
    return json.loads((root / "runs" / run_dir / "metrics.json").read_text())


def test_two_seeds_record_every_seed_with_its_spread_and_reuse_the_single_seed_runs(
        tmp_path: Path) -> None:
    one = tmp_path / "one"
    run_comparison(_experiment(), one, probe=False, metamers=False, progress=False)
    single = json.loads((one / "metrics.json").read_text())
    assert "seeds" not in single["l1"] and single["l1"]["run_dir"] == "l1"  # as before seeds
    assert "seeds" not in json.loads((one / "comparison.json").read_text())["runs"][0]
    marker = (one / "runs" / "l1" / "DONE").read_text()

    # the same directory with two seeds: the seed-0 runs are reused, only seed 1 trains
    run_comparison(_experiment(seeds=[0, 1]), one, probe=False, metamers=False, progress=False)
    summary = json.loads((one / "comparison.json").read_text())
    assert summary["trained_this_call"] == ["l1/seed-1", "l1-luma/seed-1"]
    assert (one / "runs" / "l1" / "DONE").read_text() == marker
    assert summary["seeds"] == [0, 1]

    table = json.loads((one / "metrics.json").read_text())
    for label, entry_dir in (("l1", "l1"), ("l1(luma)", "l1-luma")):
        row = table[label]
        seed0, seed1 = _run_metrics(one, entry_dir), _run_metrics(one, f"{entry_dir}/seed-1")
        assert seed0["psnr"] == single[label]["psnr"]  # the reused run's own numbers
        assert seed0["psnr"] != seed1["psnr"]  # the seed changes what is learned
        assert row["seeds"]["0"]["psnr"] == seed0["psnr"]
        assert row["seeds"]["1"]["psnr"] == seed1["psnr"]
        pair = [seed0["psnr"], seed1["psnr"]]
        assert row["psnr"] == pytest.approx(np.mean(pair))
        assert row["spread"]["psnr"]["sd"] == pytest.approx(np.std(pair, ddof=1))
        assert (row["spread"]["psnr"]["min"], row["spread"]["psnr"]["max"]) == \
            (min(pair), max(pair))
        lower = 0 if seed0["psnr"] <= seed1["psnr"] else 1  # lower middle of two
        assert row["median_seed"] == lower and row["headline_metric"] == "psnr"
        assert row["run_dir"] == (entry_dir if lower == 0 else f"{entry_dir}/seed-1")
    entry = next(run for run in summary["runs"] if run["label"] == "l1")
    assert entry["seeds"] == table["l1"]["seeds"] and entry["spread"] == table["l1"]["spread"]
    assert set(entry["timings"]) == {"l1/seed-1"}  # the reused run took no time this call
    assert set(summary["timings"]) >= {"runs", "training", "evaluation", "total"}

    # every seed was validated on the same images, with other outputs
    first = torch.load(one / "runs" / "l1" / "evaluation" / "predictions.pt")
    other = torch.load(one / "runs" / "l1" / "seed-1" / "evaluation" / "predictions.pt")
    assert torch.equal(first["targets"], other["targets"])
    assert not torch.equal(first["outputs"], other["outputs"])

    # a rerun trains nothing and gives the same record
    run_comparison(_experiment(seeds=[0, 1]), one, probe=False, metamers=False, progress=False)
    assert json.loads((one / "comparison.json").read_text())["trained_this_call"] == []
    assert json.loads((one / "metrics.json").read_text()) == table

    # the report: means with min-max in the table and the plot, the median seed's images
    comparison = load_comparison(one)
    run = next(r for r in comparison.runs if r.label == "l1")
    assert run.name == table["l1"]["run_dir"] and run.median_seed == table["l1"]["median_seed"]
    assert run.metrics["psnr"] == pytest.approx(table["l1"]["psnr"])
    section = metrics_section(comparison.runs)
    column = [c.key for c in section.columns].index("psnr")
    cell = section.rows[0].cells[column]
    assert (cell.low, cell.high) == (table["l1"]["spread"]["psnr"]["min"],
                                     table["l1"]["spread"]["psnr"]["max"])
    assert section.seeds == 2 and section.rows[0].seeds == 2
    assert tradeoff(comparison.runs, tmp_path).seeds
    text = build_report(one).read_text()
    assert "2 seeds" in text and "min–max" in text and "median seed by psnr" in text
    assert "Left out of the grid" not in text  # same validation targets for every row
