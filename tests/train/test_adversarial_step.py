"""The adversarial step: building and attaching discriminators, D updates (d_steps,
adaptive_d, start, NaN, collapse), its state in checkpoints, and the own-loop example."""

from __future__ import annotations

import copy
import re
import textwrap
import warnings

import pytest
import torch
from torch import nn

import losslab
from losslab.losses import AdversarialLoss, LossContext, WeightedSum
from losslab.losses.adversarial import DISCRIMINATOR_ARCHITECTURES, DiscriminatorCollapseWarning
from losslab.models import ConditionalPatchDiscriminator, MultiScaleDiscriminator, UNetDiscriminator
from losslab.models.discriminators import discriminator_architectures, discriminator_name
from losslab.train import adversarial as adversarial_step
from losslab.train.adversarial import (
    D_ACCURACY_SMOOTHING,
    DiscriminatorTrainer,
    attach_discriminators,
    build_discriminator_for,
    check_discriminators,
    condition_channels,
)


def trainer(**options: object) -> DiscriminatorTrainer:
    term = AdversarialLoss(**{"width": 4, "depth": 2, **options})  # type: ignore[arg-type]
    (built,) = attach_discriminators(term)
    return built


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(module: nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, b) for p, b in zip(module.parameters(), before, strict=True))


def adam_steps(d: DiscriminatorTrainer) -> int:
    """Adam steps D has taken (every parameter is stepped together)."""
    state = d.optimizer.state_dict()["state"]
    return int(state[0]["step"]) if state else 0


# -- building and attaching ---------------------------------------------------------------------
def test_an_unknown_disc_fails_at_the_spec_with_the_closest_names() -> None:
    with pytest.raises(ValueError, match=re.escape(
            "unknown discriminator 'unet'. Did you mean 'unet_sn'? Known discriminators: "
            "multiscale, multiscale_sn, patch, patch_sn, unet_sn.")):
        losslab.loss("l1 + 0.01*adversarial(disc=unet, width=4, depth=1)")


def test_the_spec_and_the_model_tables_name_the_same_discriminators() -> None:
    """losses may not import models: the spec's copy of the names must not drift."""
    assert DISCRIMINATOR_ARCHITECTURES.names() == discriminator_architectures()
    for name in discriminator_architectures():  # every one has its conditional form
        assert discriminator_name(name, conditional=True) == f"conditional_{name}"


def test_setup_checks_the_names_against_the_model_table_before_building() -> None:
    criterion = losslab.loss("l1 + 0.01*adversarial(width=4, depth=1)")
    criterion.terms[1].disc = "unet"  # type: ignore[index]  # as if the tables had drifted
    message = ("adversarial term 'adversarial(width=4,depth=1)': unknown discriminator 'unet'. "
               "Did you mean 'unet_sn'?")
    with pytest.raises(ValueError, match=re.escape(message)):
        check_discriminators(criterion)
    with pytest.raises(ValueError, match="conditional=true selects the conditional form"):
        attach_discriminators(criterion)
    assert criterion.terms[1].discriminator is None  # type: ignore[index]  # nothing was built


@pytest.mark.parametrize(("disc", "cls", "min_size"), [
    ("patch", ConditionalPatchDiscriminator, 12), ("multiscale", MultiScaleDiscriminator, 24),
    ("unet_sn", UNetDiscriminator, 4)])
def test_each_architecture_is_built_with_the_terms_options(disc: str, cls: type,
                                                          min_size: int) -> None:
    term = AdversarialLoss(disc=disc, width=4, depth=2, scales=2, conditional=True)
    with pytest.raises(ValueError, match="condition=<one batch of model inputs>"):
        build_discriminator_for(term)
    clip = torch.rand(2, 3, 3, 6, 6)  # (N, T, C, h, w): three stacked frames, 9 channels
    assert condition_channels(clip) == 9
    built = build_discriminator_for(term, clip)
    assert isinstance(built, cls) and built.conditional and built.min_size == min_size
    if disc == "multiscale":
        assert built.scales == 2  # type: ignore[union-attr]
        built = built.discriminators[0]  # type: ignore[union-attr,index]
    assert built.condition_channels == 9  # type: ignore[union-attr]
    if disc == "patch":
        assert any(isinstance(m, nn.InstanceNorm2d) for m in built.modules())  # norm=auto


def test_attach_moves_a_new_discriminator_to_the_conditions_device_and_keeps_an_attached_one() -> None:
    term = AdversarialLoss(width=4, depth=2)
    mine = losslab.models.build_discriminator("patch", width=4, depth=2)
    term.attach_discriminator(mine)
    (d,) = attach_discriminators(term)
    assert d.discriminator is mine
    assert d.optimizer.param_groups[0]["params"][0] is next(mine.parameters())
    assert d.optimizer.defaults["lr"] == term.lr_d and d.optimizer.defaults["betas"] == term.betas


# -- the D step ---------------------------------------------------------------------------------
def test_the_d_step_updates_d_and_leaves_g_alone() -> None:
    generator = nn.Conv2d(3, 3, 3, padding=1)
    d = trainer()
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    prediction = torch.sigmoid(generator(x))
    d.term(prediction, y).backward()
    g_before, d_before = snapshot(generator), snapshot(d.discriminator)
    logs = d.step(prediction, y)
    assert set(logs) == {"d_loss", "r1", "real_logit", "fake_logit", "d_accuracy", "d_updates",
                         "d_accuracy_running"}
    assert changed(d.discriminator, d_before)
    assert not changed(generator, g_before)
    assert all(p.grad is None for p in d.discriminator.parameters())
    assert d.term.step == 1


def test_d_steps_runs_that_many_updates() -> None:
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    one, three = trainer(d_steps=1), trainer(d_steps=3)
    three.term.load_state_dict(one.term.state_dict())
    one.step(x, y)
    three.step(x, y)
    assert (adam_steps(one), adam_steps(three)) == (1, 3)


def test_start_step_gates_the_d_step() -> None:
    d = trainer(start=2)
    prediction, target = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    before = snapshot(d.discriminator)
    assert d.step(prediction, target) == {}
    assert d.step(prediction, target) == {}
    assert not changed(d.discriminator, before)
    assert d.term.step == 2 and d.term.active
    assert "d_loss" in d.step(prediction, target)


def test_a_non_finite_d_loss_raises_before_d_is_touched() -> None:
    d = trainer(check_values=False)
    bad = torch.rand(2, 3, 24, 24)
    bad[0, 0, 5, 5] = float("nan")
    before = snapshot(d.discriminator)
    with pytest.raises(FloatingPointError, match=r"discriminator loss is nan.*lower lr_d"):
        d.step(bad, torch.rand(2, 3, 24, 24))
    assert not changed(d.discriminator, before) and adam_steps(d) == 0
    d.skip()
    assert d.term.step == 1


def test_collapse_warning_fires_once_when_d_wins_outright() -> None:
    d = trainer(norm="none", lr_d=1e-2, collapse_steps=5)
    real, fake = torch.ones(4, 3, 24, 24), torch.zeros(4, 3, 24, 24)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        accuracies = [d.step(fake, real)["d_accuracy"] for _ in range(60)]
    collapse = [w for w in caught if issubclass(w.category, DiscriminatorCollapseWarning)]
    assert accuracies[-1] == 1.0
    assert len(collapse) == 1
    message = str(collapse[0].message)
    assert "lower lr_d" in message and "r1" in message and "patch_sn" in message


def test_no_collapse_warning_while_d_is_still_fooled() -> None:
    d = trainer(collapse_steps=5)
    images = torch.rand(4, 3, 24, 24)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscriminatorCollapseWarning)
        for _ in range(10):  # real == fake: D can never be right about every patch
            d.step(images, images)


@pytest.mark.parametrize("disc", ["patch", "patch_sn"])
def test_d_weights_and_optimizer_state_round_trip(disc: str) -> None:
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    first = trainer(disc=disc, r1=1.0)
    first.step(x, y)
    torch.manual_seed(123)
    second = trainer(disc=disc, r1=1.0)
    assert changed(second.discriminator, snapshot(first.discriminator))
    second.term.load_state_dict(first.term.state_dict())
    second.optimizer.load_state_dict(copy.deepcopy(first.optimizer.state_dict()))
    assert not changed(second.discriminator, snapshot(first.discriminator))
    first.step(x, y)
    second.step(x, y)
    for a, b in zip(first.discriminator.parameters(), second.discriminator.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert any(key.startswith("discriminator.") for key in first.term.state_dict())


def test_a_conditional_d_built_from_an_example_input_round_trips() -> None:
    image, condition = torch.rand(2, 3, 24, 24), torch.rand(2, 1, 24, 24)
    first = AdversarialLoss(width=4, depth=2, conditional=True)
    (d_first,) = attach_discriminators(first, condition=condition)
    d_first.step(image, image.flip(-1), condition)
    second = AdversarialLoss(width=4, depth=2, conditional=True)
    (d_second,) = attach_discriminators(second, condition=condition)
    second.load_state_dict(first.state_dict())
    d_second.optimizer.load_state_dict(copy.deepcopy(d_first.optimizer.state_dict()))
    assert second.discriminator.condition_channels == 1  # type: ignore[union-attr]
    d_first.step(image, image.flip(-1), condition)
    d_second.step(image, image.flip(-1), condition)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        torch.testing.assert_close(a, b)


# -- adaptive D updates -------------------------------------------------------------------------
@pytest.mark.parametrize(("accuracy", "expected"), [(0.95, 0), (0.75, 2), (0.3, 3)])
def test_adaptive_d_skips_when_winning_and_adds_a_step_near_chance(accuracy: float,
                                                                  expected: int) -> None:
    torch.manual_seed(0)
    d = trainer(depth=1, adaptive_d=True, d_steps=2, d_low=0.6, d_high=0.9)
    fake, real = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    d.d_accuracy = accuracy  # as if measured over the last updates
    before = snapshot(d.discriminator)
    logs = d.step(fake, real)
    assert logs["d_updates"] == expected and adam_steps(d) == expected
    assert changed(d.discriminator, before) == (expected > 0)
    # A skipped update still measures D: the running accuracy moves towards this step's one.
    keep = D_ACCURACY_SMOOTHING ** max(expected, 1)
    assert logs["d_accuracy_running"] == pytest.approx(
        keep * accuracy + (1 - keep) * logs["d_accuracy"], abs=0.05 if expected > 1 else 1e-6)
    assert all(p.grad is None for p in d.discriminator.parameters())


def test_adaptive_d_holds_a_winning_discriminator_back_over_training() -> None:
    """A D that wins every time (real = 0.9, fake = 0.1) is updated on only a few steps."""
    torch.manual_seed(0)
    fixed = trainer(depth=1, lr_d=1e-2)
    adaptive = trainer(depth=1, lr_d=1e-2, adaptive_d=True, d_low=0.6, d_high=0.9)
    adaptive.term.load_state_dict(fixed.term.state_dict())
    real, fake = torch.ones(4, 3, 16, 16) * 0.9, torch.ones(4, 3, 16, 16) * 0.1
    counts = [sum(d.step(fake, real)["d_updates"] for _ in range(30)) for d in (fixed, adaptive)]
    assert counts[0] == 30
    assert counts[1] < 20, counts  # skipped once the running accuracy passed d_high
    assert adaptive.d_accuracy is not None and adaptive.d_accuracy > 0.85


def test_fixed_d_steps_without_adaptive_d() -> None:
    d = trainer(d_steps=2)
    d.d_accuracy = 0.99
    assert d.planned_updates() == 2


# -- the own-loop example -----------------------------------------------------------------------
def own_loop_example() -> str:
    """The code block of losslab.train.adversarial's docstring that shows a user's own loop."""
    doc = adversarial_step.__doc__ or ""
    start = doc.index("Use in your own PyTorch loop")
    block = doc[doc.index("::", start) + 2 :]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def test_own_loop_example_runs_end_to_end() -> None:
    code = own_loop_example()
    assert "attach_discriminators(criterion)" in code and "d.step" in code
    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Sigmoid())
    loader = [(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)) for _ in range(3)]
    model_before = snapshot(model)
    namespace: dict[str, object] = {"model": model, "loader": loader}
    exec(compile(code, "adversarial-own-loop-example", "exec"), namespace)
    criterion = namespace["criterion"]
    (d,) = namespace["discriminators"]  # type: ignore[misc]
    assert isinstance(d, DiscriminatorTrainer) and d.term.objective == "hinge"
    assert d.term.step == 3 and adam_steps(d) == 3
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
        discriminators = attach_discriminators(criterion, condition=past[:1])
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, betas=betas)
        for _ in range(steps):
            index = torch.randint(0, len(past), (16,), generator=batches)
            inputs, targets = past[index], future[index]
            prediction = model(inputs)
            loss = criterion(prediction, targets, LossContext(condition=inputs))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for discriminator in discriminators:
                discriminator.step(prediction, targets, inputs)

    # Both models share an MSE warm-up; then one continues on MSE, the other on a small MSE term
    # plus a conditional LSGAN term.
    # A lone term is wrapped in a sum, as the trainer does, so one call takes the context.
    mse_model = next_frame_model()
    train(mse_model, WeightedSum([losslab.loss("mse")]), 300, (0.9, 0.999))
    gan_model = copy.deepcopy(mse_model)
    train(mse_model, WeightedSum([losslab.loss("mse")]), 300, (0.9, 0.999))
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
