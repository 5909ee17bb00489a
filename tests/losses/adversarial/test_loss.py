"""losses.adversarial.loss: the adversarial term without a trainer (attaching a discriminator by
hand, the spec's parameters, the public collapse warning). With discriminators attached as the
trainer attaches them, the term is tested in tests/train/test_adversarial.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import losslab
from losslab.losses import AdversarialLoss
from losslab.losses.adversarial import DiscriminatorCollapseWarning
from losslab.models import build_discriminator


def test_a_term_without_a_discriminator_says_how_to_attach_one() -> None:
    term = AdversarialLoss(width=4, depth=2)
    assert term.discriminator is None and term.min_size is None
    with pytest.raises(ValueError, match="attach_discriminators"):
        term(torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24))
    with pytest.raises(ValueError, match="is unconditional but the discriminator is not"):
        term.attach_discriminator(build_discriminator("conditional_patch", width=4, depth=2))
    with pytest.raises(TypeError, match="forward_features"):
        term.attach_discriminator(nn.Conv2d(3, 1, 3))  # type: ignore[arg-type]
    term.attach_discriminator(build_discriminator("patch", width=4, depth=2))
    assert term.min_size == 12 and "discriminator.head.weight" in term.state_dict()


def test_spec_sets_every_parameter() -> None:
    term = losslab.loss(
        "adversarial(objective=lsgan, disc=patch_sn, start=500, adaptive=true, r1=10, width=8, "
        "depth=2, d_steps=2, lr_d=1e-4, betas=0.0,0.9, adaptive_d=true, d_low=0.5, d_high=0.8, "
        "collapse_steps=7, scales=3, channels=1, condition_channels=2, conditional=true)"
    )
    assert isinstance(term, AdversarialLoss)
    assert (term.objective, term.disc, term.start, term.adaptive, term.r1, term.d_steps) == (
        "lsgan", "patch_sn", 500, True, 10.0, 2
    )
    assert (term.betas, term.lr_d, term.adaptive_d, term.d_low, term.d_high) == (
        (0.0, 0.9), 1e-4, True, 0.5, 0.8)
    assert (term.collapse_steps, term.scales, term.channels, term.condition_channels) == (7, 3, 1, 2)
    assert term.norm == "none" and term.discriminator_name == "conditional_patch_sn"
    assert isinstance(losslab.loss("gan(vanilla)"), AdversarialLoss)
    with pytest.raises(ValueError, match="objective must be one of"):
        losslab.loss("adversarial(objective=wgan)")
    with pytest.raises(ValueError, match="write disc=patch, conditional=true"):
        losslab.loss("adversarial(disc=conditional_patch)")


def test_collapse_warning_class_is_public_so_users_can_filter_or_escalate_it() -> None:
    import losslab.losses as public

    assert "DiscriminatorCollapseWarning" in public.__all__
    assert public.DiscriminatorCollapseWarning is DiscriminatorCollapseWarning
    assert issubclass(public.DiscriminatorCollapseWarning, RuntimeWarning)
