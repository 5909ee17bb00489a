"""core.color: luma and YCbCr of BT.601 / BT.709 against the standards' published values and
scikit-image, round trips, and the one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr

from losslab.core.color import luma_weights, rgb_to_ycbcr, to_luma, ycbcr_matrix, ycbcr_to_rgb


def test_luma_weights_are_the_standards() -> None:
    assert luma_weights() == pytest.approx((0.299, 0.587, 0.114))
    assert luma_weights("bt709") == pytest.approx((0.2126, 0.7152, 0.0722))
    assert sum(luma_weights("bt709")) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"standard must be one of"):
        luma_weights("bt2020")  # type: ignore[arg-type]


def test_ycbcr_matches_scikit_image_without_its_offsets() -> None:
    # skimage: Y in [16, 235], Cb/Cr in [16, 240] around 128 (BT.601 studio range); ours is the
    # full-range form: Y in [0, 1], Cb/Cr in [-0.5, 0.5].
    rgb = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = rgb_to_ycbcr(rgb)[0].permute(1, 2, 0).numpy()
    reference = rgb2ycbcr(rgb[0].permute(1, 2, 0).numpy())
    np.testing.assert_allclose((reference[..., 0] - 16) / 219, ours[..., 0], atol=1e-6)
    np.testing.assert_allclose((reference[..., 1:] - 128) / 224, ours[..., 1:], atol=1e-6)


@pytest.mark.parametrize("standard", ["bt601", "bt709"])
def test_ycbcr_round_trips_and_primaries_land_where_the_standard_says(standard: str) -> None:
    rgb = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(rgb, standard), standard), rgb)  # type: ignore[arg-type]
    white, blue, red = (torch.tensor(c, dtype=torch.float64).view(1, 3, 1, 1)
                        for c in ((1.0, 1.0, 1.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)))
    assert rgb_to_ycbcr(white, standard).flatten().tolist() == pytest.approx([1.0, 0.0, 0.0])  # type: ignore[arg-type]
    assert float(rgb_to_ycbcr(blue, standard)[0, 1]) == pytest.approx(0.5)  # Cb peaks at blue
    assert float(rgb_to_ycbcr(red, standard)[0, 2]) == pytest.approx(0.5)  # Cr peaks at red
    assert ycbcr_matrix(standard).dtype == torch.float64  # type: ignore[arg-type]


def test_to_luma_is_the_first_ycbcr_channel_and_checks_its_input() -> None:
    rgb = torch.rand(2, 3, 4, 4)
    luma = to_luma(rgb, "bt709")
    assert luma.shape == (2, 1, 4, 4)
    torch.testing.assert_close(luma, rgb_to_ycbcr(rgb, "bt709")[:, :1])
    with pytest.raises(ValueError, match=r"images must have 3 channels"):
        to_luma(torch.rand(2, 1, 4, 4))
