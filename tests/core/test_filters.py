"""The shared filters: normalised windows, same-size blur, pyramid steps that keep constants."""

from __future__ import annotations

import math

import pytest
import torch

from losslab.core.filters import (
    gaussian_blur,
    gaussian_blur_matrix,
    gaussian_window,
    pyramid_down,
    pyramid_min_size,
    pyramid_up,
    separable_filter,
)


def test_gaussian_window_follows_the_formula_and_sums_to_one() -> None:
    window = gaussian_window(11, 1.5, dtype=torch.float64)
    expected = torch.tensor([math.exp(-(i - 5) ** 2 / (2 * 1.5**2)) for i in range(11)],
                            dtype=torch.float64)
    torch.testing.assert_close(window, expected / expected.sum())
    with pytest.raises(ValueError, match="must be odd"):
        gaussian_window(10)


def test_blur_keeps_size_and_constants_and_lowers_contrast() -> None:
    images = torch.rand(2, 3, 20, 24)
    blurred = gaussian_blur(images, 1.5)
    assert blurred.shape == images.shape
    torch.testing.assert_close(gaussian_blur(torch.full((1, 1, 9, 9), 0.3), 1.0),
                               torch.full((1, 1, 9, 9), 0.3))
    assert blurred.std() < images.std()


def test_valid_filtering_shrinks_by_the_window() -> None:
    out = separable_filter(torch.rand(1, 2, 20, 30), gaussian_window(5, 1.0))
    assert out.shape == (1, 2, 16, 26)


def test_pyramid_steps_keep_constant_images_constant() -> None:
    constant = torch.full((1, 1, 15, 16), 0.7, dtype=torch.float64)
    down = pyramid_down(constant)
    assert down.shape == (1, 1, 8, 8)
    torch.testing.assert_close(down, torch.full_like(down, 0.7))
    torch.testing.assert_close(pyramid_up(down, (15, 16)), constant)


def test_min_size_keeps_three_pixels_at_the_deepest_level() -> None:
    size = pyramid_min_size(4)
    image = torch.rand(1, 1, size, size)
    for _ in range(4):
        image = pyramid_down(image)
    assert image.shape[-1] == 3


@pytest.mark.parametrize(("height", "width", "sigma"),
                         [(32, 32, 0.3), (40, 25, 2.5), (128, 97, 32.0), (256, 256, 85.0)])
def test_blur_matrix_is_the_separable_blur(height: int, width: int, sigma: float) -> None:
    """B_h @ x @ B_w.T equals the reflect-padded convolution, including where the window is
    wider than half the image (taps folded back onto the same pixel add up)."""
    images = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    rows = gaussian_blur_matrix(height, sigma)
    columns = gaussian_blur_matrix(width, sigma)
    if 2 * math.ceil(3 * sigma) + 1 <= 255:  # the convolution's local-window cap
        assert torch.allclose(rows @ images @ columns.T, gaussian_blur(images, sigma), atol=1e-6)
    else:  # beyond it: against the blur written out per pixel, on one row
        row = images[0, 0, 7].double()
        taps = torch.arange(-255, 256, dtype=torch.float64)
        weights = torch.exp(-(taps**2) / (2 * sigma**2))
        weights = weights / weights.sum()
        sources = (torch.arange(width)[:, None] + taps[None, :].long()).abs()
        sources = torch.where(sources > width - 1, 2 * (width - 1) - sources, sources)
        expected = (row[sources] * weights).sum(dim=1)
        assert torch.allclose(columns.double() @ row, expected, atol=1e-6)
    # a blur keeps constants: every row sums to one
    assert torch.allclose(rows.sum(dim=1), torch.ones(height), atol=1e-6)


def test_blur_matrix_needs_the_radius_to_fit() -> None:
    with pytest.raises(ValueError, match=r"sigma 11.0 px needs more than 33 pixels .* got 33"):
        gaussian_blur_matrix(33, 11.0)
