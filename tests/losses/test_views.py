"""Colour views: the luma weights follow BT.601/BT.709, and each view is blind to what it drops."""

from __future__ import annotations

import pytest
import torch

from losslab.losses.views import (
    ChannelView,
    ChromaView,
    ColorView,
    LumaView,
    available_views,
    luma_weights,
    resolve_view,
    ycbcr_matrix,
)


def test_bt601_luma_matches_the_formula(photo_batch: torch.Tensor) -> None:
    r, g, b = photo_batch[:, 0:1], photo_batch[:, 1:2], photo_batch[:, 2:3]
    expected = 0.299 * r + 0.587 * g + 0.114 * b
    torch.testing.assert_close(LumaView()(photo_batch), expected)


def test_bt709_luma_matches_the_formula(photo_batch: torch.Tensor) -> None:
    r, g, b = photo_batch[:, 0:1], photo_batch[:, 1:2], photo_batch[:, 2:3]
    expected = 0.2126 * r + 0.7152 * g + 0.0722 * b
    torch.testing.assert_close(LumaView("bt709")(photo_batch), expected)


@pytest.mark.parametrize("standard", ["bt601", "bt709"])
def test_luma_weights_sum_to_one(standard: str) -> None:
    assert sum(luma_weights(standard)) == pytest.approx(1.0)


def test_ycbcr_matches_jpeg_definition() -> None:
    # JFIF (BT.601) chroma: Cb = -0.168736 R - 0.331264 G + 0.5 B, Cr = 0.5 R - 0.418688 G - 0.081312 B
    expected = torch.tensor(
        [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(ycbcr_matrix("bt601"), expected, atol=1e-6, rtol=0)


def test_chroma_is_blind_to_gray_offsets(photo_batch: torch.Tensor) -> None:
    view = ChromaView()
    torch.testing.assert_close(view(photo_batch + 0.1), view(photo_batch), atol=1e-6, rtol=0)


def test_channel_view_selects_one_channel(photo_batch: torch.Tensor) -> None:
    assert torch.equal(ChannelView("green")(photo_batch), photo_batch[:, 1:2])


def test_user_matrix_view_and_buffer_follow_the_module() -> None:
    view = ColorView([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0]], name="opponent")
    x = torch.rand(2, 3, 4, 4)
    torch.testing.assert_close(view(x)[:, 0], x[:, 0] - x[:, 1])
    assert "matrix" in view.state_dict()
    assert view.double().matrix.dtype == torch.float64


def test_bad_matrix_and_unknown_view_are_explained() -> None:
    with pytest.raises(ValueError, match=r"\(K, 3\) matrix"):
        ColorView([[1.0, 2.0]])
    with pytest.raises(ValueError, match="Did you mean 'luma'"):
        resolve_view("lumma")
    with pytest.raises(ValueError, match="must have 3 channels"):
        LumaView()(torch.rand(1, 1, 4, 4))


def test_every_view_name_resolves() -> None:
    x = torch.rand(1, 3, 4, 4)
    for name in available_views():
        assert resolve_view(name)(x).shape[0] == 1
