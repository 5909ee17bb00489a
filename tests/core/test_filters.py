"""The shared filters: normalised windows, same-size blur, pyramid steps that keep constants."""

from __future__ import annotations

import math

import pytest
import torch

from losslab.core.filters import (
    gaussian_blur,
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
