"""The comparison runner: planning, resume of killed comparisons, overrides, files written."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import losslab.train
from losslab.experiments import (
    ExperimentError,
    experiment_from_dict,
    resolve_budget,
    run_comparison,
)
from losslab.experiments import runner as runner_module


def _experiment(**changes: Any):
    values = {
        "name": "tiny", "question": "Does it run?", "task": "reconstruct", "data": "bundled",
        "model_options": {"width": 8, "depth": 2, "code_channels": 4},
        "budget": {"steps": 4, "batch_size": 4, "crop_size": 16, "lr": 0.01},
        "train_options": {"val_every": 2, "sample_every": 0, "grad_share_every": 2,
                          "log_every": 1, "accelerator": "cpu", "data": {"val_items": 6}},
        "entries": [{"loss": "l1"}, {"loss": "l1(luma)"}],
    }
    values.update(changes)
    return experiment_from_dict(values)


class FakeTrainer:
    """Stands in for train.train and evaluate_run: records calls, writes a minimal run."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.trained: list[str] = []
        self.fail_on = fail_on

    def train(self, config: Any, callbacks: Any = ()) -> None:
        name = Path(config.out).name
        if name == self.fail_on:
            raise KeyboardInterrupt  # the comparison is killed while this run trains
        self.trained.append(name)
        (Path(config.out) / "checkpoints").mkdir(parents=True, exist_ok=True)
        (Path(config.out) / "config.yaml").write_text(config.to_yaml())
        torch.save({"global_step": config.steps, "losslab": {}},
                   Path(config.out) / "checkpoints" / "last.ckpt")

    def evaluate(self, run_dir: Path) -> dict:
        metrics = {"psnr": 20.0 + len(self.trained), "unavailable": {}}
        (Path(run_dir) / "metrics.json").write_text(json.dumps(metrics))
        return metrics


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTrainer:
    trainer = FakeTrainer()
    monkeypatch.setattr(losslab.train, "train", trainer.train)
    monkeypatch.setattr(runner_module, "evaluate_run", trainer.evaluate)
    return trainer


def test_a_killed_comparison_continues_with_only_the_missing_runs(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    fake.fail_on = "l1-luma"
    with pytest.raises(KeyboardInterrupt):
        run_comparison(_experiment(), tmp_path, probe=False, report=False, progress=False)
    assert fake.trained == ["l1"]
    assert (tmp_path / "runs" / "l1" / "DONE").is_file()
    assert not (tmp_path / "runs" / "l1-luma" / "DONE").exists()

    fake.fail_on = None
    run_comparison(_experiment(), tmp_path, probe=False, report=False, progress=False)
    assert fake.trained == ["l1", "l1-luma"]  # only the missing run trained
    summary = json.loads((tmp_path / "comparison.json").read_text())
    assert summary["trained_this_call"] == ["l1-luma"]

    run_comparison(_experiment(), tmp_path, probe=False, report=False, progress=False)
    assert fake.trained == ["l1", "l1-luma"]  # everything done: nothing trains


def test_done_runs_with_other_settings_are_refused(fake: FakeTrainer, tmp_path: Path) -> None:
    run_comparison(_experiment(), tmp_path, probe=False, report=False, progress=False)
    with pytest.raises(ExperimentError, match=r"finished with other settings .*steps: 4 -> 9"):
        run_comparison(_experiment(), tmp_path, steps=9, probe=False, report=False,
                       progress=False)


def test_a_bad_loss_fails_before_any_training(fake: FakeTrainer, tmp_path: Path) -> None:
    experiment = _experiment(entries=[{"loss": "l1"}, {"loss": "l1(lumma)"}])
    with pytest.raises(ExperimentError, match=r"entry 'l1\(lumma\)': cannot build its loss"):
        run_comparison(experiment, tmp_path, probe=False, report=False, progress=False)
    assert fake.trained == []
    bad_option = _experiment(train_options={"val_evry": 2})
    with pytest.raises(ExperimentError, match=r"not a valid TrainConfig.*val_every"):
        run_comparison(bad_option, tmp_path, probe=False, report=False, progress=False)


def test_metrics_files_and_resolved_experiment(fake: FakeTrainer, tmp_path: Path) -> None:
    experiment = _experiment(entries=[{"name": "plain L1", "loss": "l1"}, {"loss": "l1(luma)"}])
    result = run_comparison(experiment, tmp_path, probe=False, report=False, progress=False)
    assert result == tmp_path
    table = json.loads((tmp_path / "metrics.json").read_text())
    assert list(table) == ["plain L1", "l1(luma)"]  # human names as keys
    assert table["plain L1"]["run_dir"] == "plain-L1" and table["plain L1"]["psnr"] == 21.0
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["name"] for r in rows] == ["plain L1", "l1(luma)"]
    assert rows[1]["run_dir"] == "l1-luma" and rows[1]["psnr"] == "22.0"
    resolved = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    assert resolved["budget"]["steps"] == 4 and len(resolved["entries"]) == 2
    done = json.loads((tmp_path / "runs" / "plain-L1" / "DONE").read_text())
    assert done["loss"] == "l1" and done["config"]["steps"] == 4


def test_budget_scaling_and_step_override() -> None:
    experiment = _experiment(entries=[{"loss": "l1", "steps": 10}, {"loss": "mse"}])
    scaled = resolve_budget(experiment, budget_scale=2.5)
    assert scaled.budget.steps == 10 and scaled.entries[0].steps == 25
    fixed = resolve_budget(experiment, steps=7, budget_scale=100)
    assert fixed.budget.steps == 7 and fixed.entries[0].steps == 7
    with pytest.raises(ValueError, match="budget_scale must be a positive number"):
        resolve_budget(experiment, budget_scale=0)
    with pytest.raises(ValueError, match="perceptual_weights must be one of"):
        resolve_budget(experiment, perceptual_weights="imagenet1k")


def test_perceptual_weights_are_written_into_the_specs() -> None:
    experiment = _experiment(entries=[{"loss": "mse + 0.01*perceptual(layers=relu1_2)"}],
                             perceptual_weights="imagenet")
    assert resolve_budget(experiment).entries[0].loss == \
        "mse + 0.01*perceptual(layers=relu1_2, weights=imagenet)"
    assert resolve_budget(experiment, perceptual_weights="random").entries[0].loss == \
        "mse + 0.01*perceptual(layers=relu1_2, weights=random)"


def test_missing_weights_point_to_the_compare_flag(
    fake: FakeTrainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import losslab.losses
    from losslab.weights import WeightsUnavailableError

    def offline(spec: str, **_: Any) -> None:
        raise WeightsUnavailableError("VGG19 ImageNet is not available: no file.")

    monkeypatch.setattr(losslab.losses, "loss", offline)
    experiment = _experiment(entries=[{"loss": "mse + 0.01*perceptual"}])
    with pytest.raises(ExperimentError, match=r"not available.*--perceptual-weights random"):
        run_comparison(experiment, tmp_path, probe=False, report=False, progress=False)
    assert fake.trained == []


@pytest.mark.parametrize("damage", ["empty DONE", "missing checkpoint", "short checkpoint",
                                    "missing metrics"])
def test_a_done_run_is_reused_only_when_its_marker_checkpoint_and_metrics_are_sound(
    fake: FakeTrainer, tmp_path: Path, damage: str
) -> None:
    """Issue 11: an empty DONE beside a missing checkpoint was reused (a row of dashes, exit 0)."""
    run_comparison(_experiment(), tmp_path, probe=False, report=False, progress=False)
    assert fake.trained == ["l1", "l1-luma"]
    run = tmp_path / "runs" / "l1"
    if damage == "empty DONE":
        (run / "DONE").write_text("")
    elif damage == "missing checkpoint":
        (run / "checkpoints" / "last.ckpt").unlink()
    elif damage == "short checkpoint":
        torch.save({"global_step": 2, "losslab": {}}, run / "checkpoints" / "last.ckpt")
    else:
        (run / "metrics.json").unlink()
    with pytest.warns(UserWarning, match="training and evaluating it again"):
        run_comparison(_experiment(), tmp_path, probe=False, report=False, progress=False)
    assert fake.trained == ["l1", "l1-luma", "l1"]  # only the damaged run, once more
    assert json.loads((run / "DONE").read_text())["label"] == "l1"
    run_comparison(_experiment(), tmp_path, probe=False, report=False, progress=False)
    assert fake.trained == ["l1", "l1-luma", "l1"]  # now sound: reused
