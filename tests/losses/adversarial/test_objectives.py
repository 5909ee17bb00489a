"""losses.adversarial.objectives: the GAN objectives, D accuracy, R1 and the adaptive weight
against hand calculations (pure functions of logits and gradients; no discriminator)."""

from __future__ import annotations

import math

import pytest
import torch

from losslab.losses.adversarial import (
    adaptive_weight,
    discriminator_accuracy,
    discriminator_loss,
    generator_loss,
    r1_penalty,
)


def softplus(z: float) -> float:
    return math.log1p(math.exp(z))


def mean(*values: float) -> float:
    return sum(values) / len(values)


REAL = torch.tensor([1.0, -0.5]).view(1, 1, 1, 2)
FAKE = torch.tensor([0.2, -2.0]).view(1, 1, 1, 2)
# Relativistic logits: E[fake] = -0.9, E[real] = 0.25.
REAL_REL, FAKE_REL = (1.9, 0.4), (-0.05, -2.25)

HAND = {
    "vanilla": (
        mean(softplus(-1.0), softplus(0.5)) + mean(softplus(0.2), softplus(-2.0)),
        mean(softplus(-0.2), softplus(2.0)),
    ),
    "lsgan": (mean(0.0, 2.25) + mean(0.04, 4.0), mean(0.64, 9.0)),
    "hinge": (mean(0.0, 1.5) + mean(1.2, 0.0), 0.9),
    "relativistic": (
        mean(*(softplus(-r) for r in REAL_REL)) + mean(*(softplus(f) for f in FAKE_REL)),
        mean(*(softplus(r) for r in REAL_REL)) + mean(*(softplus(-f) for f in FAKE_REL)),
    ),
}


@pytest.mark.parametrize("objective", sorted(HAND))
def test_objectives_match_a_hand_calculation(objective: str) -> None:
    d_expected, g_expected = HAND[objective]
    assert float(discriminator_loss(REAL, FAKE, objective)) == pytest.approx(d_expected, rel=1e-6)
    assert float(generator_loss(FAKE, REAL, objective)) == pytest.approx(g_expected, rel=1e-6)


def test_relativistic_generator_loss_needs_the_real_logits() -> None:
    with pytest.raises(ValueError, match="real_logits"):
        generator_loss(FAKE, None, "relativistic")
    with pytest.raises(ValueError, match="objective must be one of"):
        discriminator_loss(REAL, FAKE, "wasserstein")  # type: ignore[arg-type]


@pytest.mark.parametrize(("objective", "expected"), [
    ("vanilla", 0.5), ("hinge", 0.5), ("lsgan", 0.75), ("relativistic", 1.0)
])
def test_discriminator_accuracy_thresholds(objective: str, expected: float) -> None:
    assert float(discriminator_accuracy(REAL, FAKE, objective)) == pytest.approx(expected)


def test_r1_penalty_matches_the_analytic_gradient_of_a_quadratic_discriminator() -> None:
    # D(x) = sum(w * x^2)  =>  grad_x D = 2 w x,  ||grad||^2 = 4 w^2 sum(x^2).
    w = torch.tensor(0.7, requires_grad=True)
    x = torch.randn(3, 2, 4, 4).requires_grad_(True)
    logits = (w * x**2).sum(dim=(1, 2, 3))
    penalty = r1_penalty(logits, x, gamma=10.0)
    squared = (x.detach() ** 2).flatten(1).sum(1)
    expected = 5.0 * (4 * 0.49 * squared).mean()
    assert float(penalty.detach()) == pytest.approx(float(expected), rel=1e-5)
    # It is differentiable w.r.t. D's parameter: d/dw = 5 * mean(8 w sum(x^2)).
    (grad_w,) = torch.autograd.grad(penalty, w)
    assert float(grad_w) == pytest.approx(float(5.0 * (8 * 0.7 * squared).mean()), rel=1e-5)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(logits, x.detach(), 1.0)


def test_adaptive_weight_matches_a_hand_calculation_on_a_toy_last_layer() -> None:
    w = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    h, t, c = torch.tensor([1.0, 2.0, -1.0]), torch.tensor([0.0, 1.0, 1.0]), torch.tensor([0.3, 0.1, -0.2])
    out = w * h
    rec = ((out - t) ** 2).sum()  # grad_w = 2 (w h - t) h
    g = -(out * c).sum()  # grad_w = -c h
    expected = (2 * (w.detach() * h - t) * h).norm() / ((c * h).norm() + 1e-4)
    weight = adaptive_weight(rec, g, w)
    assert float(weight) == pytest.approx(float(expected), rel=1e-5)
    assert not weight.requires_grad
    rec.backward()  # the graphs were retained for the real backward
    # A vanishing generator gradient is clamped at 1e4.
    out = w * h
    assert float(adaptive_weight(((out - t) ** 2).sum(), (out * 0).sum(), w)) == 1e4
    with pytest.raises(ValueError, match="last layer"):
        adaptive_weight(((w * h) ** 2).sum(), h.sum() * torch.ones(1, requires_grad=True).sum(), w)
