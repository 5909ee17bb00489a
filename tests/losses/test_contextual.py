"""Contextual loss: the similarity follows Mechrez et al.'s definition (a direct numpy version),
is invariant to permutations of the feature positions (its defining property), about 0 for
identical images with distinct features, grows with a real change; gradients, memory limit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losslab
from losslab.core.filters import gaussian_blur
from losslab.losses.contextual import ContextualLoss, contextual_similarity, largest_square_input


def _reference(x: np.ndarray, y: np.ndarray, h: float) -> float:
    """CX of one pair of feature sets (C, N), written from the paper's eq. 1-4 with loops."""
    mu = y.mean(axis=1, keepdims=True)
    xs = [(v / np.linalg.norm(v)) for v in (x - mu).T]
    ys = [(v / np.linalg.norm(v)) for v in (y - mu).T]
    d = np.array([[1.0 - float(a @ b) for b in ys] for a in xs])
    d_rel = d / (d.min(axis=1, keepdims=True) + 1e-5)
    w = np.exp((1.0 - d_rel) / h)
    cx = w / w.sum(axis=1, keepdims=True)
    return float(cx.max(axis=0).mean())


@pytest.mark.parametrize("bandwidth", [0.1, 0.5, 1.0])
def test_similarity_equals_the_papers_definition(bandwidth: float) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 30, generator=generator, dtype=torch.float64)
    y = x + 0.5 * torch.randn(2, 8, 30, generator=generator, dtype=torch.float64)
    ours = contextual_similarity(x, y, bandwidth)
    expected = [_reference(x[i].numpy(), y[i].numpy(), bandwidth) for i in range(2)]
    assert np.allclose(ours.numpy(), expected, rtol=1e-10)


def test_permuting_feature_positions_changes_nothing() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 50, generator=generator, dtype=torch.float64)
    y = torch.randn(2, 16, 50, generator=generator, dtype=torch.float64)
    value = contextual_similarity(x, y)
    order = torch.randperm(50, generator=generator)
    other = torch.randperm(50, generator=generator)
    assert torch.allclose(contextual_similarity(x[..., order], y), value, atol=1e-12)
    assert torch.allclose(contextual_similarity(x[..., order], y[..., other]), value, atol=1e-12)
    # ... while pairing the features by position (an L2 distance) would change.
    assert not torch.allclose((x[..., order] - y).square().mean(), (x - y).square().mean())


def test_identical_distinct_features_cost_about_zero_a_change_costs_more(
    photo_batch: torch.Tensor,
) -> None:
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(1, 32, 40, generator=generator, dtype=torch.float64)
    assert float(-torch.log(contextual_similarity(x, x))) < 1e-6
    loss = ContextualLoss(weights="random", reduction="none")
    target = photo_batch[:, :, :64, :64]
    same = loss(target, target)
    blurred = loss(gaussian_blur(target, 2.0), target)
    other = loss(target.roll(1, dims=0), target)
    assert (same < 0.5 * blurred).all() and (blurred > 0).all() and (other > same).all()


def test_a_shift_costs_far_less_than_a_blur_unlike_mse(photo_batch: torch.Tensor) -> None:
    target = photo_batch[:, :, 2:66, 2:66]
    shifted = photo_batch[:, :, 3:67, 3:67]
    blurred = gaussian_blur(target, 1.5)
    cx, mse = ContextualLoss(weights="random"), losslab.loss("mse")
    assert float(cx(shifted, target)) < float(cx(blurred, target))
    assert float(mse(shifted, target)) > float(mse(blurred, target))


def test_gradient_is_finite(photo_batch: torch.Tensor) -> None:
    target = photo_batch[:2, :, :48, :48]
    prediction = gaussian_blur(target, 1.0).requires_grad_(True)
    value = losslab.loss("contextual(layers=relu2_2,relu3_4, weights=random, bandwidth=0.2)")(
        prediction, target)
    value.backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0


def test_sizes_over_the_memory_limit_are_refused_with_the_size_that_fits() -> None:
    loss = ContextualLoss(layers=["relu2_2"], weights="random", max_positions=256)
    side = largest_square_input(256, 2)
    assert side == 33  # relu2_2 halves once: floor(33 / 2) = 16, 16 x 16 = 256 positions
    loss(torch.rand(1, 3, side, side), torch.rand(1, 3, side, side))
    with pytest.raises(ValueError, match=r"17x17 = 289 feature positions.*largest square input "
                                         r"that fits is 33x33 px"):
        loss(torch.rand(1, 3, side + 1, side + 1), torch.rand(1, 3, side + 1, side + 1))


@pytest.mark.parametrize(("spec", "message"), [
    ("contextual(bandwidth=0, weights=random)", "bandwidth"),
    ("contextual(layers=relu9_1, weights=random)", "unknown VGG19 layer"),
    ("contextual(max_positions=0, weights=random)", "max_positions"),
])
def test_bad_options_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        losslab.loss(spec)
