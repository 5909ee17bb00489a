"""End-to-end runs (a few steps each): run directory, logs, schedules, seeds, resume, NaN, tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from train_helpers import column, read_metrics, tiny_config

from losslab.losses.pixel import MSELoss
from losslab.models.stochastic import draw_samples
from losslab.train import (
    TrainingDivergedError,
    load_config,
    load_run,
    predict_validation,
    train,
)

pytestmark = pytest.mark.usefixtures("quiet_lightning")


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def test_run_directory_is_self_describing(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "run", loss="l1 + 0.5*mse", grad_share_every=2,
                         sample_every=3)
    result = train(config)
    run = result.run_dir
    assert load_config(run / "config.yaml") == config
    assert result.global_step == 6 and result.resumed_from_step is None
    assert result.last_checkpoint.exists() and result.best_checkpoint is not None
    assert set(result.metrics) == {"val/loss", "val/l1", "val/loss/l1", "val/loss/mse", "val/psnr"}
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_000000.png", "step_000003.png", "step_000006.png"]
    # rows input | output | target of 2 items of 32 px with 2 px padding
    assert Image.open(run / "samples" / "step_000006.png").size == (2 * 32 + 3 * 2, 3 * 32 + 4 * 2)
    assert any((run / "logs" / "tensorboard").glob("events.out.tfevents.*"))

    rows = read_metrics(run)
    shares_l1, shares_mse = column(rows, "grad_share/l1"), column(rows, "grad_share/mse")
    assert sorted(shares_l1) == [0, 2, 4]
    for step in shares_l1:
        assert shares_l1[step] + shares_mse[step] == pytest.approx(1.0, abs=1e-5)
        assert 0.0 < shares_mse[step] < 1.0
    assert sorted(column(rows, "val/loss")) == [3, 6]
    assert column(rows, "val/loss")[6] == pytest.approx(result.metrics["val/loss"], rel=1e-5)
    assert len(column(rows, "train/loss")) == 6


def test_schedules_change_effective_weights_at_the_stated_steps(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "run", steps=7, loss="l1 + 0.5*mse@start(3) + 2*l1(luma)@ramp(2,6)")
    rows = read_metrics(train(config).run_dir)
    assert column(rows, "weight/mse") == {s: (0.5 if s >= 3 else 0.0) for s in range(7)}
    ramp = column(rows, "weight/l1(luma)")
    assert ramp == pytest.approx({s: 2 * min(1.0, max(0.0, (s - 2) / 4)) for s in range(7)})
    assert sorted(column(rows, "train/mse")) == [3, 4, 5, 6]  # not evaluated before its start
    total, l1, mse, luma = (column(rows, f"train/{n}") for n in ("loss", "l1", "mse", "l1(luma)"))
    for step in (4, 6):  # the logged total is the weighted sum of the logged terms
        assert total[step] == pytest.approx(l1[step] + 0.5 * mse[step] + ramp[step] * luma[step], rel=1e-5)


def test_same_seed_gives_identical_weights(tmp_path: Path) -> None:
    runs = [train(tiny_config(tmp_path / name, seed=seed, steps=4, val_every=4))
            for name, seed in (("a", 5), ("b", 5), ("c", 6))]
    first, second, other = (_weights(r.last_checkpoint) for r in runs)
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_rerun_resumes_exactly_and_other_config_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    short_epochs = {"data.options": {"val_size": 4, "train_size": 12}}  # 3 batches per epoch
    train(tiny_config(out, steps=4, val_every=2, **short_epochs))
    result = train(tiny_config(out, steps=7, val_every=2, **short_epochs))  # continues the run
    assert (result.resumed_from_step, result.global_step) == (4, 7)
    steps = sorted(column(read_metrics(out), "train/loss"))
    assert steps == list(range(7))  # no step trained twice, none missing
    straight = train(tiny_config(tmp_path / "straight", steps=7, val_every=2, **short_epochs))
    resumed, reference = _weights(result.last_checkpoint), _weights(straight.last_checkpoint)
    for key in reference:  # same batches, same optimizer state: the same weights
        torch.testing.assert_close(resumed[key], reference[key], rtol=0, atol=0)
    assert train(tiny_config(out, steps=7, val_every=2, **short_epochs)).global_step == 7  # no-op
    with pytest.raises(ValueError) as info:
        train(tiny_config(out, steps=7, val_every=2, loss="mse", lr=0.01, **short_epochs))
    message = str(info.value)
    assert "loss: 'l1' -> 'mse'" in message and "optimizer.lr: 0.001" not in message
    # the refusal says what may change (issue 11)
    assert "Only these may change on resume:" in message and "optimizer.lr" in message
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny_config(out, steps=7, resume=False, **short_epochs))


def test_resume_with_a_lower_learning_rate_is_allowed_and_applied(tmp_path: Path) -> None:
    """losslab's advice after a divergence ("resume with a lower learning rate") must work."""
    out = tmp_path / "run"
    train(tiny_config(out, steps=4, val_every=2, lr=1e-3))
    result = train(tiny_config(out, steps=6, val_every=2, lr=1e-4, log_every=1))
    assert (result.resumed_from_step, result.global_step) == (4, 6)
    lr = column(read_metrics(out), "lr")
    assert lr[0] == pytest.approx(1e-3) and lr[3] == pytest.approx(1e-3)
    assert lr[4] == pytest.approx(1e-4) and lr[5] == pytest.approx(1e-4)
    checkpoint = torch.load(result.last_checkpoint, weights_only=True)
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    assert checkpoint["losslab"]["config"]["optimizer"]["lr"] == pytest.approx(1e-4)


def test_nan_loss_stops_naming_the_term_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = MSELoss.distance
    training_calls = [0]

    def distance(self: MSELoss, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = original(self, prediction, target)
        if torch.is_grad_enabled():  # training steps only (validation runs without grad)
            training_calls[0] += 1
            if training_calls[0] > 5:
                return value * float("nan")
        return value

    monkeypatch.setattr(MSELoss, "distance", distance)
    config = tiny_config(tmp_path / "run", loss="l1 + 0.1*mse", steps=10, val_every=2)
    with pytest.raises(TrainingDivergedError) as info:
        train(config)
    message = str(info.value)
    assert "step 5" in message and "'mse' = nan" in message and "last.ckpt" in message
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())


@pytest.mark.parametrize(
    ("task", "overrides", "input_shape", "output_shape"),
    [
        ("super_resolve", {"model.options": {"width": 8, "blocks": 1}}, (4, 3, 16, 16), (4, 3, 32, 32)),
        ("colorize", {}, (4, 1, 32, 32), (4, 3, 32, 32)),
        ("predict_next", {"data": "moving_shapes", "data.options": {"val_size": 4, "train_size": 8}},
         (4, 9, 32, 32), (4, 3, 32, 32)),
        ("reconstruct", {"hypotheses": 2, "grad_share_every": 1, "loss": "l1 + mse"},
         (4, 3, 32, 32), (4, 2, 3, 32, 32)),
    ],
)
def test_every_task_trains_and_reads_back(tmp_path: Path, task: str, overrides: dict,
                                          input_shape: tuple, output_shape: tuple) -> None:
    result = train(tiny_config(tmp_path / task, task=task, steps=2, val_every=2, **overrides))
    assert result.global_step == 2 and result.metrics["val/psnr"] > 0
    inputs, outputs, targets = predict_validation(result.run_dir)
    assert tuple(inputs.shape) == input_shape and tuple(outputs.shape) == output_shape
    model, config = load_run(result.run_dir, "last")
    assert config.task == task and not model.training
    with torch.no_grad():
        torch.testing.assert_close(model(inputs), outputs)
    assert targets.shape[-3:] == outputs.shape[-3:]


def test_bf16_mixed_precision_computes_the_loss_in_float32(tmp_path: Path) -> None:
    result = train(tiny_config(tmp_path / "bf16", precision="bf16-mixed", steps=2, val_every=2,
                               loss="l1 + mse", grad_share_every=1))
    assert result.global_step == 2
    assert all(torch.isfinite(torch.tensor(v)) for v in result.metrics.values())
    assert sorted(column(read_metrics(result.run_dir), "grad_share/l1")) == [0, 1]


def test_bad_loss_spec_fails_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Did you mean 'mse'"):
        train(tiny_config(tmp_path / "run", loss="l1 + msee"))
    assert not (tmp_path / "run" / "config.yaml").exists()


# -- reading runs back without the training module; checkpoints without frozen networks --------
PERCEPTUAL = "l1 + 0.1*perceptual(weights=random)"
SHORT_EPOCHS = {"val_every": 2, "data.options": {"val_size": 4, "train_size": 12}}


def test_evaluation_builds_the_model_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from losslab.experiments import evaluate_run
    from losslab.train import open_run
    from losslab.train.run import load_module

    result = train(tiny_config(tmp_path / "run", loss=PERCEPTUAL, steps=3, ema_decay=0.9))
    module = load_module(result.run_dir, "last")  # the reference: the whole training module
    batch = torch.stack([module.val_set[i] for i in range(4)])
    with torch.no_grad():
        expected = module.eval_model(batch)
        codes = module.ema_model.encode(batch)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluation built the loss or the training module")

    monkeypatch.setattr("losslab.train.module.TaskModule.__init__", refuse)
    monkeypatch.setattr("losslab.train.module.build_criterion", refuse)
    monkeypatch.setattr("losslab.losses.perceptual.vgg19_features", refuse)
    run = open_run(result.run_dir, "last")
    assert run.checkpoint.name == "last.ckpt" and not run.model.training
    inputs, outputs, _ = run.predict(batch_size=3)  # batches of 3 and 1
    torch.testing.assert_close(inputs, batch, rtol=0, atol=0)
    torch.testing.assert_close(outputs, expected)
    assert run.plausible() is None  # bundled photos know no alternative answers
    metrics = evaluate_run(result.run_dir)
    assert metrics["retrieval_top1"] is not None  # the codes of the evaluated (EMA, last) model
    neighbours = json.loads((result.run_dir / "evaluation" / "neighbours.json").read_text())
    distances = torch.cdist(codes.flatten(1), codes.flatten(1)).fill_diagonal_(float("inf"))
    assert [row[0] for row in neighbours["indices"]] == distances.argmin(dim=1).tolist()


def test_evaluation_refuses_weights_that_do_not_fit_its_config(tmp_path: Path) -> None:
    from losslab.train import evaluated_weights, open_run

    result = train(tiny_config(tmp_path / "run", steps=2, val_every=2))
    config_file = result.run_dir / "config.yaml"
    config_file.write_text(config_file.read_text().replace("width: 8", "width: 16"))
    with pytest.raises(ValueError,
                       match=r"does not fit the model that .*config\.yaml.*size mismatch.* edited"):
        open_run(result.run_dir, "last")
    with pytest.raises(ValueError, match=r"no EMA average weights \('ema_model\.\*' entries\)"):
        evaluated_weights({"model.w": torch.zeros(1)}, tiny_config(tmp_path / "x", ema_decay=0.9))


def _state(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]


def test_checkpoints_leave_out_frozen_networks_and_keep_everything_trained(tmp_path: Path) -> None:
    spec = "l1 + 0.1*perceptual(weights=random)@share(0.2) + 0.1*adversarial(width=8, depth=2)"
    result = train(tiny_config(tmp_path / "run", loss=spec, steps=2, val_every=2, ema_decay=0.9))
    keys = list(_state(result.last_checkpoint))
    assert not [key for key in keys if ".slices." in key]  # the seeded VGG is rebuilt
    assert [key for key in keys if key.startswith("loss.share_")] == [
        "loss.share_norms", "loss.share_multipliers"]
    assert any(key.startswith("loss.terms.2.discriminator.") for key in keys)
    assert any(key.startswith("ema_model.") for key in keys)
    assert any(key.startswith("model.") for key in keys)


def _with_old_vgg_entries(checkpoint: Path) -> None:
    """Rewrite ``checkpoint`` as a losslab release before this change wrote it: with the VGG."""
    from losslab.losses.perceptual import PerceptualLoss

    stored = torch.load(checkpoint, map_location="cpu", weights_only=True)
    vgg = PerceptualLoss(weights="random").slices.state_dict()
    stored["state_dict"] |= {f"loss.terms.1.slices.{k}": v.clone() for k, v in vgg.items()}
    torch.save(stored, checkpoint)


def test_resume_rebuilds_the_random_vgg_exactly_and_old_checkpoints_still_resume(
    tmp_path: Path,
) -> None:
    from losslab.train import load_module, open_run

    straight = train(tiny_config(tmp_path / "straight", loss=PERCEPTUAL, steps=7, **SHORT_EPOCHS))
    reference = _state(straight.last_checkpoint)
    for name, old_format in (("new", False), ("old", True)):
        out = tmp_path / name
        train(tiny_config(out, loss=PERCEPTUAL, steps=4, **SHORT_EPOCHS))
        last = out / "checkpoints" / "last.ckpt"
        if old_format:
            _with_old_vgg_entries(last)
            assert any(".slices." in key for key in _state(last))
            load_module(out, "last")  # a strict load of the whole training module
            open_run(out, "last")
        resumed = train(tiny_config(out, loss=PERCEPTUAL, steps=7, **SHORT_EPOCHS))
        assert (resumed.resumed_from_step, resumed.global_step) == (4, 7)
        state = _state(resumed.last_checkpoint)
        assert state.keys() == reference.keys()  # written again without the VGG
        for key in reference:  # same batches, same rebuilt VGG: the same weights
            torch.testing.assert_close(state[key], reference[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize(
    ("hypotheses", "key", "expected"),
    [
        ({"count": 3, "assignment": "evolving"}, "hypotheses/top_k",
         {0: 3.0, 1: 3.0, 2: 2.0, 3: 2.0, 4: 1.0, 5: 1.0}),
        ({"count": 3, "assignment": "annealed", "temperature": 1.0, "temperature_end": 0.01,
          "schedule_steps": 4}, "hypotheses/temperature",
         {0: 1.0, 1: 10 ** -0.5, 2: 0.1, 3: 10 ** -1.5, 4: 0.01, 5: 0.01}),
    ],
)
def test_the_trainer_gives_the_assignment_its_step(tmp_path: Path, hypotheses: dict, key: str,
                                                   expected: dict) -> None:
    # evolving over 3/4 of the run's 6 steps (4): k = 3 - floor(2 * step / 4), then 1
    result = train(tiny_config(tmp_path / "run",
                               **{f"hypotheses.{k}": v for k, v in hypotheses.items()}))
    logged = column(read_metrics(result.run_dir), key)
    assert logged == pytest.approx(expected)


def test_a_score_head_is_trained_logged_checkpointed_and_sampled(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "run", task="predict_next", data="moving_shapes",
                         **{"data.options": {"val_size": 4, "train_size": 8},
                            "hypotheses.count": 3, "hypotheses.scores": True})
    result = train(config)
    rows = read_metrics(result.run_dir)
    assert sorted(column(rows, "train/score_loss")) == list(range(6))
    accuracy = column(rows, "train/score_accuracy")
    assert all(0.0 <= value <= 1.0 for value in accuracy.values())
    assert "val/score_accuracy" in result.metrics
    weights = _weights(result.last_checkpoint)
    assert any(key.startswith("model.score_head.") for key in weights)
    model, _ = load_run(result.run_dir, "last")
    loaded = dict(model.named_parameters())
    for key, value in weights.items():  # the head is part of the model that is read back
        if key.startswith("model.score_head."):
            torch.testing.assert_close(loaded[key.removeprefix("model.")], value)
    inputs, outputs, _ = predict_validation(result.run_dir)
    assert outputs.shape == (4, 3, 3, 32, 32)  # evaluation still sees every hypothesis
    with torch.no_grad():
        samples = draw_samples(model, inputs, 2, seed=0)
    assert samples.shape == (4, 2, 3, 32, 32)


def test_the_score_head_does_not_change_the_hypotheses(tmp_path: Path) -> None:
    # the head reads the input with its own parameters, so the same seed trains the same K
    options = {"task": "predict_next", "data": "moving_shapes", "steps": 4, "val_every": 4,
               "data.options": {"val_size": 4, "train_size": 8}, "hypotheses.count": 2}
    plain = train(tiny_config(tmp_path / "plain", **options))
    scored = train(tiny_config(tmp_path / "scored", **options, **{"hypotheses.scores": True}))
    _, plain_outputs, _ = predict_validation(plain.run_dir)
    _, scored_outputs, _ = predict_validation(scored.run_dir)
    torch.testing.assert_close(scored_outputs, plain_outputs)
