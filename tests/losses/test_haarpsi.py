"""HaarPSI against piq on photos (colour and greyscale, odd sizes); the loss is 1 - index."""

from __future__ import annotations

import piq
import pytest
import torch

import losslab
from losslab.core.filters import gaussian_blur
from losslab.losses import HaarPSILoss
from losslab.losses.haarpsi import haarpsi


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    from skimage import data

    crops = [im[:97, :95] for im in (data.astronaut(), data.chelsea(), data.coffee(), data.rocket())]
    return torch.stack([torch.from_numpy(c.copy()).permute(2, 0, 1) for c in crops]).double() / 255


def _distortions(images: torch.Tensor) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(2)
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    return [(images + 0.05 * noise).clamp(0, 1), gaussian_blur(images, 1.5), 0.7 * images + 0.1]


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("subsample", [True, False])
def test_the_index_matches_piq(photos: torch.Tensor, channels: int, subsample: bool) -> None:
    target = photos[:, :channels]
    for prediction in _distortions(target):
        expected = piq.haarpsi(prediction, target, reduction="none", subsample=subsample)
        ours = haarpsi(prediction, target, subsample=subsample)
        torch.testing.assert_close(ours, expected, atol=1e-4, rtol=0)


def test_the_loss_is_one_minus_the_index_also_in_float32(photos: torch.Tensor) -> None:
    target = photos.float()
    prediction = _distortions(target)[0]
    expected = 1 - piq.haarpsi(prediction, target, reduction="none")
    torch.testing.assert_close(HaarPSILoss(reduction="none")(prediction, target), expected,
                               atol=1e-4, rtol=0)


def test_zero_for_identical_images_with_a_finite_gradient(photos: torch.Tensor) -> None:
    prediction = photos.clone().requires_grad_(True)
    value = HaarPSILoss()(prediction, photos)
    assert abs(float(value.detach())) < 1e-12
    value.backward()
    assert torch.isfinite(prediction.grad).all()


def test_greyscale_view_drops_the_chroma_term(photos: torch.Tensor) -> None:
    # A change of chroma at equal luma: the luma form is blind to it, the RGB form is not.
    target = photos.clamp(0.2, 0.8)
    offset = torch.tensor([0.05, -0.0255, 0.0], dtype=target.dtype).view(1, 3, 1, 1)
    offset[0, 2] = -(0.299 * offset[0, 0] + 0.587 * offset[0, 1]) / 0.114
    changed = target + offset
    assert float(losslab.loss("haarpsi(luma)")(changed, target)) < 1e-9
    assert float(losslab.loss("haarpsi")(changed, target)) > 1e-3


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="scales must be an integer from 2 to 6"):
        losslab.loss("haarpsi(scales=1)")
    with pytest.raises(ValueError, match="at least 16x16"):
        HaarPSILoss()(torch.rand(1, 3, 15, 15), torch.rand(1, 3, 15, 15))
