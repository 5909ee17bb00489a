"""train.adversarial: the adversarial and feature-matching terms with their discriminators built
and attached as the trainer does (attach_discriminators, DiscriminatorTrainer): the generator
side, what D minimises, conditioning, the adaptive weight in a sum, linking, every discriminator
architecture. The objectives alone are tested in tests/losses/adversarial/; the whole D step
in tests/train/test_adversarial_step.py."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import losslab
from losslab.losses import AdversarialLoss, FeatureMatchingLoss, LossContext, adversarial_terms
from losslab.losses.adversarial import (
    adaptive_weight,
    discriminator_accuracy,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
)
from losslab.models import MultiScaleDiscriminator, UNetDiscriminator
from losslab.train.adversarial import DiscriminatorTrainer, attach_discriminators


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


# -- every discriminator architecture -------------------------------------------------------
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
