"""Tests of losslab.data.degradations: downscale (bicubic, area), to_luma, add_noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from losslab.data.degradations import add_noise, downscale, to_luma


@pytest.mark.parametrize("method", ["bicubic", "area"])
@pytest.mark.parametrize("factor", [1, 2, 4])
def test_downscale_shape_and_range(method: str, factor: int) -> None:
    images = torch.rand(2, 3, 16, 24)
    small = downscale(images, factor, method)
    assert small.shape == (2, 3, 16 // factor, 24 // factor)
    assert small.dtype == images.dtype
    assert float(small.min()) >= 0.0 and float(small.max()) <= 1.0


def test_area_is_the_block_mean() -> None:
    images = torch.rand(1, 3, 8, 12)
    reference = images.reshape(1, 3, 4, 2, 6, 2).mean(dim=(3, 5))
    torch.testing.assert_close(downscale(images, 2, "area"), reference)


def test_bicubic_keeps_constants_and_is_clamped() -> None:
    constant = torch.full((1, 3, 16, 16), 0.37)
    torch.testing.assert_close(downscale(constant, 4), constant[..., :4, :4])
    # A hard edge makes the unclamped cubic kernel overshoot; the result must stay in [0, 1].
    edge = torch.zeros(1, 1, 32, 32)
    edge[..., 15:] = 1.0
    raw = F.interpolate(edge, size=(8, 8), mode="bicubic", antialias=True, align_corners=False)
    assert float(raw.max()) > 1.0 or float(raw.min()) < 0.0
    small = downscale(edge, 4)
    assert float(small.min()) >= 0.0 and float(small.max()) <= 1.0


def test_bicubic_matches_pillow_antialiased_resize() -> None:
    generator = torch.Generator().manual_seed(1)
    smooth = F.interpolate(torch.rand(1, 3, 8, 8, generator=generator), size=(64, 64),
                           mode="bilinear", align_corners=False)
    array = (smooth[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    reference = np.asarray(Image.fromarray(array).resize((16, 16), Image.Resampling.BICUBIC))
    ours = downscale(torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255, 4)
    ours = ours[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(ours - reference).max() < 2.0  # uint8 levels


def test_downscale_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match=r"15x16 is not divisible by factor=2.*14x16"):
        downscale(torch.rand(1, 3, 15, 16), 2)
    with pytest.raises(ValueError, match="factor must be an int"):
        downscale(torch.rand(1, 3, 16, 16), 0)
    with pytest.raises(ValueError, match="factor must be an int"):
        downscale(torch.rand(1, 3, 16, 16), 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method must be one of"):
        downscale(torch.rand(1, 3, 16, 16), 2, "nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4-D"):
        downscale(torch.rand(3, 16, 16), 2)


def test_to_luma_uses_bt601_weights() -> None:
    primaries = torch.eye(3).view(3, 3, 1, 1).expand(3, 3, 2, 2)  # pure R, G, B images
    luma = to_luma(primaries)
    assert luma.shape == (3, 1, 2, 2)
    torch.testing.assert_close(luma[:, 0, 0, 0], torch.tensor([0.299, 0.587, 0.114]))
    grey = torch.full((1, 3, 4, 4), 0.6)
    torch.testing.assert_close(to_luma(grey), grey[:, :1])
    with pytest.raises(ValueError, match="3 channels"):
        to_luma(torch.rand(1, 1, 4, 4))


def test_add_noise_statistics_and_reproducibility() -> None:
    images = torch.full((4, 3, 64, 64), 0.5)
    noisy = add_noise(images, 0.05, generator=torch.Generator().manual_seed(3))
    assert abs(float((noisy - images).std()) - 0.05) < 0.002
    assert abs(float((noisy - images).mean())) < 0.002
    again = add_noise(images, 0.05, generator=torch.Generator().manual_seed(3))
    assert torch.equal(noisy, again)
    clamped = add_noise(torch.ones(1, 3, 8, 8), 0.5)
    assert float(clamped.max()) <= 1.0 and float(clamped.min()) >= 0.0
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        add_noise(images, -0.1)
