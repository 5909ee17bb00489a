"""The adversarial term with multi-scale and U-Net discriminators, and adaptive D updates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import losslab
from losslab.losses import AdversarialLoss
from losslab.losses.adversarial import discriminator_loss, generator_loss
from losslab.models import MultiScaleDiscriminator, UNetDiscriminator


def term(**options: object) -> AdversarialLoss:
    return AdversarialLoss(**{"width": 4, "depth": 1, **options})  # type: ignore[arg-type]


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(module: nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, b) for p, b in zip(module.parameters(), before, strict=True))


@pytest.mark.parametrize("objective", ["hinge", "lsgan", "vanilla", "relativistic"])
def test_multiscale_objectives_are_the_mean_over_scales(objective: str) -> None:
    torch.manual_seed(0)
    gan = term(disc="multiscale", scales=3, objective=objective)
    assert isinstance(gan.discriminator, MultiScaleDiscriminator) and gan.min_size == 24
    fake, real = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    disc = gan.discriminator
    fake_logits, real_logits = disc(fake * 2 - 1), disc(real * 2 - 1)
    expected_g = sum(generator_loss(f, r, objective)
                     for f, r in zip(fake_logits, real_logits, strict=True)) / 3
    torch.testing.assert_close(gan(fake, real), expected_g)
    expected_d = sum(discriminator_loss(r, f, objective)
                     for r, f in zip(real_logits, fake_logits, strict=True)) / 3
    logs = gan.discriminator_step(fake, real)
    assert logs["d_loss"] == pytest.approx(float(expected_d.detach()), rel=1e-5)


@pytest.mark.parametrize("disc", ["multiscale", "multiscale_sn", "unet_sn"])
def test_every_discriminator_trains_and_its_state_round_trips(disc: str) -> None:
    torch.manual_seed(0)
    gan = term(disc=disc, r1=1.0, conditional=True, condition_channels=1)
    fake, real, cond = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24), torch.rand(2, 1, 24, 24)
    before = snapshot(gan.discriminator)
    logs = gan.discriminator_step(fake, real, cond)
    assert changed(gan.discriminator, before) and logs["r1"] > 0 and logs["d_updates"] == 1
    prediction = fake.clone().requires_grad_(True)
    gan(prediction, real, cond).backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    # A lazily built conditional D of the same kind is rebuilt from the checkpoint's shapes.
    lazy = term(disc=disc, r1=1.0, conditional=True)
    assert lazy.discriminator is None
    lazy.load_state_dict(gan.state_dict())
    lazy.load_optimizer_state_dict(gan.optimizer_state_dict())
    for mine, theirs in zip(lazy.state_dict().values(), gan.state_dict().values(), strict=True):
        torch.testing.assert_close(mine, theirs)


def test_unet_discriminator_judges_every_pixel() -> None:
    gan = term(disc="unet_sn", depth=2)
    assert isinstance(gan.discriminator, UNetDiscriminator) and gan.min_size == 4
    assert gan.norm == "none"
    logits, _ = gan._run(gan.discriminator, torch.rand(2, 3, 20, 12), None)
    assert [tuple(x.shape) for x in logits] == [(2, 1, 20, 12)]


def test_spec_names_each_discriminator_and_rejects_unknown_ones() -> None:
    for name in ("multiscale", "multiscale_sn", "unet_sn"):
        built = losslab.loss(f"l1 + 0.01*adversarial(disc={name}, width=4, depth=1, scales=2)")
        assert built.terms[1].disc == name
    with pytest.raises(ValueError, match="disc must be one of"):
        losslab.loss("adversarial(disc=unet)")
    with pytest.raises(ValueError, match="scales must be an integer >= 1"):
        losslab.loss("adversarial(disc=multiscale, scales=0)")


# -- adaptive D updates -------------------------------------------------------------------------
def _d_updates(gan: AdversarialLoss) -> int:
    """Adam steps D has taken (every parameter is stepped together)."""
    state = gan.optimizer.state_dict()["state"]
    return int(state[0]["step"]) if state else 0


@pytest.mark.parametrize(("accuracy", "expected"), [(0.95, 0), (0.75, 2), (0.3, 3)])
def test_adaptive_d_skips_when_winning_and_adds_a_step_near_chance(accuracy: float,
                                                                  expected: int) -> None:
    torch.manual_seed(0)
    gan = term(adaptive_d=True, d_steps=2, d_low=0.6, d_high=0.9)
    fake, real = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    gan.d_accuracy = accuracy  # as if measured over the last updates
    before = snapshot(gan.discriminator)
    logs = gan.discriminator_step(fake, real)
    assert logs["d_updates"] == expected and _d_updates(gan) == expected
    assert changed(gan.discriminator, before) == (expected > 0)
    # A skipped update still measures D: the running accuracy moves towards this step's one.
    assert logs["d_accuracy_running"] == pytest.approx(
        0.9 ** max(expected, 1) * accuracy + (1 - 0.9 ** max(expected, 1)) * logs["d_accuracy"],
        abs=0.05 if expected > 1 else 1e-6)
    assert all(p.grad is None for p in gan.discriminator.parameters())


def test_adaptive_d_holds_a_winning_discriminator_back_over_training() -> None:
    """A D that wins every time (real = ones, fake = zeros) is updated on only a few steps."""
    torch.manual_seed(0)
    fixed, adaptive = term(lr_d=1e-2), term(lr_d=1e-2, adaptive_d=True, d_low=0.6, d_high=0.9)
    adaptive.load_state_dict(fixed.state_dict())
    real, fake = torch.ones(4, 3, 16, 16) * 0.9, torch.ones(4, 3, 16, 16) * 0.1
    counts = [sum(gan.discriminator_step(fake, real)["d_updates"] for _ in range(30))
              for gan in (fixed, adaptive)]
    assert counts[0] == 30
    assert counts[1] < 20, counts  # skipped once the running accuracy passed d_high
    assert adaptive.d_accuracy is not None and adaptive.d_accuracy > 0.85


def test_adaptive_d_band_is_checked() -> None:
    with pytest.raises(ValueError, match="0 <= d_low < d_high <= 1"):
        term(adaptive_d=True, d_low=0.9, d_high=0.6)
    assert term().planned_updates() == 1  # fixed d_steps without adaptive_d
