"""Reading a comparison from disk: run order, fallbacks, resumed CSV logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from losslab.report.data import NotAComparisonError, load_comparison, read_training_log


def test_order_and_labels_come_from_comparison_json(comparison_dir: Path) -> None:
    comparison = load_comparison(comparison_dir)
    assert [run.label for run in comparison.runs] == ["sharp", "blurry", "two guesses"]
    assert [run.hypotheses for run in comparison.runs] == [1, 1, 2]
    assert all(run.done for run in comparison.runs)
    assert comparison.runs[0].metrics["psnr"] == 30.0
    predictions = comparison.runs[2].predictions()
    assert predictions is not None and predictions["outputs"].shape == (6, 2, 3, 16, 16)


def test_fallback_to_metrics_json_then_to_the_run_folders(comparison_dir: Path) -> None:
    (comparison_dir / "comparison.json").unlink()
    (comparison_dir / "metrics.json").write_text(json.dumps(
        {"blurry one": {"run_dir": "blurry", "loss": "mse", "psnr": 25.0}}))
    assert [r.label for r in load_comparison(comparison_dir).runs] == ["blurry one"]
    (comparison_dir / "metrics.json").unlink()
    runs = load_comparison(comparison_dir).runs
    assert sorted(r.label for r in runs) == ["blurry", "sharp", "two guesses"]


def test_resumed_logs_are_concatenated_in_version_order(tmp_path: Path) -> None:
    for version, rows in ((1, "3,,0.3\n"), (0, "1,,0.5\n2,,0.4\n")):
        folder = tmp_path / "logs" / f"version_{version}"
        folder.mkdir(parents=True)
        (folder / "metrics.csv").write_text("step,epoch,train/loss\n" + rows)
    log = read_training_log(tmp_path)
    assert log == {"train/loss": [(1.0, 0.5), (2.0, 0.4), (3.0, 0.3)]}
    assert read_training_log(tmp_path / "missing") == {}


def test_empty_runs_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    with pytest.raises(NotAComparisonError, match="no run in it"):
        load_comparison(tmp_path)


def test_missing_directory_says_it_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(NotAComparisonError, match=r"does not exist.*losslab compare"):
        load_comparison(tmp_path / "typo")


def test_comparison_json_is_read_as_its_record_tolerant_of_old_and_unknown_keys(
    comparison_dir: Path
) -> None:
    path = comparison_dir / "comparison.json"
    summary = json.loads(path.read_text())
    summary.pop("version", None)  # an older file
    summary["written_by"] = "another losslab"  # a key this version does not know
    summary["runs"][0]["colour"] = "blue"
    path.write_text(json.dumps(summary))
    assert [run.label for run in load_comparison(comparison_dir).runs] == [
        "sharp", "blurry", "two guesses"]
    summary["runs"][0]["hypotheses"] = "two"
    path.write_text(json.dumps(summary))
    with pytest.raises(ValueError, match=r"comparison\.json: runs\.0\.hypotheses: .*'two'.*"
                                         r"re-run the comparison") as info:
        load_comparison(comparison_dir)
    assert "\n" not in str(info.value)
