"""The adversarial term with multi-scale and U-Net discriminators (objectives over scales)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import losslab
from losslab.losses import AdversarialLoss, LossContext
from losslab.losses.adversarial import discriminator_loss, generator_loss
from losslab.models import MultiScaleDiscriminator, UNetDiscriminator
from losslab.train.adversarial import DiscriminatorTrainer, attach_discriminators


def trainer(condition: torch.Tensor | None = None, **options: object) -> DiscriminatorTrainer:
    term = AdversarialLoss(**{"width": 4, "depth": 1, **options})  # type: ignore[arg-type]
    (built,) = attach_discriminators(term, condition=condition)
    return built


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(module: nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, b) for p, b in zip(module.parameters(), before, strict=True))


@pytest.mark.parametrize("objective", ["hinge", "lsgan", "vanilla", "relativistic"])
def test_multiscale_objectives_are_the_mean_over_scales(objective: str) -> None:
    torch.manual_seed(0)
    d = trainer(disc="multiscale", scales=3, objective=objective)
    gan = d.term
    assert isinstance(gan.discriminator, MultiScaleDiscriminator) and gan.min_size == 24
    fake, real = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    disc = gan.discriminator
    fake_logits, real_logits = disc(fake * 2 - 1), disc(real * 2 - 1)
    expected_g = sum(generator_loss(f, r, objective)
                     for f, r in zip(fake_logits, real_logits, strict=True)) / 3
    torch.testing.assert_close(gan(fake, real), expected_g)
    expected_d = sum(discriminator_loss(r, f, objective)
                     for r, f in zip(real_logits, fake_logits, strict=True)) / 3
    logs = d.step(fake, real)
    assert logs["d_loss"] == pytest.approx(float(expected_d.detach()), rel=1e-5)


@pytest.mark.parametrize("disc", ["multiscale", "multiscale_sn", "unet_sn"])
def test_every_discriminator_trains_and_its_state_round_trips(disc: str) -> None:
    torch.manual_seed(0)
    fake, real, cond = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24), torch.rand(2, 1, 24, 24)
    d = trainer(disc=disc, r1=1.0, conditional=True, condition_channels=1)
    gan = d.term
    before = snapshot(gan.discriminator)
    logs = d.step(fake, real, cond)
    assert changed(gan.discriminator, before) and logs["r1"] > 0 and logs["d_updates"] == 1
    prediction = fake.clone().requires_grad_(True)
    gan(prediction, real, LossContext(condition=cond)).backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    # A D of the same kind built from an example condition loads the checkpointed state.
    other = trainer(cond, disc=disc, r1=1.0, conditional=True)
    other.term.load_state_dict(gan.state_dict())
    other.optimizer.load_state_dict(copy.deepcopy(d.optimizer.state_dict()))
    for mine, theirs in zip(other.term.state_dict().values(), gan.state_dict().values(), strict=True):
        torch.testing.assert_close(mine, theirs)


def test_unet_discriminator_judges_every_pixel() -> None:
    gan = trainer(disc="unet_sn", depth=2).term
    assert isinstance(gan.discriminator, UNetDiscriminator) and gan.min_size == 4
    assert gan.norm == "none"
    logits, _ = gan.run_discriminator(torch.rand(2, 3, 20, 12))
    assert [tuple(x.shape) for x in logits] == [(2, 1, 20, 12)]


def test_spec_names_each_discriminator_and_rejects_unknown_ones() -> None:
    for name in ("multiscale", "multiscale_sn", "unet_sn"):
        built = losslab.loss(f"l1 + 0.01*adversarial(disc={name}, width=4, depth=1, scales=2)")
        assert built.terms[1].disc == name
    with pytest.raises(ValueError, match=r"unknown discriminator 'unet'\. Did you mean 'unet_sn'"):
        losslab.loss("adversarial(disc=unet)")  # at the spec, before anything is built
    with pytest.raises(ValueError, match="disc must be a discriminator name"):
        losslab.loss("adversarial(disc=3)")
    with pytest.raises(ValueError, match="scales must be an integer >= 1"):
        losslab.loss("adversarial(disc=multiscale, scales=0)")
