"""The reuse protocol: a finished run is reused only with the same identity, steps and lr
included, while an unfinished run's checkpoint may resume with other steps or lr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from losslab.experiments import ExperimentError, experiment_from_dict, plan_runs
from losslab.experiments.planning import PlannedRun, train_config
from losslab.experiments.reuse import check_reusable, done_payload, is_reusable, write_done


def _plan(out: Path, **budget: Any) -> PlannedRun:
    experiment = experiment_from_dict({
        "name": "tiny", "question": "q", "task": "reconstruct", "data": "bundled",
        "model_options": {"width": 8, "depth": 2, "code_channels": 4},
        "budget": {"steps": 4, "batch_size": 4, "crop_size": 16, "lr": 0.01, **budget},
        "train_options": {"accelerator": "cpu"}, "entries": [{"loss": "l1"}],
    })
    return plan_runs(experiment, out)[0]


def _finish(plan: PlannedRun) -> Path:
    """A run directory as a finished run leaves it: checkpoint, metrics.json, DONE."""
    run_dir = Path(plan.config["out"])
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"global_step": plan.config["steps"], "losslab": {}},
               run_dir / "checkpoints" / "last.ckpt")
    (run_dir / "metrics.json").write_text(json.dumps({"psnr": 20.0}))
    write_done(run_dir, done_payload(plan))
    return run_dir


def test_a_finished_run_with_the_same_settings_is_reused(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    run_dir = _finish(plan)
    assert is_reusable(plan) and check_reusable(run_dir, plan)
    # the marker keeps the planned values without out, as markers always did (old ones reuse)
    marker = json.loads((run_dir / "DONE").read_text())
    assert marker["config"] == {k: v for k, v in plan.config.items() if k != "out"}
    assert marker["label"] == "l1" and marker["loss"] == "l1"


@pytest.mark.parametrize(("change", "difference"), [
    ({"lr": 0.001}, "optimizer.lr: 0.01 -> 0.001"),
    ({"steps": 9}, "steps: 4 -> 9"),
])
def test_steps_and_lr_decide_reuse_but_not_resume(tmp_path: Path, change: dict[str, Any],
                                                  difference: str) -> None:
    """Where the two identities used to disagree: for the DONE marker a run of another lr or
    step count is another run (refused); for the checkpoint it may resume (same fingerprint)."""
    finished = _plan(tmp_path)
    run_dir = _finish(finished)
    asked = _plan(tmp_path, **change)
    with pytest.raises(ExperimentError, match=rf"finished with other settings .*{difference}"):
        check_reusable(run_dir, asked)
    assert train_config(asked).fingerprint() == train_config(finished).fingerprint()
    assert train_config(asked).identity() == train_config(finished).identity()


def test_a_marker_without_settings_is_removed_and_the_run_trained_again(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    run_dir = _finish(plan)
    (run_dir / "DONE").write_text("done\n")  # a hand-made or foreign marker
    with pytest.warns(UserWarning, match="not a losslab marker"):
        assert not check_reusable(run_dir, plan)
    assert not (run_dir / "DONE").exists()
