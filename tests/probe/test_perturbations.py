"""The probe's ``mean_of_two_noise`` change (probe/perturbations.py): the two answers' per-pixel
mean and variance, reproducible, with independent draws."""

from __future__ import annotations

import pytest
import torch

from losslab.probe.perturbations import mean_of_two_noise, shifted_pair


def test_mean_of_two_noise_has_the_two_answers_mean_and_variance() -> None:
    images = torch.rand(2, 3, 6, 9, dtype=torch.float64)
    draws = mean_of_two_noise(images, torch.Generator().manual_seed(0), draws=20000)
    assert draws.shape == (2, 20000, 3, 6, 7)
    right, left = images[..., 2:], images[..., :-2]
    _, _, mean_of_two = shifted_pair(images)
    spread = ((right - left) / 2).abs()
    # Standard errors: sd / sqrt(20000) for the mean, ~ var * sqrt(2 / 20000) for the variance.
    assert (draws.mean(dim=1) - mean_of_two).abs().max() < 5 * spread.max() / 20000**0.5
    assert (draws.var(dim=1) - spread**2).abs().max() < 5 * (spread**2).max() * (2 / 20000) ** 0.5
    # Each draw's mean squared distance to the two answers is, in expectation, the same:
    # the noise has the two-answer distribution's variance, not the variance of one of them.
    variance = ((draws - mean_of_two.unsqueeze(1)) ** 2).mean()
    assert float(variance) == pytest.approx(float((spread**2).mean()), rel=0.01)


def test_mean_of_two_noise_is_seeded_and_draws_differ() -> None:
    images = torch.rand(1, 3, 8, 8)
    first = mean_of_two_noise(images, torch.Generator().manual_seed(4))
    assert first.shape == (1, 3, 8, 6) and first.dtype == images.dtype
    assert torch.equal(first, mean_of_two_noise(images, torch.Generator().manual_seed(4)))
    draws = mean_of_two_noise(images, torch.Generator().manual_seed(4), draws=2)
    assert not torch.equal(draws[:, 0], draws[:, 1])


def test_flat_images_get_no_noise_and_narrow_ones_are_refused() -> None:
    flat = torch.full((1, 3, 5, 5), 0.3)
    assert torch.equal(mean_of_two_noise(flat, torch.Generator().manual_seed(0)), flat[..., 1:-1])
    with pytest.raises(ValueError, match="at least 3 px wide"):
        mean_of_two_noise(torch.rand(1, 3, 5, 2), torch.Generator())
