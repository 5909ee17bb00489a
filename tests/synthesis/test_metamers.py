"""Loss metamers: each loss is driven to a small fraction of its start value, and what the loss
does not measure is left as the start had it (checked against independent colour transforms)."""

from __future__ import annotations

import importlib
import itertools

import pytest
import torch

import losslab
from losslab.losses.views import ChromaView, LumaView
from losslab.synthesis import load_image, metamers
from losslab.synthesis.metamers import (
    MetamerResult,
    continuation_sigma,
    largest_sigma,
    resolve_schedule,
)

STEPS = 200


def test_mse_metamer_is_the_target_from_every_start(small_target: torch.Tensor) -> None:
    result = metamers("mse", small_target, steps=STEPS)
    assert result.start_names == ["noise", "blur", "photo"]
    for numbers in result.numbers:
        assert numbers["loss_ratio"] <= 0.02
        assert numbers["rmse"] <= 0.01
        assert numbers["start_rmse"] > 0.05  # the starts really were elsewhere
    independent = (result.metamers - small_target).square().mean(dim=(1, 2, 3)).sqrt()
    assert independent.max() <= 0.01


def test_luma_metamer_keeps_the_starts_colours(small_target: torch.Tensor) -> None:
    result = metamers("l1(luma)", small_target, starts=["noise"], steps=STEPS)
    numbers = result["noise"]
    assert numbers["loss_ratio"] <= 0.02
    assert numbers["err_luma"] <= 0.02
    assert numbers["err_chroma"] >= 5 * numbers["err_luma"]
    # Away from the bounds, Adam's step is grey: Cb and Cr stay exactly the start's. A start
    # in [0.4, 0.6] and a target compressed to [0.3, 0.7] keep every channel off 0 and 1.
    target = 0.3 + 0.4 * small_target
    start = 0.4 + 0.2 * torch.rand(small_target.shape, generator=torch.Generator().manual_seed(1))
    inner = metamers("l1(luma)", target, starts={"mid-grey noise": start}, steps=STEPS)
    metamer = inner.metamers
    assert metamer.min() > 0.01 and metamer.max() < 0.99  # never clamped
    assert inner["mid-grey noise"]["err_luma"] <= 0.01
    chroma = ChromaView()
    assert torch.allclose(chroma(metamer), chroma(start), atol=1e-4)
    luma = LumaView()
    assert (luma(result.metamers) - luma(small_target)).abs().mean() <= 0.02


def test_red_metamer_leaves_green_and_blue_untouched(small_target: torch.Tensor) -> None:
    result = metamers("l1(red)", small_target, starts=["noise", "photo"], steps=STEPS)
    for name in ("noise", "photo"):
        numbers = result[name]
        assert numbers["loss_ratio"] <= 0.02
        assert numbers["err_red"] <= 0.02
        assert numbers["err_green"] >= 5 * numbers["err_red"]
        assert numbers["err_blue"] >= 5 * numbers["err_red"]
    # a zero gradient on green and blue: those channels are the start's, bit for bit
    assert torch.equal(result.metamers[:, 1:], result.starts[:, 1:])


@pytest.mark.parametrize("spec", ["l1", "ssim", "charbonnier", "frequency", "mse(chroma)"])
def test_every_pixel_and_structural_loss_reaches_two_percent(
    spec: str, small_target: torch.Tensor
) -> None:
    result = metamers(spec, small_target, starts=["noise", "blur"], steps=STEPS)
    for name, numbers in zip(result.start_names, result.numbers, strict=True):
        assert numbers["loss_ratio"] <= 0.02, (spec, name, numbers["loss_ratio"])
        # the reported value is the loss itself, recomputed independently here
        final = float(losslab.loss(spec)(result.metamer(name), small_target))
        assert final == pytest.approx(numbers["loss_final"], rel=1e-4, abs=1e-8)


@pytest.mark.parametrize("spec", ["gdl", "gmsd"])
def test_gradient_magnitude_losses_reach_two_percent_from_every_far_start(
    spec: str, small_target: torch.Tensor
) -> None:
    """Issue 14's target for the losses blind to edge signs, with the default schedule (the
    automatic continuation from the coarsest blur, three cycles): noise, the blur and another
    photo all end at <= 2 % of their start's loss (at 32 px: gdl 0.2 / 0.4 / 0.6 %, gmsd
    0.7 / 0.7 / 1.1 % measured; plain descent stops at 9 / 3 / 29 % and 1.8 / 0.3 / 2.3 %)."""
    result = metamers(spec, small_target)
    assert (result.continuation, result.cycles) == (pytest.approx(31 / 3), 3)
    for name, numbers in zip(result.start_names, result.numbers, strict=True):
        assert numbers["loss_ratio"] <= 0.02, (spec, name, numbers["loss_ratio"])
        # the reported value is the plain loss of the returned image, recomputed here
        final = float(losslab.loss(spec)(result.metamer(name), small_target))
        assert final == pytest.approx(numbers["loss_final"], rel=1e-4, abs=1e-8)
    assert result.metamers.min() >= 0.0 and result.metamers.max() <= 1.0


def test_plain_descent_of_gdl_stops_in_an_edge_sign_minimum(small_target: torch.Tensor) -> None:
    """Why the automatic continuation exists: without it, gdl from another photo keeps the
    photo's edge signs and stops far above the target (30 % at 32 px, docs/synthesis.md)."""
    plain = metamers("gdl", small_target, starts=["photo"], steps=STEPS, continuation="off")
    assert plain.continuation is None and plain.cycles == 1
    assert plain["photo"]["loss_ratio"] > 0.1
    default = metamers("gdl", small_target, starts=["photo"], steps=STEPS)
    assert default["photo"]["loss_ratio"] < 0.1 * plain["photo"]["loss_ratio"]


@pytest.mark.parametrize("spec", ["gdl", "gmsd"])
def test_gradient_magnitude_losses_reach_two_percent_inside_their_basin(
    spec: str, small_target: torch.Tensor
) -> None:
    """From a start inside the target's basin (target + noise of std 0.01) plain descent
    converges with a step size (lr=0.005) below the start's distance. The default lr=0.05
    moves every pixel by 5x that distance in its first steps and flips weak edges: plain
    descent then stops at 17 % (gdl) and 32 % (gmsd) of the start's loss at 32 px, the default
    continuation at 2.3 % and 8 %. So a start close to the target needs a smaller lr."""
    noise = torch.randn(small_target.shape, generator=torch.Generator().manual_seed(0))
    near = (small_target + 0.01 * noise).clamp(0, 1)
    result = metamers(spec, small_target, starts={"near": near}, steps=STEPS, lr=0.005,
                      continuation="off")
    numbers = result["near"]
    assert numbers["loss_ratio"] <= 0.02, numbers["loss_ratio"]
    final = float(losslab.loss(spec)(result.metamer("near"), small_target))
    assert final == pytest.approx(numbers["loss_final"], rel=1e-4, abs=1e-8)
    default = metamers(spec, small_target, starts={"near": near}, steps=STEPS,
                       continuation="off")
    assert default["near"]["loss_ratio"] > 5 * numbers["loss_ratio"]


def test_continuation_schedule_is_geometric_then_off() -> None:
    sigmas = [continuation_sigma(step, 300, 16.0, 2 / 3) for step in range(300)]
    assert sigmas[0] == 16.0
    # equal time per octave: a constant ratio between consecutive steps while it runs
    ratios = [b / a for a, b in itertools.pairwise(sigmas[:200])]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-9)
    assert ratios[0] == pytest.approx((0.25 / 16) ** (1 / 200), rel=1e-9)
    assert 0.25 < sigmas[199] < 0.26 and sigmas[200:] == [0.0] * 100
    assert continuation_sigma(0, 300, None, 2 / 3) == 0.0
    assert continuation_sigma(0, 300, 0.0, 2 / 3) == 0.0


@pytest.mark.parametrize(
    ("spec", "continuation", "cycles", "lr", "expected"),
    [
        # blind to edge signs: the coarsest blur, 3 cycles, the larger step
        ("gdl", "auto", None, None, (127 / 3, 3, 0.1)),
        ("gmsd", "auto", None, None, (127 / 3, 3, 0.1)),
        ("ms_gmsd", "auto", None, None, (127 / 3, 3, 0.1)),
        ("haarpsi", "auto", None, None, (127 / 3, 3, 0.1)),
        ("gdl(luma)", "auto", None, None, (127 / 3, 3, 0.1)),  # a view keeps what it compares
        ("mse + 0.1*gdl", "auto", None, None, (127 / 3, 3, 0.1)),  # one such term is enough
        ("mse", "auto", None, None, (None, 1, 0.05)),
        ("l1(luma) + ssim", "auto", None, None, (None, 1, 0.05)),
        ("mdsi", "auto", None, None, (None, 1, 0.05)),  # compares signed values too
        ("gdl", "auto", 2, 0.02, (127 / 3, 2, 0.02)),
        ("gdl", "off", None, None, (None, 1, 0.05)),
        ("gdl", None, None, None, (None, 1, 0.05)),
        ("gdl", 0, None, None, (None, 1, 0.05)),
        ("gdl", 0.1, None, None, (None, 1, 0.05)),  # below the 0.25 px a blur window expresses
        ("mse", "max", None, None, (127 / 3, 1, 0.05)),
        ("mse", 8, 2, None, (8.0, 2, 0.05)),
        ("mse", 500.0, None, None, (127 / 3, 1, 0.05)),  # capped: the radius must fit the image
        ("mse", " MAX ", None, 1, (127 / 3, 1, 1.0)),
    ],
)
def test_resolve_schedule(spec: str, continuation: object, cycles: int | None, lr: float | None,
                          expected: tuple[float | None, int, float]) -> None:
    sigma, used, step = resolve_schedule(losslab.loss(spec), continuation, cycles, (128, 200), lr)
    assert sigma == (pytest.approx(expected[0]) if expected[0] else None)
    assert (used, step) == expected[1:]
    assert largest_sigma(128, 200) == pytest.approx(127 / 3)


def test_default_leaves_losses_that_see_edge_signs_alone(small_target: torch.Tensor) -> None:
    """``continuation="auto"`` is plain descent for every loss without an edge-sign-blind term:
    bit for bit the same images as ``continuation="off"``."""
    default = metamers("l1(luma) + ssim", small_target, starts=["noise"], steps=20)
    off = metamers("l1(luma) + ssim", small_target, starts=["noise"], steps=20,
                   continuation="off")
    assert torch.equal(default.metamers, off.metamers)
    assert (default.continuation, default.cycles, default.to_dict()["cycles"]) == (None, 1, 1)
    assert default.schedule() == "20 steps"


def test_cycles_keep_each_starts_best_end(small_target: torch.Tensor,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # the module, not the function of the same name that losslab.synthesis exports
    module = importlib.import_module("losslab.synthesis.metamers")
    step_sizes: list[float] = []
    descend = module._descend

    def recording(*args: object, **kwargs: object) -> torch.Tensor:
        step_sizes.append(kwargs["lr"])  # type: ignore[arg-type]
        return descend(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "_descend", recording)
    result = metamers("gdl", small_target, starts=["noise", "photo"], steps=60, cycles=3)
    # later cycles start from near-metamers: each at half the previous step size
    assert step_sizes == pytest.approx([0.1, 0.05, 0.025])  # halved per cycle
    assert result.lr == 0.1  # the automatic schedule's step size, recorded
    assert result.cycles == 3 and result.schedule() == "3 x 60 steps, blur 10.3->0 px"
    for k, name in enumerate(result.start_names):
        ratios = result.cycle_ratios[k]
        assert len(ratios) == 3
        assert result[name]["loss_ratio"] == pytest.approx(min(ratios), rel=1e-6)
        assert result.to_dict()["starts"][name]["cycle_loss_ratios"] == ratios
        final = float(losslab.loss("gdl")(result.metamer(name), small_target))
        assert final == pytest.approx(result[name]["loss_final"], rel=1e-4, abs=1e-8)


def test_continuation_keeps_what_a_one_channel_loss_does_not_see(
    small_target: torch.Tensor,
) -> None:
    """The blur is the same for every channel and linear, so a channel the loss ignores still
    gets an exactly zero gradient: green and blue stay the start's bit for bit under l1(red)
    with the coarsest continuation and three cycles."""
    result = metamers("l1(red)", small_target, starts=["noise", "photo"], steps=STEPS,
                      continuation="max", cycles=3)
    assert torch.equal(result.metamers[:, 1:], result.starts[:, 1:])
    assert max(n["loss_ratio"] for n in result.numbers) <= 0.02


def test_continuation_helps_gdl_from_noise_and_reports_the_plain_loss(
    small_target: torch.Tensor,
) -> None:
    """Descending gdl on blurred copies first (coarse structure, hence edge signs, settled
    before fine edges) ends far lower from noise than plain descent (docs/synthesis.md); the
    reported value is the plain loss, recomputed independently here."""
    plain = metamers("gdl", small_target, starts=["noise"], steps=STEPS, continuation="off")
    smooth = metamers("gdl", small_target, starts=["noise"], steps=STEPS, continuation=8.0)
    assert smooth["noise"]["loss_ratio"] < 0.5 * plain["noise"]["loss_ratio"]
    assert smooth["noise"]["loss_ratio"] <= 0.02  # issue 14's target (1.35 % measured; 9.6 % off)
    final = float(losslab.loss("gdl")(smooth.metamer("noise"), small_target))
    assert final == pytest.approx(smooth["noise"]["loss_final"], rel=1e-4, abs=1e-8)
    assert smooth.metamers.min() >= 0.0 and smooth.metamers.max() <= 1.0
    assert smooth.to_dict()["continuation"] == 8.0 and plain.to_dict()["continuation"] is None


def test_pixels_stay_in_range_and_starts_are_what_they_say(small_target: torch.Tensor) -> None:
    result = metamers("l1(luma)", small_target, steps=50)
    assert result.metamers.min() >= 0.0 and result.metamers.max() <= 1.0
    noise, blur, photo = result.starts
    assert noise.std() > 0.25  # uniform noise: std 0.29
    assert (blur - small_target[0]).abs().mean() < (noise - small_target[0]).abs().mean()
    assert torch.allclose(photo, load_image("chelsea", 32)[0], atol=1e-6)


def test_input_range_minus_one_to_one_gives_the_same_metamer(small_target: torch.Tensor) -> None:
    unit = metamers("l1(luma)", small_target, starts=["noise"], steps=60)
    signed = metamers("l1(luma)", small_target * 2 - 1, starts=["noise"], steps=60,
                      input_range=(-1, 1))
    assert signed.metamers.min() >= -1.0 and signed.metamers.max() <= 1.0
    # the same trajectory in [0, 1] units, up to float rounding (an L1 sign flips near zero)
    difference = ((signed.metamers + 1) / 2 - unit.metamers).abs()
    assert difference.max() <= 5e-3 and difference.mean() <= 1e-4
    assert signed["noise"]["rmse"] == pytest.approx(unit["noise"]["rmse"], abs=1e-4)  # [0,1] units


def test_tensor_and_named_starts(small_target: torch.Tensor) -> None:
    grey = torch.full_like(small_target[0], 0.5)
    result = metamers("mse", small_target, starts={"grey": grey, "cat": "photo:coffee"}, steps=80)
    assert result.start_names == ["grey", "cat"]
    assert torch.equal(result.starts[0], grey)
    assert isinstance(result, MetamerResult)
    assert set(result.to_dict()["starts"]) == {"grey", "cat"}


def test_a_built_loss_object_works(small_target: torch.Tensor) -> None:
    from losslab.losses import L1Loss, MSELoss

    criterion = L1Loss("luma") + 0.5 * MSELoss("red")
    criterion.train()
    result = metamers(criterion, small_target, starts=["noise"], steps=STEPS)
    assert result["noise"]["loss_ratio"] <= 0.02
    assert result["noise"]["err_red"] <= 0.02
    assert criterion.training and criterion.step == 0  # the caller's loss is left as it was


def test_scheduled_terms_count_at_their_final_weight(small_target: torch.Tensor) -> None:
    result = metamers("l1(red) + l1(green)@ramp(100, 200)", small_target, starts=["noise"],
                      steps=STEPS)
    assert result["noise"]["err_green"] <= 0.02  # the ramped term was optimised too
    assert result["noise"]["err_blue"] >= 0.1


def test_grey_target_with_a_channel_free_loss(small_target: torch.Tensor) -> None:
    grey = LumaView()(small_target)
    result = metamers("l1", grey, steps=STEPS)
    assert result.metamers.shape == (3, 1, 32, 32)
    assert result["photo"]["loss_ratio"] <= 0.02
    assert result["noise"]["err_luma"] is None  # colour errors need RGB


# -- bad input --------------------------------------------------------------------------------


def test_adversarial_term_is_refused(small_target: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"term 'adversarial'.*discriminator.*Remove that term"):
        metamers("mse + 0.01*adversarial", small_target)


def test_image_smaller_than_the_loss_needs(small_target: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"'ms_ssim' needs images of at least 161x161 .* 32x32"):
        metamers("ms_ssim", small_target)
    tiny = small_target[..., :8, :8]
    with pytest.raises(ValueError, match=r"term 'ssim' needs images of at least 11x11"):
        metamers("mse + ssim", tiny)


def test_grey_image_for_a_colour_view(small_target: torch.Tensor) -> None:
    grey = small_target.mean(dim=1, keepdim=True)
    with pytest.raises(ValueError, match=r"'l1\(luma\)' compares a colour view .* grey"):
        metamers("l1(luma)", grey)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"starts": ["noise", "fog"]}, "unknown start 'fog'"),
        ({"starts": "noise"}, "starts must be a non-empty list"),
        ({"starts": ["photo:kitten"]}, "unknown bundled photo 'kitten'"),
        ({"lr": 5.0}, "lr is a step"),
        ({"continuation": -1.0}, "continuation is a starting blur sigma"),
        ({"continuation": "coarse"}, r"continuation is .*'auto', 'max', 'off'.*got 'coarse'"),
        ({"continuation": True}, "continuation is a starting blur sigma"),
        ({"cycles": 0}, "cycles must be a positive integer"),
        ({"continuation_share": 0.0}, "continuation_share is a share"),
        ({"starts": [torch.rand(3, 16, 16)]}, "must match the target"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str, small_target: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=message):
        metamers("mse", small_target, **kwargs)


def test_batch_of_targets_and_wrong_range(small_target: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="one image"):
        metamers("mse", small_target.repeat(2, 1, 1, 1))
    with pytest.raises(ValueError, match="0, 255"):
        metamers("mse", small_target * 255, steps=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_the_gpu(small_target: torch.Tensor) -> None:
    result = metamers("l1(luma)", small_target, starts=["noise"], steps=STEPS, device="cuda")
    assert result.metamers.device.type == "cuda"
    assert result["noise"]["err_luma"] <= 0.02
    assert result["noise"]["loss_ratio"] <= 0.02
    # the continuation blur's window follows the images onto the device
    smooth = metamers("gdl", small_target, starts=["noise"], steps=STEPS, device="cuda",
                      continuation=8.0)
    final = float(losslab.loss("gdl")(smooth.metamer("noise").cpu(), small_target))
    assert final == pytest.approx(smooth["noise"]["loss_final"], rel=1e-3, abs=1e-7)
    assert smooth["noise"]["loss_ratio"] <= 0.05


@pytest.mark.slow
def test_swd_metamer_is_the_targets_texture_rearranged(small_target: torch.Tensor) -> None:
    """A distributional loss: the metamer has the target's colour statistics (sorted values per
    channel) but not its layout (a large pixel RMSE)."""
    pytest.importorskip("losslab.losses.swd")
    result = metamers("swd", small_target, starts=["noise"], steps=200)
    numbers = result["noise"]
    assert numbers["loss_ratio"] <= 0.02
    assert numbers["rmse"] > 0.2  # not the target: its patches, elsewhere

    def sorted_values(images: torch.Tensor) -> torch.Tensor:
        return images.flatten(2).sort(dim=2).values

    histogram_metamer = (sorted_values(result.metamers) - sorted_values(small_target)).abs().mean()
    histogram_start = (sorted_values(result.starts) - sorted_values(small_target)).abs().mean()
    assert histogram_metamer < 0.05 < histogram_start


def test_the_coarsest_blur_of_a_large_image(small_target: torch.Tensor) -> None:
    """At 256 px the coarsest continuation blur (sigma 85) needs a 511-tap window, twice the
    cap on a local filter window; the blur matrix has no such cap."""
    target = load_image("astronaut", 256)
    result = metamers("gdl", target, starts=["noise"], steps=4, cycles=1)
    assert result.continuation == pytest.approx(85.0)
    assert result["noise"]["loss_ratio"] < 1.0
