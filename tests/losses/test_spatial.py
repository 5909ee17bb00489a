"""Spatial views: pyramid levels with the right sizes, an exact split of the image into bands,
blind to what they remove, composable with colour views, with clear errors."""

from __future__ import annotations

import pytest
import torch

import losslab
from losslab.core.filters import pyramid_up
from losslab.losses import L1Loss, SpatialView
from losslab.losses.views import ChromaView


def test_lowpass_halves_the_size_per_level() -> None:
    images = torch.rand(2, 3, 37, 64)
    assert SpatialView(lowpass=1)(images).shape == (2, 3, 19, 32)
    assert SpatialView(lowpass=3)(images).shape == (2, 3, 5, 8)
    assert SpatialView(highpass=1)(images).shape == (2, 3, 37, 64)
    assert SpatialView(highpass=2)(images).shape == (2, 3, 19, 32)


def test_the_bands_and_the_lowpass_add_up_to_the_image() -> None:
    images = torch.rand(2, 3, 37, 40, dtype=torch.float64)
    low = SpatialView(lowpass=2)(images)
    mid = SpatialView(highpass=2)(images)
    fine = SpatialView(highpass=1)(images)
    rebuilt = fine + pyramid_up(mid + pyramid_up(low, tuple(mid.shape[-2:])), (37, 40))
    torch.testing.assert_close(rebuilt, images)


def test_lowpass_is_blind_to_the_finest_checkerboard_and_highpass_to_an_offset() -> None:
    images = torch.rand(1, 3, 32, 32)
    rows, cols = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checkerboard = 0.1 * (-1.0) ** (rows + cols).float()
    assert float(losslab.loss("l1(lowpass=1)")(images + checkerboard, images)) < 1e-7
    assert float(losslab.loss("l1(highpass=1)")(images + checkerboard, images)) > 0.01
    assert float(losslab.loss("mse(highpass=1)")(images + 0.1, images)) < 1e-12
    assert float(losslab.loss("mse(lowpass=2)")(images + 0.1, images)) == pytest.approx(0.01)


def test_the_spatial_view_comes_after_the_colour_view() -> None:
    prediction, target = torch.rand(2, 3, 40, 40), torch.rand(2, 3, 40, 40)
    loss = losslab.loss("l1(chroma, lowpass=2)")
    chroma, lowpass = ChromaView(), SpatialView(lowpass=2)
    expected = (lowpass(chroma(prediction)) - lowpass(chroma(target))).abs().mean()
    torch.testing.assert_close(loss(prediction, target), expected)
    assert L1Loss("chroma", lowpass=2).term_name == "l1(chroma, lowpass=2)"


@pytest.mark.parametrize(
    "spec",
    ["mse(lowpass=1)", "l1(luma, highpass=2)", "charbonnier(lowpass=1)", "huber(highpass=1)",
     "ssim(lowpass=1)", "gdl(highpass=1)", "frequency(lowpass=1)", "swd(highpass=1)",
     "gmsd(lowpass=1)", "nlpd(highpass=1)"],
)
def test_every_viewed_loss_takes_a_spatial_view_and_passes_gradients(spec: str) -> None:
    target = torch.rand(2, 3, 80, 80)
    prediction = (target + 0.1 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)
    value = losslab.loss(spec)(prediction, target)
    value.backward()
    assert torch.isfinite(value) and prediction.grad.abs().sum() > 0


def test_pixel_losses_with_a_view_equal_the_distance_of_the_viewed_images() -> None:
    # The pixel losses view the difference once; the result must equal viewing both images.
    prediction, target = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    view = SpatialView(highpass=1)
    for spec, distance in [
        ("huber(chroma, highpass=1)", lambda d: torch.nn.functional.huber_loss(d, 0 * d, delta=0.1)),
        ("charbonnier(chroma, highpass=1)", lambda d: torch.sqrt(d * d + 1e-6).mean()),
        ("mse(chroma, highpass=1)", lambda d: (d * d).mean()),
    ]:
        difference = view(ChromaView()(prediction)) - view(ChromaView()(target))
        torch.testing.assert_close(losslab.loss(spec)(prediction, target), distance(difference))


def test_size_limits_include_the_pyramid_steps() -> None:
    loss = losslab.loss("ssim(lowpass=1)")  # an 11-px window at half resolution: 21 px
    loss(torch.rand(1, 3, 21, 21), torch.rand(1, 3, 21, 21))
    with pytest.raises(ValueError, match="at least 21x21"):
        loss(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 20))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("l1(lowpass=1, highpass=1)", "exactly one of lowpass=K or highpass=K"),
        ("l1(lowpass=0)", "lowpass must be a pyramid level from 1 to 12"),
        ("mse(highpass=1.5)", "highpass must be a pyramid level"),
    ],
)
def test_bad_levels_are_rejected(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        losslab.loss(spec)
