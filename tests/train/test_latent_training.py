"""Latent-variable training (latent: {mode: cvae | noise}): config, schedule, logs, checkpoints,
resume, collapse note, open_run sampling (losslab.train.latent and its use in TaskModule)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from train_helpers import column, read_metrics, tiny_config

from losslab.losses.pixel import MSELoss
from losslab.models.latent import LatentModel
from losslab.models.stochastic import draw_samples
from losslab.train import TrainConfig, train
from losslab.train.config import ConfigError, parse_scheduled_weight
from losslab.train.latent import CollapseMonitor, read_notes, step_generator
from losslab.train.module import TaskModule
from losslab.train.run import open_run

pytestmark = pytest.mark.usefixtures("quiet_lightning")

CVAE = {"latent.mode": "cvae", "latent.dim": 3, "latent.posterior_width": 4}


def _config(out: Path, **overrides: object) -> TrainConfig:
    return tiny_config(out, **{**CVAE, "loss": "mse", **overrides})


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


# -- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("latent", "message"),
    [
        ({"mode": "vae"}, "latent.mode must be one of 'none', 'cvae', 'noise'; got 'vae'"),
        ({"dim": 0}, "latent.dim must be an integer >= 1; got 0"),
        ({"injection": "add"}, "latent.injection must be one of 'broadcast', 'film'"),
        ({"kl_weight": "1e-3@ramp(10)"}, "ramp takes two steps"),
        ({"kl_weight": "1e-3@ramp(10,5)"}, "needs 0 <= begin < end"),
        ({"kl_weight": "beta"}, "a scheduled weight reads WEIGHT"),
        ({"free_bits": -0.5}, "latent.free_bits must be a finite number >= 0"),
        ({"samples": 1}, "latent.samples must be an integer >= 2"),
        ({"colapse_kl": 1.0}, "Did you mean 'collapse_kl'"),
    ],
)
def test_bad_latent_settings_raise_one_line_errors(latent: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"latent": latent})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_latent_and_hypotheses_exclude_each_other() -> None:
    with pytest.raises(ConfigError, match="two ways to many outputs"):
        TrainConfig.from_dict({"latent": {"mode": "cvae"}, "hypotheses": {"count": 2}})


def test_the_kl_schedule_reads_the_loss_specs_syntax() -> None:
    weight, schedule = parse_scheduled_weight("1e-3@ramp(1000,1600)")
    assert weight == 1e-3
    assert [schedule.factor(s) for s in (0, 999, 1000, 1300, 1600, 5000)] == \
        [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]
    weight, schedule = parse_scheduled_weight("0.5@start(20)")
    assert (weight, schedule.factor(19), schedule.factor(20)) == (0.5, 0.0, 1.0)
    assert parse_scheduled_weight(0.01)[0] == 0.01
    assert TrainConfig.from_dict({"latent": {"kl_weight": 0.01}}).latent.kl_weight == "0.01"


def test_a_plain_run_keeps_its_identity_and_config_file() -> None:
    plain = TrainConfig()
    assert not any(key.startswith("latent.") for key in plain.identity())
    assert "latent:" not in plain.to_yaml()
    latent = TrainConfig.from_dict({"latent": {"mode": "cvae", "dim": 4}})
    assert latent.identity()["latent.dim"] == 4 and "latent:" in latent.to_yaml()
    assert latent.fingerprint() != plain.fingerprint()
    assert TrainConfig.from_dict(latent.to_dict()) == latent


# -- pieces -------------------------------------------------------------------------------------
def test_collapse_monitor_warns_once_after_patience_steps_with_the_weight_on() -> None:
    monitor = CollapseMonitor(threshold=0.1, patience=3)
    assert monitor.update(0, 0.0, weight=0.0) is None  # warm-up: not counted
    assert [monitor.update(s, 0.01, 1.0) for s in (1, 2)] == [None, None]
    assert monitor.update(3, 0.5, 1.0) is None  # above the threshold: the streak restarts
    results = [monitor.update(s, 0.01, 1.0) for s in (4, 5, 6, 7)]
    assert results[:2] == [None, None] and results[3] is None
    assert results[2] is not None and "posterior collapse" in results[2] and "Fix:" in results[2]
    assert monitor.reported is not None and monitor.reported["step"] == 6
    restored = CollapseMonitor(0.1, 3)
    restored.load_state_dict(monitor.state_dict())
    assert restored.reported == monitor.reported and restored.update(8, 0.0, 1.0) is None
    assert CollapseMonitor(0.1, 0).update(0, 0.0, 1.0) is None  # patience 0: never


def test_step_noise_depends_on_seed_step_and_rank_only() -> None:
    def draw(seed: int, step: int, rank: int) -> torch.Tensor:
        return torch.randn(4, generator=step_generator(seed, step, rank, torch.device("cpu")))

    torch.testing.assert_close(draw(0, 5, 0), draw(0, 5, 0))
    assert not torch.equal(draw(0, 5, 0), draw(0, 6, 0))
    assert not torch.equal(draw(0, 5, 0), draw(0, 5, 1))
    assert not torch.equal(draw(0, 5, 0), draw(1, 5, 0))


def test_the_posterior_is_trained_and_reduced_by_ddp_but_not_evaluated(tmp_path: Path) -> None:
    module = TaskModule(_config(tmp_path / "x"))
    assert isinstance(module.model, LatentModel) and module.posterior is not None
    names = {name for name, _ in module.named_parameters()}
    posterior = {name for name in names if name.startswith("posterior.")}
    assert posterior and not posterior & set(module._ddp_params_and_buffers_to_ignore)
    trained = {id(p) for p in module.trained_parameters()}
    assert {id(p) for p in module.posterior.parameters()} <= trained
    optimizer = module.configure_optimizers()
    assert {id(p) for group in optimizer.param_groups for p in group["params"]} == trained


def test_broadcast_needs_a_model_with_input_channels(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "sr", task="super_resolve", model="super_resolution",
                         **{"latent.mode": "cvae", "model.options": {}})
    with pytest.raises(ValueError, match="has no in_channels option"):
        TaskModule(config)


# -- training -----------------------------------------------------------------------------------
def test_cvae_logs_kl_and_its_scheduled_weight_and_samples_from_the_prior(tmp_path: Path) -> None:
    result = train(_config(tmp_path / "run", steps=6, val_every=3,
                           **{"latent.kl_weight": "0.5@ramp(2,4)"}))
    rows = read_metrics(result.run_dir)
    assert column(rows, "train/kl_weight") == {s: 0.5 * min(1.0, max(0.0, (s - 2) / 2))
                                               for s in range(6)}
    kl, reconstruction, total = (column(rows, f"train/{k}") for k in ("kl", "reconstruction",
                                                                         "loss"))
    assert set(kl) == set(range(6)) and all(v >= 0 for v in kl.values())
    for step in range(6):  # loss = reconstruction + beta * KL (no free bits)
        beta = column(rows, "train/kl_weight")[step]
        assert total[step] == pytest.approx(reconstruction[step] + beta * kl[step], rel=1e-5)
    assert "val/kl" in result.metrics and "val/psnr" in result.metrics
    state = _state(result.last_checkpoint)
    assert any(k.startswith("posterior.") for k in state)  # trained and checkpointed
    run = open_run(result.run_dir, "last")  # the evaluated model: no posterior, prior samples
    assert isinstance(run.model, LatentModel)
    inputs = run.task.split(torch.stack([run.val_set[0], run.val_set[1]]))[0]
    samples = draw_samples(run.model, inputs, 3, seed=0)
    assert samples.shape == (2, 3, 3, 32, 32)
    torch.testing.assert_close(samples, draw_samples(run.model, inputs, 3, seed=0))


def test_free_bits_floor_the_charged_kl(tmp_path: Path) -> None:
    result = train(_config(tmp_path / "run", steps=2, val_every=2,
                           **{"latent.kl_weight": "1.0", "latent.free_bits": 100.0}))
    rows = read_metrics(result.run_dir)
    total, reconstruction = column(rows, "train/loss"), column(rows, "train/reconstruction")
    for step in total:  # 3 dims with KL far below 100 nats each: charged 300 nats
        assert total[step] == pytest.approx(reconstruction[step] + 300.0, rel=1e-6)


def test_cvae_resume_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    options = {"ema_decay": 0.9, "val_every": 2, "latent.kl_weight": "0.1@ramp(1,4)",
               "data.options": {"val_size": 4, "train_size": 12}}
    out = tmp_path / "run"
    train(_config(out, steps=4, **options))
    resumed = train(_config(out, steps=7, **options))
    straight = train(_config(tmp_path / "straight", steps=7, **options))
    assert resumed.resumed_from_step == 4
    a, b = _state(resumed.last_checkpoint), _state(straight.last_checkpoint)
    assert a.keys() == b.keys() and any(k.startswith("ema_model.") for k in a)
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_posterior_collapse_is_a_warning_and_a_note(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    # every KL is "collapsed" below a huge threshold: the note comes after `patience` steps
    # with the weight on (start(1): steps 1, 2, 3 -> reported at step 3)
    config = _config(tmp_path / "run", steps=5, val_every=5, **{
        "latent.kl_weight": "1e-3@start(1)", "latent.collapse_kl": 1e9,
        "latent.collapse_patience": 3})
    with caplog.at_level(logging.WARNING, logger="losslab.train.module"):
        result = train(config)
    assert sum("posterior collapse" in r.getMessage() for r in caplog.records) == 1
    note = read_notes(result.run_dir)["posterior_collapse"]
    assert note["step"] == 3 and note["steps_below"] == 3 and "free_bits" in note["fix"]
    assert read_notes(tmp_path / "nothing") == {}


def test_a_nan_reconstruction_is_skipped_like_any_step(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    original = MSELoss.distance
    calls = [0]

    def distance(self: MSELoss, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = original(self, prediction, target)
        if torch.is_grad_enabled():
            calls[0] += 1
            if calls[0] == 2:
                return value * float("nan")
        return value

    monkeypatch.setattr(MSELoss, "distance", distance)
    result = train(_config(tmp_path / "run", steps=4, val_every=4, skip_nonfinite=2))
    assert result.global_step == 4
    assert column(read_metrics(result.run_dir), "nonfinite/skipped") == {1: 1.0}
    assert all(torch.isfinite(v).all() for v in _state(result.last_checkpoint).values())


def test_film_injection_trains_a_unet(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "film", task="colorize", loss="mse", steps=2, val_every=2,
                         **{**CVAE, "latent.injection": "film"})
    result = train(config)
    run = open_run(result.run_dir, "last")
    assert run.model.injection == "film" and run.model.film_layers[0] == "inc"


def test_noise_mode_trains_on_m_draws_with_a_sample_based_loss(tmp_path: Path) -> None:
    options = {"loss": "energy_score + 0.1*mse", "latent.mode": "noise", "latent.dim": 3,
               "latent.samples": 3, "val_every": 2,
               "data.options": {"val_size": 4, "train_size": 12}}
    out = tmp_path / "run"
    train(tiny_config(out, steps=2, **options))
    resumed = train(tiny_config(out, steps=4, **options))
    straight = train(tiny_config(tmp_path / "straight", steps=4, **options))
    rows = read_metrics(straight.run_dir)
    assert set(column(rows, "train/energy_score")) == set(range(4))
    assert "val/loss/energy_score" in straight.metrics
    assert not any(k.startswith("posterior.") for k in _state(straight.last_checkpoint))
    a, b = _state(resumed.last_checkpoint), _state(straight.last_checkpoint)
    for key in b:  # the draws of a step do not depend on where the run was resumed
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    run = open_run(straight.run_dir, "last")
    inputs = run.task.split(run.val_set[0].unsqueeze(0))[0]
    samples = draw_samples(run.model, inputs, 4, seed=0)
    assert samples.shape == (1, 4, 3, 32, 32) and (samples[0, 0] - samples[0, 1]).abs().amax() > 0
