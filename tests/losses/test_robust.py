"""Barron's general / adaptive robust loss: the special cases against their closed forms, a
brute-force quadrature of the partition function, per-channel parameters, views, gradients."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate, special

import losslab
from losslab.losses import RobustLoss
from losslab.losses.robust import (
    general_loss,
    general_loss_fixed,
    log_partition,
    log_partition_table,
)

X = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64)


@pytest.mark.parametrize(("alpha", "closed_form"), [
    (2.0, lambda z: 0.5 * z**2),
    (1.0, lambda z: torch.sqrt(z**2 + 1) - 1),
    (0.0, lambda z: torch.log(0.5 * z**2 + 1)),
    (-2.0, lambda z: 2 * z**2 / (z**2 + 4)),
    (-math.inf, lambda z: 1 - torch.exp(-0.5 * z**2)),
])
@pytest.mark.parametrize("scale", [0.1, 1.0])
def test_special_cases_equal_their_closed_forms(alpha: float, closed_form, scale: float) -> None:
    torch.testing.assert_close(general_loss(X, alpha, scale), closed_form(X / scale),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("alpha", "limit"), [
    (1e-4, lambda z: torch.log(0.5 * z**2 + 1)),
    (2 - 1e-4, lambda z: 0.5 * z**2),
    (-1e4, lambda z: 1 - torch.exp(-0.5 * z**2)),
])
def test_the_general_form_approaches_the_limits_continuously(alpha: float, limit) -> None:
    torch.testing.assert_close(general_loss(X, alpha, 1.0), limit(X), rtol=1e-3, atol=1e-3)
    float32 = general_loss(X.float(), alpha, 1.0).double()
    torch.testing.assert_close(float32, general_loss(X, alpha, 1.0), rtol=0, atol=1e-4)


def test_partition_function_against_closed_forms_and_brute_force_quadrature() -> None:
    table = log_partition_table()
    assert abs(float(table[0]) - math.log(math.pi * math.sqrt(2))) < 1e-9  # Cauchy
    assert abs(float(table[-1]) - math.log(math.sqrt(2 * math.pi))) < 1e-9  # Gaussian
    assert abs(float(table[512]) - math.log(2 * math.e * special.k1(1.0))) < 1e-9  # alpha = 1
    for alpha in (0.05, 0.3337, 0.9, 1.5, 1.97):
        density = lambda x, a=alpha: math.exp(-float(general_loss(  # noqa: E731
            torch.tensor(x, dtype=torch.float64), a, 1.0)))
        expected = math.log(2 * integrate.quad(density, 0, math.inf, limit=500)[0])
        got = float(log_partition(torch.tensor(alpha, dtype=torch.float64)))
        assert abs(got - expected) < 1e-5, (alpha, got, expected)  # measured <= 1.4e-6


def test_fixed_loss_is_rho_and_the_adaptive_one_the_likelihood() -> None:
    prediction, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    fixed = RobustLoss(alpha=1.0, scale=0.1)(prediction, target)
    torch.testing.assert_close(fixed, general_loss(prediction - target, 1.0, 0.1).mean())
    adaptive = RobustLoss(alpha=1.0, scale=0.1, learn_alpha=True, learn_scale=True)
    expected = (general_loss(prediction - target, 1.0, 0.1) + math.log(0.1)
                + math.log(2 * math.e * special.k1(1.0))).mean()
    torch.testing.assert_close(adaptive(prediction, target), expected.float(), rtol=1e-5,
                               atol=1e-5)
    assert [n for n, _ in adaptive.named_parameters()] == ["alpha_latent", "scale_latent"]
    assert adaptive.alpha().shape == (3,) and adaptive.scale().shape == (3,)


def test_learned_parameters_get_gradients_and_fit_the_noise() -> None:
    """Minimising the NLL over the scale of Gaussian residuals finds their standard deviation
    (alpha learned near 2 too): the likelihood is what makes learning meaningful."""
    generator = torch.Generator().manual_seed(0)
    target = torch.zeros(4, 1, 32, 32)
    noise = torch.randn(target.shape, generator=generator) * 0.05
    criterion = RobustLoss(alpha=1.0, scale=0.2, learn_alpha=True, learn_scale=True, channels=1)
    optimizer = torch.optim.Adam(criterion.parameters(), lr=0.05)
    for _ in range(400):
        optimizer.zero_grad()
        criterion(noise, target).backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all()
                   for p in criterion.parameters())
        optimizer.step()
    with torch.no_grad():
        assert float(criterion.alpha()) > 1.8
        assert abs(float(criterion.scale()) - 0.05) < 0.01


def test_per_channel_values_views_and_spec_language() -> None:
    prediction, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    criterion = losslab.loss("robust(alpha=2,1,0, scale=0.1)", check_values=False)
    values = criterion.__class__(alpha=(2.0, 1.0, 0.0), scale=0.1, reduction="none")(
        prediction, target)
    for channel, alpha in enumerate((2.0, 1.0, 0.0)):
        torch.testing.assert_close(values[:, channel],
                                   general_loss(prediction - target, alpha, 0.1)[:, channel])
    assert torch.isfinite(criterion(prediction, target))
    luma = losslab.loss("robust(2, 0.1, view=luma)")(prediction, target)
    torch.testing.assert_close(luma, 0.5 * (losslab.loss("mse(luma)")(prediction, target) / 0.01))
    assert losslab.loss("robust(view=luma, learn_scale=true)").scale().shape == (1,)
    total = losslab.loss("l1 + 0.1*robust(0, 0.05, lowpass=1)")(prediction, target)
    assert torch.isfinite(total)


def test_zero_difference_has_a_finite_zero_gradient() -> None:
    target = torch.rand(1, 3, 8, 8)
    for criterion in (losslab.loss("robust"), RobustLoss(alpha=-math.inf), losslab.loss("robust(0)"),
                      losslab.loss("robust(-1e3)"), losslab.loss("robust(2)"),
                      losslab.loss("robust(learn_alpha=true, learn_scale=true)")):
        prediction = target.clone().requires_grad_(True)
        criterion(prediction, target).backward()
        assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().max() == 0


def test_bad_arguments_name_the_fix() -> None:
    with pytest.raises(ValueError, match="scale must be positive"):
        RobustLoss(scale=0.0)
    with pytest.raises(ValueError, match="likelihood, which exists for 0 <= alpha <= 2"):
        RobustLoss(alpha=-2.0, learn_scale=True)
    with pytest.raises(ValueError, match="inside alpha_range"):
        RobustLoss(alpha=2.0, learn_alpha=True)
    with pytest.raises(ValueError, match="one per channel"):
        RobustLoss(alpha=(1.0, 2.0), scale=(0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="set channels=3"):
        RobustLoss(alpha=(1.0, 2.0))(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))
    criterion = RobustLoss(learn_scale=True)  # 3 channels
    with pytest.raises(ValueError, match="set channels=1"):
        criterion(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4))


@pytest.mark.parametrize("alpha", [2.0, 1.0, 0.0, -2.0, -math.inf, 0.5, 1.5, -7.0, 1.9999, 1e-5])
def test_the_scalar_path_equals_the_broadcast_one(alpha: float) -> None:
    torch.testing.assert_close(general_loss_fixed(X, alpha, 0.3),
                               general_loss(X, torch.tensor(alpha, dtype=torch.float64), 0.3),
                               rtol=1e-9, atol=1e-12)
