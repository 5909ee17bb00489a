"""Gradient difference loss: a hand calculation, its invariances, gradients and errors."""

from __future__ import annotations

import pytest
import torch

import losslab
from losslab.losses import GradientDifferenceLoss
from losslab.losses.gradient import gradient_difference

# One 2x3 single-channel image pair, small enough to differentiate by hand.
PREDICTION = torch.tensor([[[[0.0, 0.1, 0.3], [0.2, 0.2, 0.2]]]])
TARGET = torch.tensor([[[[0.0, 0.2, 0.2], [0.1, 0.1, 0.5]]]])
# |dx p| = .1 .2 / 0 0, |dx t| = .2 0 / 0 .4 -> | | = .1 .2 0 .4 (4 positions)
# |dy p| = .2 .1 .1,    |dy t| = .1 .1 .3    -> | | = .1 0 .2   (3 positions)
HAND_ALPHA_1 = (0.1 + 0.2 + 0.0 + 0.4) / 4 + (0.1 + 0.0 + 0.2) / 3
HAND_ALPHA_2 = (0.01 + 0.04 + 0.0 + 0.16) / 4 + (0.01 + 0.0 + 0.04) / 3


@pytest.mark.parametrize(("alpha", "expected"), [(1, HAND_ALPHA_1), (2, HAND_ALPHA_2)])
def test_gdl_matches_hand_calculation(alpha: float, expected: float) -> None:
    assert float(GradientDifferenceLoss(alpha=alpha)(PREDICTION, TARGET)) == pytest.approx(expected)
    assert float(gradient_difference(PREDICTION, TARGET, alpha)[0]) == pytest.approx(expected)
    # A non-integer exponent goes through the general power.
    general = float(GradientDifferenceLoss(alpha=1.5)(PREDICTION, TARGET))
    hand = (0.1**1.5 + 0.2**1.5 + 0.4**1.5) / 4 + (0.1**1.5 + 0.2**1.5) / 3
    assert general == pytest.approx(hand)


def test_gdl_ignores_offsets_and_edge_signs_but_not_blur() -> None:
    target = torch.rand(2, 3, 16, 16) * 0.8
    criterion = GradientDifferenceLoss()
    assert float(criterion(target, target)) == 0.0
    assert float(criterion(target + 0.1, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(criterion(0.8 - target, target)) == pytest.approx(0.0, abs=1e-6)  # signs flipped
    blurred = (target + target.roll(1, -1) + target.roll(1, -2)) / 3
    assert float(criterion(blurred, target)) > 0.05


def test_gdl_gradient_flows_and_view_and_reduction() -> None:
    target = torch.rand(3, 3, 12, 12)
    prediction = torch.rand(3, 3, 12, 12, requires_grad=True)
    per_sample = GradientDifferenceLoss(reduction="none")(prediction, target)
    assert per_sample.shape == (3,)
    per_sample.sum().backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0
    luma = losslab.loss("gdl(luma)")
    assert luma.term_name == "gdl(luma)"
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    expected = gradient_difference((prediction * weights).sum(1, keepdim=True),
                                   (target * weights).sum(1, keepdim=True)).mean()
    assert torch.allclose(luma(prediction, target), expected)


def test_gdl_rejects_bad_alpha_and_tiny_images() -> None:
    with pytest.raises(ValueError, match="alpha must be >= 1"):
        GradientDifferenceLoss(alpha=0.5)
    with pytest.raises(ValueError, match="2x2"):
        GradientDifferenceLoss()(torch.rand(1, 3, 1, 8), torch.rand(1, 3, 1, 8))
