"""Sharpness: radial spectrum, high-frequency ratio and gradient ratio."""

from __future__ import annotations

import pytest
import torch

from losslab.metrics import (
    gradient_magnitude_ratio,
    high_frequency_ratio,
    radial_bin_centres,
    radial_power_spectrum,
)
from losslab.probe import gaussian_blur


def test_hf_ratio_is_one_for_identical_and_below_one_for_blur(photo_batch: torch.Tensor) -> None:
    assert high_frequency_ratio(photo_batch, photo_batch) == pytest.approx(1.0)
    blurred = gaussian_blur(photo_batch, 1.5)
    assert high_frequency_ratio(blurred, photo_batch) < 0.3
    noisy = (photo_batch + 0.05 * torch.randn_like(photo_batch)).clamp(0, 1)
    assert high_frequency_ratio(noisy, photo_batch) > 1.0


def test_gradient_ratio(photo_batch: torch.Tensor) -> None:
    assert gradient_magnitude_ratio(photo_batch, photo_batch) == pytest.approx(1.0)
    assert gradient_magnitude_ratio(gaussian_blur(photo_batch, 1.5), photo_batch) < 0.8
    # Doubling the contrast of a grey image doubles every gradient.
    grey = photo_batch.mean(dim=1, keepdim=True).expand_as(photo_batch)
    assert gradient_magnitude_ratio(0.25 + 0.5 * grey, 0.25 + 0.25 * grey) == pytest.approx(2.0, rel=1e-4)


def test_radial_spectrum_of_a_sinusoid_peaks_at_its_frequency() -> None:
    size = 64
    cycles = 8  # 8 cycles over 64 px: 0.125 cycles/px = 0.25 of Nyquist
    x = torch.arange(size).float()
    wave = 0.5 + 0.4 * torch.sin(2 * torch.pi * cycles * x / size)
    images = wave.expand(1, 3, size, size).contiguous()
    spectrum = radial_power_spectrum(images)
    assert spectrum.shape == (1, size // 2)
    peak = int(spectrum[0].argmax())
    assert radial_bin_centres(size // 2)[peak] == pytest.approx(0.25, abs=1.0 / (size // 2))


def test_blur_removes_power_at_high_frequencies_only(photo_batch: torch.Tensor) -> None:
    original = radial_power_spectrum(photo_batch)
    blurred = radial_power_spectrum(gaussian_blur(photo_batch, 1.5))
    ratio = (blurred / original).mean(dim=0)
    assert ratio[1] > 0.8 and ratio[-1] < 0.01


def test_ratios_are_pooled_so_a_flat_crop_cannot_dominate() -> None:
    import torch

    from losslab.metrics import gradient_magnitude_ratio, high_frequency_ratio

    textured = torch.rand(1, 3, 32, 32)
    flat = torch.full((1, 3, 32, 32), 0.5)
    targets = torch.cat([textured, flat])
    outputs = targets.clone()
    outputs[1] += 0.01 * torch.randn(3, 32, 32)  # tiny noise on the flat crop only
    assert high_frequency_ratio(outputs, targets) < 1.05
    assert gradient_magnitude_ratio(outputs, targets) < 1.05
