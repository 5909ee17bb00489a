"""Frozen feature networks stay out of state_dict and are rebuilt identically (losses/frozen.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import losslab
from losslab.losses.frozen import keep_out_of_state_dict
from losslab.losses.perceptual import PerceptualLoss, vgg19_features

SPEC = "mse + 0.01*perceptual(weights=random, distance=swd)"


def test_perceptual_state_dict_keeps_its_directions_but_not_its_vgg() -> None:
    loss = losslab.loss(SPEC)
    keys = list(loss.state_dict())
    assert not [key for key in keys if ".slices." in key]
    # the SWD directions are seeded too, but small: they stay (as before)
    assert [key for key in keys if "swd_directions" in key] == [
        f"terms.1.swd_directions_{i}" for i in range(5)]
    assert sum(1 for _ in loss.terms[1].slices.parameters()) == 10  # still built, just not saved


def test_random_vgg_is_rebuilt_identically_from_its_seed() -> None:
    """weights=random is a seeded draw, so a rebuilt term equals the one that trained."""
    first, second = PerceptualLoss(weights="random"), PerceptualLoss(weights="random")
    other = PerceptualLoss(weights="random", seed=1)
    pairs = zip(first.slices.state_dict().items(), second.slices.state_dict().items(), strict=True)
    for (key, a), (_, b) in pairs:
        assert torch.equal(a, b), key
    assert not torch.equal(first.slices[0][0].weight, other.slices[0][0].weight)
    # and it is the seeded torchvision-style draw (independent of how deep the term goes)
    deep, _ = vgg19_features("random", seed=0, last_index=35)
    assert torch.equal(deep[0].weight, first.slices[0][0].weight)


def test_a_state_dict_without_the_vgg_loads_strictly_and_other_gaps_still_fail() -> None:
    saved = losslab.loss(SPEC).state_dict()
    fresh = losslab.loss(SPEC)
    result = fresh.load_state_dict(saved)  # strict: would raise on a missing key
    assert not result.missing_keys and not result.unexpected_keys
    damaged = {k: v for k, v in saved.items() if k != "terms.1.swd_directions_0"}
    with pytest.raises(RuntimeError, match=r'Missing key\(s\).*"terms\.1\.swd_directions_0"') as info:
        fresh.load_state_dict(damaged)
    assert "slices" not in str(info.value)


def test_an_older_state_dict_with_the_vgg_still_loads_and_its_values_are_used() -> None:
    loss = losslab.loss(SPEC)
    older = dict(loss.state_dict())
    vgg = {key: value.clone() for key, value in loss.terms[1].slices.state_dict().items()}
    older |= {f"terms.1.slices.{key}": value + 1.0 for key, value in vgg.items()}
    result = loss.load_state_dict(older)  # strict
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in loss.terms[1].slices.state_dict().items():
        assert torch.equal(value, vgg[key] + 1.0), key


def test_only_a_frozen_submodule_may_be_left_out() -> None:
    owner = nn.Module()
    owner.net = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"trainable parameters \(e\.g\. 'weight'\).*requires_grad_"):
        keep_out_of_state_dict(owner, "net")
    with pytest.raises(TypeError, match="'absent' is NoneType"):
        keep_out_of_state_dict(owner, "absent")
    owner.net.requires_grad_(False)
    owner.kept = nn.Linear(2, 1)
    keep_out_of_state_dict(owner, "net")
    assert sorted(owner.state_dict()) == ["kept.bias", "kept.weight"]
    # the hook matches "net." exactly, not every name starting with "net"
    owner.network = nn.Linear(1, 1)
    assert "network.weight" in owner.state_dict()


def test_lpips_network_is_left_out_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its backbone and heads come from files on every construction (a stand-in network here:
    the real files are not available offline)."""
    from losslab.losses import lpips as lpips_module

    def stand_in(net: str) -> nn.Module:
        return nn.Conv2d(3, 1, 1).requires_grad_(False).eval()

    monkeypatch.setattr(lpips_module, "build_lpips_model", stand_in)
    total = losslab.loss("l1 + lpips")
    assert list(total.state_dict()) == ["terms.0.view.matrix"]  # l1's colour view; no lpips
    assert not total.load_state_dict(total.state_dict()).missing_keys  # strict
