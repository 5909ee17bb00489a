"""Skipping non-finite steps: counted by cause, weights untouched, N in a row stop the run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_helpers import column, read_metrics, tiny_config

from losslab.losses.adversarial import loss as adversarial_module
from losslab.losses.pixel import MSELoss
from losslab.train import TrainingDivergedError, train
from losslab.train.nonfinite import NonFiniteGuard

pytestmark = pytest.mark.usefixtures("quiet_lightning")


def _checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _poison_mse(monkeypatch: pytest.MonkeyPatch, bad_calls: set[int] | None,
                after: int | None = None) -> None:
    """MSE returns NaN on the given training calls (1-based), or on every call after ``after``."""
    original = MSELoss.distance
    calls = [0]

    def distance(self: MSELoss, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = original(self, prediction, target)
        if torch.is_grad_enabled():  # training only (validation runs without gradients)
            calls[0] += 1
            if (bad_calls and calls[0] in bad_calls) or (after is not None and calls[0] > after):
                return value * float("nan")
        return value

    monkeypatch.setattr(MSELoss, "distance", distance)


@pytest.mark.parametrize("check_values", [True, False])
def test_a_nan_step_is_skipped_and_counted_with_its_term(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check_values: bool
) -> None:
    _poison_mse(monkeypatch, bad_calls={4})  # the 4th training call is step 3
    result = train(tiny_config(tmp_path / "run", loss="l1 + 0.1*mse", steps=6, val_every=6,
                               skip_nonfinite=3, check_values=check_values))
    assert result.global_step == 6  # the run went on
    rows = read_metrics(result.run_dir)
    assert column(rows, "nonfinite/skipped") == {3: 1.0}
    assert column(rows, "nonfinite/mse") == {3: 1.0}
    checkpoint = _checkpoint(result.last_checkpoint)
    # Adam took 5 steps, not 6: the skipped step changed neither weights nor moments.
    assert {int(s["step"]) for s in checkpoint["optimizer_states"][0]["state"].values()} == {5}
    assert checkpoint["losslab"]["nonfinite"] == {"skipped": 1, "in_a_row": 0,
                                                  "by_cause": {"mse": 1}}
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())


def test_n_in_a_row_stop_the_run_with_the_last_good_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _poison_mse(monkeypatch, bad_calls=None, after=5)  # steps 0-4 good, NaN from step 5 on
    with pytest.raises(TrainingDivergedError) as info:
        train(tiny_config(tmp_path / "run", loss="l1 + 0.1*mse", steps=20, val_every=2,
                          skip_nonfinite=3))
    message = str(info.value)
    assert "3 non-finite steps in a row up to step 7" in message and "mse: 3" in message
    assert "last.ckpt" in message
    monkeypatch.undo()
    reference = train(tiny_config(tmp_path / "reference", loss="l1 + 0.1*mse", steps=5,
                                  val_every=2))  # the same run, stopped after its good steps
    stopped = _checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"]
    good = _checkpoint(reference.last_checkpoint)["state_dict"]
    for key, value in good.items():
        torch.testing.assert_close(stopped[key], value, rtol=0, atol=0)


def test_a_nan_discriminator_loss_is_skipped_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = adversarial_module.discriminator_loss
    calls = [0]

    def discriminator_loss(*args: object, **kwargs: object) -> torch.Tensor:
        calls[0] += 1
        value = original(*args, **kwargs)
        return value * float("nan") if calls[0] == 2 else value

    monkeypatch.setattr(adversarial_module, "discriminator_loss", discriminator_loss)
    spec = "l1 + 0.01*adversarial(width=4, depth=1)"
    result = train(tiny_config(tmp_path / "run", loss=spec, steps=4, val_every=4,
                               skip_nonfinite=2))
    rows = read_metrics(result.run_dir)
    name = "nonfinite/adversarial(width=4,depth=1) (discriminator)"
    assert column(rows, name) == {1: 1.0}
    checkpoint = _checkpoint(result.last_checkpoint)
    d_state = checkpoint["losslab"]["discriminator_optimizers"][0]["state"]
    assert {int(s["step"]) for s in d_state.values()} == {3}  # D: 4 steps, one skipped


def test_without_skipping_one_nan_still_stops(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _poison_mse(monkeypatch, bad_calls={2})
    with pytest.raises(TrainingDivergedError, match="'mse' = nan"):
        train(tiny_config(tmp_path / "run", loss="l1 + 0.1*mse", steps=4))


def test_guard_counts_and_errors() -> None:
    guard = NonFiniteGuard(2)
    assert guard.end_step(0, None) == ({}, None)
    logs, stop = guard.end_step(1, "gradients")
    assert logs == {"nonfinite/skipped": 1.0, "nonfinite/in_a_row": 1.0,
                    "nonfinite/gradients": 1.0} and stop is None
    guard.end_step(2, None)  # a good step resets the run of skips
    guard.end_step(3, "mse")
    _, stop = guard.end_step(4, "mse")
    assert stop is not None and "2 non-finite steps in a row up to step 4" in stop
    assert "gradients: 1, mse: 2" in stop
    parameter = torch.nn.Parameter(torch.ones(2))
    parameter.grad = torch.tensor([1.0, float("inf")])
    assert NonFiniteGuard.bad_gradients([parameter])
    with pytest.raises(ValueError, match="integer >= 1"):
        NonFiniteGuard(0)
