"""MDSI against piq on photos (both combinations, greyscale repeated to RGB, the block-mean
downsampling of large images); a deviation: 0 for identical images, finite gradients there."""

from __future__ import annotations

import warnings

import piq
import pytest
import torch

import losslab
from losslab.core.filters import gaussian_blur
from losslab.losses import MDSILoss


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    from skimage import data

    crops = [im[:97, :95] for im in (data.astronaut(), data.chelsea(), data.coffee(), data.rocket())]
    return torch.stack([torch.from_numpy(c.copy()).permute(2, 0, 1) for c in crops]).double() / 255


def _piq_mdsi(prediction: torch.Tensor, target: torch.Tensor, **options: str) -> torch.Tensor:
    with warnings.catch_warnings():  # piq warns when it repeats a grey channel
        warnings.simplefilter("ignore")
        return piq.mdsi(prediction, target, reduction="none", **options)


def _distortions(images: torch.Tensor) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    return [(images + 0.05 * noise).clamp(0, 1), gaussian_blur(images, 1.5), images.flip(-1)]


@pytest.mark.parametrize("channels", [3, 1])
def test_sum_combination_matches_piq(photos: torch.Tensor, channels: int) -> None:
    target = photos[:, :channels]
    loss = MDSILoss(reduction="none")
    for prediction in _distortions(target):
        torch.testing.assert_close(loss(prediction, target), _piq_mdsi(prediction, target),
                                   atol=1e-4, rtol=0)


def test_mult_combination_agrees_with_piq_within_1e_4(photos: torch.Tensor) -> None:
    # piq multiplies the real parts and adds the imaginary parts of GS^gamma and CS^beta; we
    # multiply the complex numbers (the paper's product). They differ only where GS < 0: by
    # <= 7e-6 for noise and blur here, by 2.5e-3 for a mirrored image (many negative GS), which
    # is therefore left out of this comparison.
    loss = MDSILoss(combination="mult", reduction="none")
    for prediction in _distortions(photos)[:2]:
        expected = _piq_mdsi(prediction, photos, combination="mult")
        torch.testing.assert_close(loss(prediction, photos), expected, atol=1e-4, rtol=0)


def test_large_images_are_block_averaged_as_in_piq() -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 700, 520, generator=generator, dtype=torch.float64)
    prediction = (target + 0.1 * torch.randn(target.shape, generator=generator,
                                             dtype=torch.float64)).clamp(0, 1)
    torch.testing.assert_close(MDSILoss(reduction="none")(prediction, target),
                               _piq_mdsi(prediction, target), atol=1e-4, rtol=0)


def test_zero_for_identical_images_with_a_finite_gradient(photos: torch.Tensor) -> None:
    for spec in ("mdsi", "mdsi(combination=mult)"):
        prediction = photos.clone().requires_grad_(True)
        value = losslab.loss(spec)(prediction, photos)
        assert float(value.detach()) == 0.0
        value.backward()
        assert torch.isfinite(prediction.grad).all()


def test_bad_combination_is_rejected() -> None:
    with pytest.raises(ValueError, match="combination must be one of 'sum', 'mult'"):
        losslab.loss("mdsi(combination=product)")
