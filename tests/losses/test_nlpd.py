"""NLPD against plenoptic's nlpd on luma / greyscale (documented offset: minus sqrt(eps));
per-channel for other views; 0 for identical images, finite gradients there."""

from __future__ import annotations

import math
import warnings

import plenoptic
import pytest
import torch

import losslab
from losslab.core.filters import gaussian_blur, laplacian_pyramid
from losslab.losses import NLPDLoss
from losslab.losses.views import LumaView

OFFSET = math.sqrt(1e-10)  # plenoptic's value for identical images; ours is 0


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    from skimage import data

    crops = [im[:97, :95] for im in (data.astronaut(), data.chelsea(), data.coffee(), data.rocket())]
    return torch.stack([torch.from_numpy(c.copy()).permute(2, 0, 1) for c in crops]).double() / 255


def _plenoptic(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():  # plenoptic warns for more than one channel
        warnings.simplefilter("ignore")
        return plenoptic.metric.nlpd(prediction, target).mean(dim=1)


def _distortions(images: torch.Tensor) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(4)
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    return [(images + 0.05 * noise).clamp(0, 1), gaussian_blur(images, 1.5), 0.6 * images + 0.2]


def test_our_laplacian_pyramid_is_plenoptics(photos: torch.Tensor) -> None:
    grey = photos[:, :1]
    ours = laplacian_pyramid(grey, 6)
    reference = plenoptic.process.LaplacianPyramid(n_scales=6, scale_filter=True)(grey)
    for level, (a, b) in enumerate(zip(ours, reference, strict=True)):
        torch.testing.assert_close(a, b, msg=lambda m, level=level: f"level {level}: {m}")


def test_luma_nlpd_matches_plenoptic_on_luma(photos: torch.Tensor) -> None:
    loss = NLPDLoss(reduction="none")  # default view: luma
    luma = LumaView()
    for prediction in _distortions(photos):
        expected = _plenoptic(luma(prediction), luma(photos)) - OFFSET
        torch.testing.assert_close(loss(prediction, photos), expected, atol=1e-6, rtol=0)


def test_rgb_view_is_the_mean_of_plenoptics_per_channel_distances(photos: torch.Tensor) -> None:
    loss = losslab.loss("nlpd(rgb)")
    prediction = _distortions(photos)[0]
    expected = _plenoptic(prediction, photos).mean() - OFFSET
    assert abs(float(loss(prediction, photos)) - float(expected)) < 1e-6


def test_smallest_size_and_float32_agree_with_plenoptic() -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 33, 34, generator=generator)
    prediction = (target + 0.1 * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    expected = _plenoptic(prediction, target).mean() - OFFSET
    assert abs(float(losslab.loss("nlpd(rgb)")(prediction, target)) - float(expected)) < 1e-5
    with pytest.raises(ValueError, match="at least 33x33"):
        NLPDLoss()(torch.rand(1, 3, 32, 40), torch.rand(1, 3, 32, 40))


def test_zero_for_identical_images_with_a_finite_gradient(photos: torch.Tensor) -> None:
    prediction = photos.clone().requires_grad_(True)
    value = NLPDLoss()(prediction, photos)
    assert abs(float(value.detach())) < 1e-15
    value.backward()
    assert torch.isfinite(prediction.grad).all()


def test_term_name_leaves_out_the_default_luma() -> None:
    assert NLPDLoss().term_name == "nlpd"
    assert NLPDLoss("rgb", lowpass=1).term_name == "nlpd(rgb, lowpass=1)"
