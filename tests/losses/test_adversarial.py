"""Adversarial and feature-matching terms: objectives, R1, adaptive weight, the generator side,
what D minimises, linking. The D step itself is tested in tests/train/test_adversarial.py."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import losslab
from losslab.losses import AdversarialLoss, FeatureMatchingLoss, LossContext, adversarial_terms
from losslab.losses.adversarial import (
    DiscriminatorCollapseWarning,
    adaptive_weight,
    discriminator_accuracy,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    r1_penalty,
)
from losslab.models import build_discriminator
from losslab.train.adversarial import attach_discriminators


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


def tiny_term(**options: object) -> AdversarialLoss:
    """A small term with its discriminator attached (as the trainer attaches it)."""
    term = AdversarialLoss(**{"width": 4, "depth": 2, **options})  # type: ignore[arg-type]
    if not term.conditional:
        attach_discriminators(term)
    return term


def test_generator_backward_leaves_d_alone() -> None:
    generator = nn.Conv2d(3, 3, 3, padding=1)
    term = tiny_term()
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    prediction = torch.sigmoid(generator(x))
    term(prediction, y).backward()
    assert all(p.grad is None for p in term.discriminator.parameters())
    assert all(p.requires_grad for p in term.discriminator.parameters())  # restored
    assert generator.weight.grad is not None


def test_discriminator_objective_matches_the_objective_on_d_and_keeps_g_out() -> None:
    term = tiny_term(objective="lsgan", r1=2.0)
    prediction = torch.rand(2, 3, 24, 24, requires_grad=True)
    target = torch.rand(2, 3, 24, 24)
    total, logs = term.discriminator_objective(prediction, target)
    real_logits = term.discriminator(2 * target - 1)
    fake_logits = term.discriminator(2 * prediction.detach() - 1)
    expected = discriminator_loss(real_logits, fake_logits, "lsgan")
    assert logs["d_loss"] == pytest.approx(float(expected.detach()) + logs["r1"], rel=1e-5)
    assert logs["r1"] > 0 and logs["d_accuracy"] == pytest.approx(
        float(discriminator_accuracy(real_logits, fake_logits, "lsgan")))
    assert set(logs) == {"d_loss", "r1", "real_logit", "fake_logit", "d_accuracy"}
    total.backward()
    assert prediction.grad is None  # the prediction is detached: D's loss never reaches G
    assert all(p.grad is not None for p in term.discriminator.parameters())
    _, without = term.discriminator_objective(prediction, target, r1=False)
    assert without["r1"] == 0.0


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


def test_start_step_gates_the_generator_loss() -> None:
    term = tiny_term(start=2)
    prediction = torch.rand(2, 3, 24, 24, requires_grad=True)
    target = torch.rand(2, 3, 24, 24)
    value = term(prediction, target)
    assert float(value.detach()) == 0.0 and value.requires_grad
    value.backward()
    assert torch.equal(prediction.grad, torch.zeros_like(prediction))
    assert term.last_logs["active"] == 0.0
    term.set_step(2)
    assert term.active and float(term(prediction, target).detach()) != 0.0
    term.set_step(0)
    assert not term.active


def test_non_finite_losses_raise_floating_point_error() -> None:
    term = tiny_term(check_values=False)
    bad = torch.rand(2, 3, 24, 24)
    bad[0, 0, 5, 5] = float("nan")
    with pytest.raises(FloatingPointError, match=r"discriminator loss is nan.*lower lr_d"):
        term.discriminator_objective(bad, torch.rand(2, 3, 24, 24))
    checked = tiny_term(check_values=True)
    with pytest.raises(FloatingPointError, match="generator loss is nan"):
        checked.evaluate(bad, torch.rand(2, 3, 24, 24))


def test_conditional_term_with_a_low_resolution_condition() -> None:
    term = AdversarialLoss(width=4, depth=2, conditional=True)
    prediction, target = torch.rand(2, 3, 24, 24, requires_grad=True), torch.rand(2, 3, 24, 24)
    low_res = torch.rand(2, 3, 12, 12)
    attach_discriminators(term, condition=low_res)
    term(prediction, target, LossContext(condition=low_res)).backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    assert term.discriminator.condition_channels == 3  # type: ignore[union-attr]
    assert term.discriminator_objective(prediction, target, low_res)[1]["d_loss"] > 0
    # The condition matters: a different condition changes the generator loss.
    with torch.no_grad():
        other = term(prediction, target, LossContext(condition=low_res.flip(-1)))
        assert float(other) != pytest.approx(
            float(term(prediction, target, LossContext(condition=low_res))))
    with pytest.raises(ValueError, match="conditional but got no condition"):
        term(prediction, target)


def test_relativistic_generator_loss_uses_the_target() -> None:
    prediction = torch.rand(2, 3, 24, 24)
    for objective, depends in (("relativistic", True), ("hinge", False)):
        term = tiny_term(objective=objective)
        a = float(term(prediction, torch.rand(2, 3, 24, 24)))
        b = float(term(prediction, torch.rand(2, 3, 24, 24)))
        assert (a != pytest.approx(b)) == depends


def test_inputs_reach_d_in_minus_one_to_one() -> None:
    term = tiny_term(input_range=(0, 255), check_values=False)
    seen = []
    term.discriminator.blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0]))
    term(torch.full((1, 3, 24, 24), 255.0), torch.zeros(1, 3, 24, 24))
    assert torch.equal(seen[0], torch.ones(1, 3, 24, 24))


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


def test_adaptive_weight_inside_a_sum_matches_an_independent_computation() -> None:
    head = nn.Conv2d(3, 3, 3, padding=1)
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    criterion = losslab.loss("l1 + 0.5*adversarial(adaptive=true, width=4, depth=2)")
    (discriminator,) = attach_discriminators(criterion)
    term = discriminator.term
    with pytest.raises(ValueError, match="last_layer=model"):
        criterion(torch.sigmoid(head(x)), y)
    prediction = torch.sigmoid(head(x))
    total = criterion(prediction, y, LossContext(last_layer=head.weight))
    rec = F.l1_loss(prediction, y)
    g = -term.discriminator(2 * prediction - 1).mean()
    expected_weight = adaptive_weight(rec, g, head.weight)
    assert term.last_logs["adaptive_weight"] == pytest.approx(float(expected_weight), rel=1e-5)
    assert float(total.detach()) == pytest.approx(float((rec + 0.5 * expected_weight * g).detach()), rel=1e-5)
    # The term alone: both given explicitly in the context give the same weight.
    term(prediction, y, LossContext(reconstruction=rec, last_layer=head.weight))
    assert term.last_logs["adaptive_weight"] == pytest.approx(float(expected_weight), rel=1e-5)
    with pytest.raises(ValueError, match="reconstruction loss"):
        term(prediction, y, LossContext(last_layer=head.weight))
    with pytest.raises(TypeError, match="final layer weight"):
        term(prediction, y, LossContext(reconstruction=rec, last_layer=head.weight.detach()))
    # Without gradients (validation) the last weight is reused and nothing is required.
    with torch.no_grad():
        term(prediction, y)
    assert term.last_logs["adaptive_weight"] == pytest.approx(float(expected_weight), rel=1e-5)


def test_feature_matching_shares_the_adversarial_discriminator() -> None:
    criterion = losslab.loss("l1 + 0.1*adversarial(width=4, depth=2) + 2*feature_matching")
    (discriminator,) = attach_discriminators(criterion)
    term = discriminator.term
    matching = next(m for m in criterion.modules() if isinstance(m, FeatureMatchingLoss))
    assert matching.partner is term and matching.min_size == term.min_size == 12
    prediction = torch.rand(2, 3, 24, 24, requires_grad=True)
    target = torch.rand(2, 3, 24, 24)
    value = matching(prediction, target)
    fake = term.discriminator.features(2 * prediction - 1)
    real = term.discriminator.features(2 * target - 1)
    expected = sum(F.l1_loss(f, r) for f, r in zip(fake, real, strict=True)) / len(fake)
    assert float(value.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    value.backward()
    assert prediction.grad.abs().sum() > 0
    assert all(p.grad is None for p in term.discriminator.parameters())
    # D's weights are stored once (under the adversarial term), not again under feature matching.
    assert not [k for k in criterion.state_dict() if "discriminator" in k and k.startswith("terms.2")]
    assert float(feature_matching_loss(fake, fake).detach()) == 0.0


def test_standalone_feature_matching_owns_and_trains_its_own_discriminator() -> None:
    criterion = losslab.loss("l1 + feature_matching(width=4, depth=2, objective=lsgan)")
    matching = criterion.terms[1]  # type: ignore[index]
    (discriminator,) = attach_discriminators(criterion)
    own = discriminator.term
    assert own is matching.adversary and matching.partner is own and own.objective == "lsgan"
    assert any(k.startswith("terms.1.adversary.discriminator.") for k in criterion.state_dict())
    prediction, target = torch.rand(2, 3, 24, 24, requires_grad=True), torch.rand(2, 3, 24, 24)
    before = float(matching(prediction, target).detach())
    criterion(prediction, target).backward()
    assert all(p.grad is None for p in own.discriminator.parameters())
    discriminator.step(prediction, target)
    assert float(matching(prediction, target).detach()) != pytest.approx(before)
    # Linking to an adversarial term drops the own discriminator.
    shared = losslab.loss("adversarial(width=4, depth=2) + feature_matching")
    assert len(adversarial_terms(shared)) == 1
    assert shared.terms[1].adversary is None  # type: ignore[index]


def test_collapse_warning_class_is_public_so_users_can_filter_or_escalate_it() -> None:
    import losslab.losses as public

    assert "DiscriminatorCollapseWarning" in public.__all__
    assert public.DiscriminatorCollapseWarning is DiscriminatorCollapseWarning
    assert issubclass(public.DiscriminatorCollapseWarning, RuntimeWarning)


def test_standalone_feature_matching_sets_channels_norm_and_d_steps_of_its_discriminator() -> None:
    term = losslab.loss("feature_matching(channels=1, norm=batch, d_steps=2, width=8, depth=2)")
    (discriminator,) = attach_discriminators(term)
    own = discriminator.term
    assert (own.channels, own.norm, own.d_steps) == (1, "batch", 2)
    assert own.discriminator.in_channels == 1
    assert any(isinstance(m, nn.BatchNorm2d) for m in own.discriminator.modules())
    gray = torch.rand(2, 1, 24, 24)
    assert term(gray, torch.rand(2, 1, 24, 24)).dim() == 0
    before = {k: v.clone() for k, v in own.discriminator.state_dict().items()}
    discriminator.step(gray, torch.rand(2, 1, 24, 24))
    assert discriminator.optimizer.state_dict()["state"][0]["step"] == 2
    assert any(not torch.equal(v, own.discriminator.state_dict()[k]) for k, v in before.items())


def test_adaptive_weight_reuses_the_sums_reconstruction_instead_of_recomputing_it() -> None:
    criterion = losslab.loss("l1 + 0.5*adversarial(adaptive=true, width=4, depth=2)")
    attach_discriminators(criterion)
    model = torch.nn.Conv2d(3, 3, 3, padding=1)
    l1 = criterion.terms[0]
    calls = []
    original = l1.compute
    l1.compute = lambda p, t: calls.append(1) or original(p, t)  # type: ignore[method-assign]
    prediction = model(torch.rand(2, 3, 32, 32))
    criterion(prediction, torch.rand(2, 3, 32, 32), LossContext(last_layer=model.weight)).backward()
    assert len(calls) == 1  # once for the total; the adaptive weight got that value
    assert list(criterion.last_values) == ["l1", "adversarial(adaptive=true,width=4,depth=2)"]
