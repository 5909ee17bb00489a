"""Gradient shares against hand-derived gradient norms of L1 and MSE."""

from __future__ import annotations

import math

import pytest
import torch

import losslab
from losslab.train import gradient_shares


def test_norms_match_hand_derivation() -> None:
    prediction = torch.rand(2, 3, 8, 8, requires_grad=True)
    target = torch.rand(2, 3, 8, 8)
    criterion = losslab.loss("l1 + 0.5*mse")
    shares = gradient_shares(criterion, prediction, target)
    n = prediction.numel()
    # d mean|p - t| / dp = sign(p - t) / n  ->  norm sqrt(n) / n (no ties in random data)
    l1_norm = 1.0 / math.sqrt(n)
    # d 0.5 * mean (p - t)^2 / dp = (p - t) / n  ->  norm ||p - t|| / n
    mse_norm = float((prediction - target).detach().norm()) / n
    assert shares["l1"][0] == pytest.approx(l1_norm, rel=1e-5)
    assert shares["mse"][0] == pytest.approx(mse_norm, rel=1e-5)
    assert shares["l1"][1] == pytest.approx(l1_norm / (l1_norm + mse_norm), rel=1e-5)
    assert shares["l1"][1] + shares["mse"][1] == pytest.approx(1.0)


def test_luma_view_norm_is_weight_vector_norm() -> None:
    prediction = torch.rand(1, 3, 4, 4, requires_grad=True)
    target = torch.rand(1, 3, 4, 4)
    shares = gradient_shares(losslab.loss("l1(luma) + mse"), prediction, target)
    weights = torch.tensor([0.299, 0.587, 0.114])
    pixels = 16  # luma L1 averages over N*1*H*W values; each RGB gets sign * w_c / pixels
    assert shares["l1(luma)"][0] == pytest.approx(float(weights.norm()) * math.sqrt(pixels) / pixels, rel=1e-5)


def test_scheduled_term_before_start_contributes_nothing() -> None:
    prediction = torch.rand(1, 3, 4, 4, requires_grad=True)
    criterion = losslab.loss("l1 + 0.01*mse@start(100)")
    criterion.set_step(10)
    shares = gradient_shares(criterion, prediction, torch.rand(1, 3, 4, 4))
    assert shares["mse"] == (0.0, 0.0) and shares["l1"][1] == 1.0
    criterion.set_step(100)
    assert gradient_shares(criterion, prediction, torch.rand(1, 3, 4, 4))["mse"][0] > 0


def test_needs_a_graph() -> None:
    with pytest.raises(ValueError, match="requires grad"):
        gradient_shares(losslab.loss("l1 + mse"), torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))
