"""Adversarial and feature-matching terms: objectives, R1, adaptive weight, the D step, linking."""

from __future__ import annotations

import copy
import math
import textwrap
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import losslab
from losslab.losses import AdversarialLoss, FeatureMatchingLoss, adversarial_terms
from losslab.losses import adversarial as adv
from losslab.losses.adversarial import (
    DiscriminatorCollapseWarning,
    adaptive_weight,
    discriminator_accuracy,
    discriminator_loss,
    feature_matching_loss,
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


def tiny_term(**options: object) -> AdversarialLoss:
    return AdversarialLoss(**{"width": 4, "depth": 2, **options})  # type: ignore[arg-type]


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(module: nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, b) for p, b in zip(module.parameters(), before, strict=True))


def test_generator_backward_leaves_d_alone_and_the_d_step_leaves_g_alone() -> None:
    generator = nn.Conv2d(3, 3, 3, padding=1)
    term = tiny_term()
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    prediction = torch.sigmoid(generator(x))
    term(prediction, y).backward()
    assert all(p.grad is None for p in term.discriminator.parameters())
    assert all(p.requires_grad for p in term.discriminator.parameters())  # restored
    assert generator.weight.grad is not None
    g_before, d_before = snapshot(generator), snapshot(term.discriminator)
    logs = term.discriminator_step(prediction, y)
    assert set(logs) == {"d_loss", "r1", "real_logit", "fake_logit", "d_accuracy", "d_updates",
                         "d_accuracy_running"}
    assert changed(term.discriminator, d_before)
    assert not changed(generator, g_before)
    assert all(p.grad is None for p in term.discriminator.parameters())
    assert term.step == 1


def test_d_steps_runs_that_many_updates() -> None:
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    one, three = tiny_term(d_steps=1), tiny_term(d_steps=3)
    three.load_state_dict(one.state_dict())
    one.discriminator_step(x, y)
    three.discriminator_step(x, y)
    assert one.optimizer.state_dict()["state"][0]["step"] == 1  # type: ignore[union-attr]
    assert three.optimizer.state_dict()["state"][0]["step"] == 3  # type: ignore[union-attr]


def test_start_step_gates_both_the_generator_loss_and_the_d_step() -> None:
    term = tiny_term(start=2)
    prediction = torch.rand(2, 3, 24, 24, requires_grad=True)
    target = torch.rand(2, 3, 24, 24)
    value = term(prediction, target)
    assert float(value.detach()) == 0.0 and value.requires_grad
    value.backward()
    assert torch.equal(prediction.grad, torch.zeros_like(prediction))
    assert term.last_logs["active"] == 0.0
    before = snapshot(term.discriminator)
    assert term.discriminator_step(prediction, target) == {}
    assert term.discriminator_step(prediction, target) == {}
    assert not changed(term.discriminator, before)
    assert term.step == 2 and term.active
    assert float(term(prediction, target).detach()) != 0.0
    assert "d_loss" in term.discriminator_step(prediction, target)
    term.set_step(0)
    assert not term.active


def test_non_finite_losses_raise_floating_point_error_before_d_is_touched() -> None:
    term = tiny_term(check_values=False)
    bad = torch.rand(2, 3, 24, 24)
    bad[0, 0, 5, 5] = float("nan")
    before = snapshot(term.discriminator)
    with pytest.raises(FloatingPointError, match=r"discriminator loss is nan.*lower lr_d"):
        term.discriminator_step(bad, torch.rand(2, 3, 24, 24))
    assert not changed(term.discriminator, before)
    checked = tiny_term(check_values=True)
    with pytest.raises(FloatingPointError, match="generator loss is nan"):
        checked.evaluate(bad, torch.rand(2, 3, 24, 24))


def test_collapse_warning_fires_once_when_d_wins_outright() -> None:
    term = tiny_term(norm="none", lr_d=1e-2, collapse_steps=5)
    real, fake = torch.ones(4, 3, 24, 24), torch.zeros(4, 3, 24, 24)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        accuracies = [term.discriminator_step(fake, real)["d_accuracy"] for _ in range(60)]
    collapse = [w for w in caught if issubclass(w.category, DiscriminatorCollapseWarning)]
    assert accuracies[-1] == 1.0
    assert len(collapse) == 1
    message = str(collapse[0].message)
    assert "lower lr_d" in message and "r1" in message and "patch_sn" in message


def test_no_collapse_warning_while_d_is_still_fooled() -> None:
    term = tiny_term(collapse_steps=5)
    images = torch.rand(4, 3, 24, 24)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscriminatorCollapseWarning)
        for _ in range(10):  # real == fake: D can never be right about every patch
            term.discriminator_step(images, images)


@pytest.mark.parametrize("disc", ["patch", "patch_sn"])
def test_state_dict_and_optimizer_state_round_trip(disc: str) -> None:
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    first = tiny_term(disc=disc, r1=1.0)
    first.discriminator_step(x, y)
    torch.manual_seed(123)
    second = tiny_term(disc=disc, r1=1.0)
    assert changed(second.discriminator, snapshot(first.discriminator))
    second.load_state_dict(first.state_dict())
    second.load_optimizer_state_dict(copy.deepcopy(first.optimizer_state_dict()))
    assert not changed(second.discriminator, snapshot(first.discriminator))
    first.discriminator_step(x, y)
    second.discriminator_step(x, y)
    for a, b in zip(first.discriminator.parameters(), second.discriminator.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert any(key.startswith("discriminator.") for key in first.state_dict())


def test_lazy_conditional_discriminator_is_rebuilt_from_a_checkpoint() -> None:
    image, condition = torch.rand(2, 3, 24, 24), torch.rand(2, 1, 24, 24)
    first = tiny_term(conditional=True)
    assert first.discriminator is None and first.optimizer_state_dict() == {}
    first.discriminator_step(image, image.flip(-1), condition)
    second = tiny_term(conditional=True)
    with pytest.raises(ValueError, match="load the loss's state_dict first"):
        second.load_optimizer_state_dict(first.optimizer_state_dict())
    second.load_state_dict(first.state_dict())
    second.load_optimizer_state_dict(first.optimizer_state_dict())
    assert second.discriminator.condition_channels == 1  # type: ignore[union-attr]


def test_conditional_term_with_a_low_resolution_condition() -> None:
    term = tiny_term(conditional=True)
    prediction, target = torch.rand(2, 3, 24, 24, requires_grad=True), torch.rand(2, 3, 24, 24)
    low_res = torch.rand(2, 3, 12, 12)
    term(prediction, target, low_res).backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    assert term.discriminator.condition_channels == 3  # type: ignore[union-attr]
    assert "d_loss" in term.discriminator_step(prediction, target, low_res)
    # The condition matters: a different condition changes the generator loss.
    with torch.no_grad():
        other = term(prediction, target, low_res.flip(-1))
        assert float(other) != pytest.approx(float(term(prediction, target, low_res)))
    with pytest.raises(ValueError, match="condition"):
        tiny_term(conditional=True)(prediction, target)


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
        "depth=2, d_steps=2, lr_d=1e-4, betas=0.0,0.9)"
    )
    assert isinstance(term, AdversarialLoss)
    assert (term.objective, term.start, term.adaptive, term.r1, term.d_steps) == (
        "lsgan", 500, True, 10.0, 2
    )
    assert term.betas == (0.0, 0.9) and term.optimizer.defaults["lr"] == 1e-4  # type: ignore[union-attr]
    assert any(hasattr(m, "parametrizations") for m in term.discriminator.modules())
    assert term.min_size == 12
    assert isinstance(losslab.loss("gan(vanilla)"), AdversarialLoss)
    with pytest.raises(ValueError, match="objective must be one of"):
        losslab.loss("adversarial(objective=wgan)")
    with pytest.raises(ValueError, match="disc must be one of"):
        losslab.loss("adversarial(disc=unet)")


def test_adaptive_weight_inside_a_sum_matches_an_independent_computation() -> None:
    head = nn.Conv2d(3, 3, 3, padding=1)
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    criterion = losslab.loss("l1 + 0.5*adversarial(adaptive=true, width=4, depth=2)")
    (term,) = adversarial_terms(criterion)
    with pytest.raises(ValueError, match="set_last_layer"):
        criterion(torch.sigmoid(head(x)), y)
    term.set_last_layer(head.weight)
    prediction = torch.sigmoid(head(x))
    total = criterion(prediction, y)
    rec = F.l1_loss(prediction, y)
    g = -term.discriminator(2 * prediction - 1).mean()
    expected_weight = adaptive_weight(rec, g, head.weight)
    assert term.last_logs["adaptive_weight"] == pytest.approx(float(expected_weight), rel=1e-5)
    assert float(total.detach()) == pytest.approx(float((rec + 0.5 * expected_weight * g).detach()), rel=1e-5)
    # The trainer path: a reconstruction total handed in gives the same weight.
    term.set_reconstruction_loss(rec)
    term.evaluate(prediction, y)
    assert term.last_logs["adaptive_weight"] == pytest.approx(float(expected_weight), rel=1e-5)
    unlinked = tiny_term(adaptive=True)
    unlinked.set_last_layer(head.weight)
    with pytest.raises(ValueError, match="reconstruction loss"):
        unlinked(prediction, y)


def test_feature_matching_shares_the_adversarial_discriminator() -> None:
    criterion = losslab.loss("l1 + 0.1*adversarial(width=4, depth=2) + 2*feature_matching")
    (term,) = adversarial_terms(criterion)
    matching = next(m for m in criterion.modules() if isinstance(m, FeatureMatchingLoss))
    assert matching.partner is term
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
    (own,) = adversarial_terms(criterion)
    assert own is matching.adversary and matching.partner is own and own.objective == "lsgan"
    assert any(k.startswith("terms.1.adversary.discriminator.") for k in criterion.state_dict())
    prediction, target = torch.rand(2, 3, 24, 24, requires_grad=True), torch.rand(2, 3, 24, 24)
    before = float(matching(prediction, target).detach())
    criterion(prediction, target).backward()
    assert all(p.grad is None for p in own.discriminator.parameters())
    own.discriminator_step(prediction, target)
    assert float(matching(prediction, target).detach()) != pytest.approx(before)
    # Linking to an adversarial term drops the own discriminator.
    shared = losslab.loss("adversarial(width=4, depth=2) + feature_matching")
    assert len(adversarial_terms(shared)) == 1
    assert shared.terms[1].adversary is None  # type: ignore[index]


def readme_example() -> str:
    """The code block of the module docstring that shows a user's own training loop."""
    doc = adv.__doc__ or ""
    start = doc.index("Use in your own PyTorch loop")
    block = doc[doc.index("::", start) + 2 :]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def test_readme_example_runs_end_to_end() -> None:
    code = readme_example()
    assert "adversarial_terms(criterion)" in code and "discriminator_step" in code
    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Sigmoid())
    loader = [(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)) for _ in range(3)]
    model_before = snapshot(model)
    namespace: dict[str, object] = {"model": model, "loader": loader}
    exec(compile(code, "adversarial-readme-example", "exec"), namespace)
    criterion = namespace["criterion"]
    (term,) = namespace["gan_terms"]  # type: ignore[misc]
    assert isinstance(term, AdversarialLoss) and term.objective == "hinge"
    assert term.step == 3 and term.optimizer.state_dict()["state"][0]["step"] == 3  # type: ignore[union-attr]
    assert changed(model, model_before)
    assert set(namespace["logs"]) >= {"d_loss", "d_accuracy"}  # type: ignore[arg-type]
    assert set(criterion.last_values) == {"l1", "adversarial(objective=hinge)"}  # type: ignore[attr-defined]


# -- the mission check: adversarial training is sharp where MSE is blurred -------------------
CUTOFF = 0.25  # fraction of the Nyquist frequency: periods shorter than 8 pixels


def high_frequency_energy(images: torch.Tensor, cutoff: float = CUTOFF) -> torch.Tensor:
    """Total power of the 2-D spectrum (all channels and images) at radius > cutoff * Nyquist."""
    power = torch.fft.fft2(images).abs().square()
    fy, fx = torch.fft.fftfreq(images.shape[-2]), torch.fft.fftfreq(images.shape[-1])
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / 0.5
    return (power * (radius > cutoff)).sum()


def ambiguous_future_pairs(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(past frame, future frame) pairs: a 6-px shape that jumps 6 px in one of 4 directions."""
    try:
        from losslab.data import build_datasets

        train, _ = build_datasets(
            "moving_shapes", crop_size=24, seed=0, train_size=count, val_size=1, frames=2,
            shape_size=6, speed=6,
        )
        clips = torch.stack([train[i] for i in range(count)])
        return clips[:, 0], clips[:, 1]
    except ImportError:  # the data package is optional for this test
        generator = torch.Generator().manual_seed(0)
        past, future = torch.zeros(count, 3, 24, 24), torch.zeros(count, 3, 24, 24)
        steps = [(0, 6), (6, 0), (0, -6), (-6, 0)]
        for i in range(count):
            top, left = (int(v) for v in torch.randint(6, 13, (2,), generator=generator))
            colour = torch.rand(3, 1, 1, generator=generator).clamp(min=0.15)
            colour = colour / colour.max()
            dy, dx = steps[int(torch.randint(0, 4, (1,), generator=generator))]
            past[i, :, top : top + 6, left : left + 6] = colour
            future[i, :, top + dy : top + dy + 6, left + dx : left + dx + 6] = colour
        return past, future


class LeakyClamp(nn.Module):
    """Identity inside [0, 1], slope 0.05 outside (keeps gradients alive, unlike a clamp)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        clamped = x.clamp(0.0, 1.0)
        return clamped + 0.05 * (x - clamped)


def next_frame_model(width: int = 16) -> nn.Module:
    # Receptive-field radius 6 = the jump: every output pixel can see where the shape was.
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
        nn.Conv2d(width, 3, 3, padding=1), LeakyClamp(),
    )


@pytest.mark.slow
def test_adversarial_training_is_sharp_where_mse_regresses_to_the_blurred_mean() -> None:
    torch.manual_seed(0)
    past, future = ambiguous_future_pairs(512)
    batches = torch.Generator().manual_seed(0)

    def train(model: nn.Module, criterion: nn.Module, steps: int, betas: tuple[float, float]) -> None:
        gan_terms = adversarial_terms(criterion)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, betas=betas)
        for _ in range(steps):
            index = torch.randint(0, len(past), (16,), generator=batches)
            inputs, targets = past[index], future[index]
            prediction = model(inputs)
            loss = criterion(prediction, targets, inputs)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for term in gan_terms:
                term.discriminator_step(prediction, targets, inputs)

    # Both models share an MSE warm-up; then one continues on MSE, the other on a small MSE term
    # plus a conditional LSGAN term.
    mse_model = next_frame_model()
    train(mse_model, losslab.loss("mse"), 300, (0.9, 0.999))
    gan_model = copy.deepcopy(mse_model)
    train(mse_model, losslab.loss("mse"), 300, (0.9, 0.999))
    gan = losslab.loss(
        "0.1*mse + adversarial(objective=lsgan, conditional=true, width=32, depth=2)",
        check_values=False,
    )
    train(gan_model, gan, 300, (0.5, 0.999))

    with torch.no_grad():
        reference = high_frequency_energy(future[:128])
        mse_ratio = float(high_frequency_energy(mse_model(past[:128])) / reference)
        gan_ratio = float(high_frequency_energy(gan_model(past[:128])) / reference)
    # MSE predicts the mean of the 4 futures: 4 quarter-intensity ghosts, ~1/4 of the energy.
    print(f"high-frequency energy ratio vs target: mse {mse_ratio:.3f}, adversarial {gan_ratio:.3f}")
    assert mse_ratio < 0.5, mse_ratio
    assert gan_ratio >= 1.5 * mse_ratio, (gan_ratio, mse_ratio)


def test_collapse_warning_class_is_public_so_users_can_filter_or_escalate_it() -> None:
    import losslab.losses as public

    assert "DiscriminatorCollapseWarning" in public.__all__
    assert public.DiscriminatorCollapseWarning is DiscriminatorCollapseWarning
    assert issubclass(public.DiscriminatorCollapseWarning, RuntimeWarning)


def test_standalone_feature_matching_sets_channels_norm_and_d_steps_of_its_discriminator() -> None:
    term = losslab.loss("feature_matching(channels=1, norm=batch, d_steps=2, width=8, depth=2)")
    (own,) = adversarial_terms(term)
    assert (own.channels, own.norm, own.d_steps) == (1, "batch", 2)
    assert own.discriminator.in_channels == 1
    assert any(isinstance(m, nn.BatchNorm2d) for m in own.discriminator.modules())
    gray = torch.rand(2, 1, 24, 24)
    assert term(gray, torch.rand(2, 1, 24, 24)).dim() == 0
    before = copy.deepcopy(own.discriminator.state_dict())
    own.discriminator_step(gray, torch.rand(2, 1, 24, 24))
    assert own.optimizer.state_dict()["state"][0]["step"] == 2  # type: ignore[union-attr]
    assert any(not torch.equal(v, own.discriminator.state_dict()[k]) for k, v in before.items())


def test_adaptive_weight_reuses_the_sums_reconstruction_instead_of_recomputing_it() -> None:
    criterion = losslab.loss("l1 + 0.5*adversarial(adaptive=true, width=4, depth=2)")
    (term,) = adversarial_terms(criterion)
    model = torch.nn.Conv2d(3, 3, 3, padding=1)
    term.set_last_layer(model.weight)
    l1 = criterion.terms[0]
    calls = []
    original = l1.compute
    l1.compute = lambda p, t: calls.append(1) or original(p, t)  # type: ignore[method-assign]
    prediction = model(torch.rand(2, 3, 32, 32))
    criterion(prediction, torch.rand(2, 3, 32, 32)).backward()
    assert len(calls) == 1  # once for the total; the adaptive weight got that value
    assert list(criterion.last_values) == ["l1", "adversarial(adaptive=true,width=4,depth=2)"]
