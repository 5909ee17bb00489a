"""Sharpness metrics without a pretrained network: power spectrum and gradient energy of luma.

Both compare an output with its target, so 1 means "as sharp as the target", below 1 means
blurred (energy lost at fine scales) and above 1 means extra high-frequency content (noise,
ringing, checkerboard artefacts).

Frequencies are in cycles per pixel; the Nyquist frequency is 0.5. A frequency's *radius* is
``sqrt(fx^2 + fy^2) / 0.5``, i.e. a fraction of the Nyquist frequency: 0 is DC, 1 is Nyquist
along an axis, and the diagonal corners reach ``sqrt(2)``.

Spectra are taken of the BT.601 luma (:class:`losslab.losses.views.LumaView`) after removing
each image's mean and multiplying by a 2-D Hann window, so the jump between opposite image
borders (the DFT treats the image as periodic) does not show up as spurious high frequencies.
"""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.core.validation import check_image
from losslab.losses.views import LumaView
from losslab.metrics._common import check_image_pair

_EPS = 1e-12


def _windowed_luma(images: Tensor) -> Tensor:
    luma = LumaView()(images.float())[:, 0]  # (N, H, W)
    luma = luma - luma.mean(dim=(-2, -1), keepdim=True)
    height, width = luma.shape[-2:]
    window = torch.outer(
        torch.hann_window(height, periodic=False, device=luma.device, dtype=luma.dtype),
        torch.hann_window(width, periodic=False, device=luma.device, dtype=luma.dtype),
    )
    return luma * window


def power_spectrum(images: Tensor) -> tuple[Tensor, Tensor]:
    """2-D power spectrum of windowed luma and each frequency's radius (fraction of Nyquist).

    Returns ``(power (N, H, W), radius (H, W))``; power is ``|FFT|^2 / (H W)``, unshifted
    (DC at index ``[0, 0]``).
    """
    check_image(images, "images", channels=3)
    luma = _windowed_luma(images)
    height, width = luma.shape[-2:]
    power = torch.fft.fft2(luma).abs().square() / (height * width)
    fy = torch.fft.fftfreq(height, device=luma.device, dtype=luma.dtype)
    fx = torch.fft.fftfreq(width, device=luma.device, dtype=luma.dtype)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2) / 0.5
    return power, radius


def radial_power_spectrum(images: Tensor, bins: int | None = None) -> Tensor:
    """Radially averaged power spectrum of luma, ``(N, 3, H, W) -> (N, R)``.

    Bin ``k`` averages the power of the frequencies whose radius lies in
    ``[k / R, (k + 1) / R)`` of the Nyquist frequency (centre ``(k + 0.5) / R``, see
    :func:`radial_bin_centres`); frequencies beyond Nyquist (the diagonal corners) are left out.
    ``R`` defaults to ``min(H, W) // 2``. Empty bins are 0.

    Shape:
        - images: ``(N, 3, H, W)`` in ``[0, 1]``.
        - output: ``(N, R)``, power in ``[0, 1]``-intensity units squared.
    """
    power, radius = power_spectrum(images)
    count = bins if bins is not None else min(power.shape[-2:]) // 2
    if count < 1:
        raise ValueError(f"bins must be >= 1; got {count} (images {tuple(images.shape[-2:])}).")
    index = torch.floor(radius * count).long().flatten()  # (H*W,)
    inside = index < count
    index = index[inside]
    flat = power.flatten(1)[:, inside]  # (N, M)
    sums = torch.zeros(power.shape[0], count, device=power.device, dtype=power.dtype)
    sums.index_add_(1, index, flat)
    counts = torch.bincount(index, minlength=count).to(power.dtype)
    return sums / counts.clamp_min(1)


def radial_bin_centres(bins: int) -> Tensor:
    """Centres of :func:`radial_power_spectrum`'s bins as fractions of the Nyquist frequency."""
    return (torch.arange(bins, dtype=torch.float32) + 0.5) / bins


def high_frequency_energy(images: Tensor, cutoff: float = 0.25) -> Tensor:
    """Per-image luma energy at radius >= ``cutoff`` (fraction of Nyquist), shape ``(N,)``."""
    if not 0.0 < cutoff < 2**0.5:
        raise ValueError(f"cutoff is a fraction of the Nyquist frequency in (0, 1.41); got {cutoff}.")
    power, radius = power_spectrum(images)
    return (power * (radius >= cutoff)).sum(dim=(-2, -1))


def high_frequency_ratio(output: Tensor, target: Tensor, cutoff: float = 0.25) -> float:
    """High-frequency energy of outputs over that of targets, pooled over the batch.

    Energy = sum of the luma power spectrum over all frequencies with radius ``>= cutoff``
    times the Nyquist frequency (``cutoff=0.25``: periods shorter than 8 pixels). The ratio is
    ``(sum_i E_out,i + eps) / (sum_i E_target,i + eps)``, ``eps = 1e-12``: pooled rather than a
    mean of per-image ratios, because one flat target crop (sky, a black background) has almost
    no high-frequency energy and would dominate a mean of ratios.
    1 for identical images, < 1 for a blurred output, > 1 for added noise.

    Shape:
        - output, target: ``(N, 3, H, W)`` in ``[0, 1]``.
    """
    check_image_pair(output, target)
    ratio = (high_frequency_energy(output, cutoff).sum() + _EPS) / (
        high_frequency_energy(target, cutoff).sum() + _EPS
    )
    return float(ratio)


def gradient_magnitude(images: Tensor) -> Tensor:
    """Per-image mean luma gradient magnitude ``sqrt(dx^2 + dy^2)`` (forward differences), ``(N,)``.

    Differences are taken on the common ``(H-1) x (W-1)`` interior, in ``[0, 1]`` units per pixel.
    """
    check_image(images, "images", channels=3)
    luma = LumaView()(images.float())[:, 0]
    dx = luma[:, :-1, 1:] - luma[:, :-1, :-1]
    dy = luma[:, 1:, :-1] - luma[:, :-1, :-1]
    return torch.sqrt(dx * dx + dy * dy).mean(dim=(-2, -1))


def gradient_magnitude_ratio(output: Tensor, target: Tensor) -> float:
    """Mean luma gradient magnitude of outputs over that of targets, pooled over the batch
    (as :func:`high_frequency_ratio`, so a flat target crop cannot dominate).

    1 for identical images, < 1 for blurred outputs (edges spread out), > 1 for noise.

    Shape:
        - output, target: ``(N, 3, H, W)`` in ``[0, 1]``, at least 2x2.
    """
    check_image_pair(output, target, min_size=2)
    ratio = (gradient_magnitude(output).sum() + _EPS) / (gradient_magnitude(target).sum() + _EPS)
    return float(ratio)
