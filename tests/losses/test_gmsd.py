"""GMSD and MS-GMSD against piq (independent implementation) on photos, odd sizes, greyscale
and colour; deviations that are 0 for identical images with finite gradients there."""

from __future__ import annotations

import piq
import pytest
import torch

import losslab
from losslab.core.filters import gaussian_blur
from losslab.losses import GMSDLoss, MSGMSDLoss


def _distortions(images: torch.Tensor) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    return {
        "noise": (images + 0.05 * noise).clamp(0, 1),
        "blur": gaussian_blur(images, 1.5),
        "darker": 0.8 * images,
    }


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """(4, 3, 97, 95) float64 crops: odd height, odd width."""
    from skimage import data

    crops = [im[:97, :95] for im in (data.astronaut(), data.chelsea(), data.coffee(), data.rocket())]
    return torch.stack([torch.from_numpy(c.copy()).permute(2, 0, 1) for c in crops]).double() / 255


@pytest.mark.parametrize("channels", [3, 1])
def test_gmsd_matches_piq(photos: torch.Tensor, channels: int) -> None:
    target = photos[:, :channels]
    loss = GMSDLoss(reduction="none")
    for name, prediction in _distortions(target).items():
        expected = piq.gmsd(prediction, target, reduction="none")
        torch.testing.assert_close(loss(prediction, target), expected, atol=1e-4, rtol=0,
                                   msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("chromatic", [False, True])
def test_ms_gmsd_matches_piq(photos: torch.Tensor, chromatic: bool) -> None:
    loss = MSGMSDLoss(chromatic=chromatic, reduction="none")
    for prediction in _distortions(photos).values():
        expected = piq.multi_scale_gmsd(prediction, photos, reduction="none", chromatic=chromatic)
        torch.testing.assert_close(loss(prediction, photos), expected, atol=1e-4, rtol=0)


def test_float32_values_agree_with_piq_too(photos: torch.Tensor) -> None:
    target = photos.float()
    prediction = _distortions(target)["noise"]
    assert abs(float(GMSDLoss()(prediction, target)) - float(piq.gmsd(prediction, target))) < 1e-4
    assert abs(float(MSGMSDLoss()(prediction, target))
               - float(piq.multi_scale_gmsd(prediction, target))) < 1e-4


def test_luma_view_equals_the_default_y_of_yiq(photos: torch.Tensor) -> None:
    prediction = _distortions(photos)["blur"]
    torch.testing.assert_close(losslab.loss("gmsd(luma)")(prediction, photos),
                               losslab.loss("gmsd")(prediction, photos))


@pytest.mark.parametrize("spec", ["gmsd", "ms_gmsd", "ms_gmsd(chromatic=true)"])
def test_zero_for_identical_images_with_a_finite_gradient(photos: torch.Tensor, spec: str) -> None:
    prediction = photos.clone().requires_grad_(True)
    value = losslab.loss(spec)(prediction, photos)
    assert float(value.detach()) == 0.0
    value.backward()
    assert torch.isfinite(prediction.grad).all()


def test_a_blur_costs_more_than_a_uniform_darkening(photos: torch.Tensor) -> None:
    distorted = _distortions(photos)
    loss = GMSDLoss()
    assert float(loss(distorted["blur"], photos)) > 2 * float(loss(distorted["darker"], photos))


def test_bad_views_and_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="gives 2 channels"):
        losslab.loss("gmsd(chroma)")
    with pytest.raises(ValueError, match="scale_weights must be 1 to 8"):
        losslab.loss("ms_gmsd(scale_weights=[0, 0])")
    with pytest.raises(ValueError, match="needs the rgb view"):
        losslab.loss("ms_gmsd(luma, chromatic=true)")
    with pytest.raises(ValueError, match="RGB \\(3 channels\\) or greyscale"):
        GMSDLoss()(torch.rand(1, 2, 32, 32), torch.rand(1, 2, 32, 32))
    with pytest.raises(ValueError, match="at least 17x17"):
        MSGMSDLoss()(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
