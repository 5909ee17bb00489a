"""EMA of the generator: the average is what evaluation sees, and checkpoints carry both."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from train_helpers import tiny_config

from losslab.experiments.evaluate import evaluate_run
from losslab.train import load_module, load_run, predict_validation, train
from losslab.train.callbacks import sample_rows
from losslab.train.ema import ema_decay_at, make_ema, update_ema

pytestmark = pytest.mark.usefixtures("quiet_lightning")


def _state(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def test_update_is_the_stated_recurrence_with_a_warm_up() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    average = make_ema(model)
    assert not any(p.requires_grad for p in average.parameters())
    start = [p.detach().clone() for p in average.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(3.0)
    update_ema(average, model, 0.25)
    for old, new, current in zip(start, average.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(new, 0.25 * old + 0.75 * current)
    assert torch.equal(average[1].running_mean, model[1].running_mean)  # buffers copied
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.999, 80) == pytest.approx(81 / 90)
    assert ema_decay_at(0.5, 80) == 0.5
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ema_decay_at(1.0, 0)


def test_evaluation_samples_and_evaluate_use_the_average(tmp_path: Path) -> None:
    result = train(tiny_config(tmp_path / "run", steps=6, val_every=6, ema_decay=0.9,
                               sample_every=6))
    state = _state(result.last_checkpoint)
    raw = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    ema = {k[len("ema_model."):]: v for k, v in state.items() if k.startswith("ema_model.")}
    assert raw.keys() == ema.keys() and raw
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)  # both weight sets are stored

    module = load_module(result.run_dir, "last")
    assert module.eval_model is module.ema_model
    for key, value in load_run(result.run_dir, "last")[0].state_dict().items():
        assert torch.equal(value, ema[key])
    inputs, outputs, targets = predict_validation(result.run_dir, "last")
    with torch.no_grad():
        torch.testing.assert_close(outputs, module.ema_model(inputs))
        assert not torch.allclose(outputs, module.model(inputs))
    # Validation during training scored the average (one validation batch: an exact mean).
    assert result.metrics["val/l1"] == pytest.approx(float((outputs - targets).abs().mean()), rel=1e-5)
    # losslab evaluate scores the same outputs.
    evaluate_run(result.run_dir)
    saved = torch.load(result.run_dir / "evaluation" / "predictions.pt", weights_only=True)
    torch.testing.assert_close(saved["outputs"], outputs)
    # Sample grids show the average.
    batch = torch.stack([module.val_set[i] for i in range(2)])
    rows = sample_rows(module, batch)
    with torch.no_grad():
        torch.testing.assert_close(rows[1], module.ema_model(batch).clamp(0, 1))


def test_resume_restores_the_model_and_its_average(tmp_path: Path) -> None:
    options = {"ema_decay": 0.9, "val_every": 2, "data.options": {"val_size": 4, "train_size": 12}}
    out = tmp_path / "run"
    train(tiny_config(out, steps=4, **options))
    resumed = train(tiny_config(out, steps=7, **options))
    straight = train(tiny_config(tmp_path / "straight", steps=7, **options))
    assert resumed.resumed_from_step == 4
    a, b = _state(resumed.last_checkpoint), _state(straight.last_checkpoint)
    assert any(k.startswith("ema_model.") for k in a) and a.keys() == b.keys()
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_ema_decay_is_checked_and_off_by_default(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ema_decay must be a number in \[0, 1\)"):
        tiny_config(tmp_path / "x", ema_decay=1.5)
    module = load_module(train(tiny_config(tmp_path / "plain", steps=2, val_every=2)).run_dir, "last")
    assert module.ema_model is None and module.eval_model is module.model


def test_ldl_needs_the_average(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="set ema_decay"):
        train(tiny_config(tmp_path / "run", loss="l1 + ldl"))
    result = train(tiny_config(tmp_path / "ok", loss="l1 + ldl", ema_decay=0.9, steps=3,
                               val_every=3))
    assert result.metrics["val/loss/ldl"] >= 0.0
