"""Fidelity metrics: PSNR (pooled over the set), SSIM and MS-SSIM (computed by ``torchmetrics``).

All take batches ``(N, 3, H, W)`` in ``[0, 1]`` (``data_range = 1``), on any device, and return
a Python float: PSNR pooled over the batch (see below), SSIM and MS-SSIM the mean over the batch
of the per-image value.

PSNR: one definition everywhere
-------------------------------
losslab's ``psnr`` is the **pooled** PSNR of a set of images::

    psnr = 10 log10(1 / MSE),   MSE = mean over every image, channel and pixel of
                                      (clip(output, 0, 1) - target)^2

i.e. the PSNR of the set's mean squared error, not a mean of per-image PSNRs. A mean of
per-image values is dominated by near-flat images, whose PSNR is unbounded (a flat validation
crop with standard deviation 0.003 scored 182 dB for bicubic upsampling and moved a set's mean
by 10 dB); the pooled value weighs every pixel's error equally and needs no cap. Outputs are
clipped to ``[0, 1]`` first, as they would be when saved or shown. Identical sets give ``inf``.
The same functions compute the metric in ``metrics.json`` (:func:`psnr`), the training log's
``val/psnr`` (:func:`squared_error_sum` accumulated over validation batches, then
:func:`psnr_from_mse`) and the report; :func:`per_image_psnr` gives the per-image spread the
report plots beside it (uncapped, for display only).

SSIM uses the settings of Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5,
``K1 = 0.01``, ``K2 = 0.03``, averaged over the three channels. MS-SSIM uses the same window and
the five scale weights (betas) of Wang, Simoncelli & Bovik (2003).

MS-SSIM on small images
-----------------------
Each scale halves the image, and the 11-pixel window must still fit at the coarsest scale:
``torchmetrics`` requires ``H // max(1, S - 1) ** 2 > 10`` for ``S`` scales, i.e. at least
176 px for the standard five scales. For smaller images :func:`ms_ssim` uses the largest ``S``
that fits and keeps the first ``S`` betas **renormalised to sum to 1** (so the value stays
on the same 0..1 scale as SSIM). :func:`ms_ssim_scales` tells how many scales an image size
gets; :func:`losslab.metrics.compute_image_metrics` records the fallback in its ``notes``.
Below 11 px not even one scale fits and the metric is reported unavailable.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from losslab.metrics._common import check_image_pair

#: Scale weights of Wang, Simoncelli & Bovik (2003), finest scale first.
MS_SSIM_BETAS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_KERNEL_SIZE = 11
SSIM_SIGMA = 1.5


def squared_error_sum(outputs: Tensor, targets: Tensor) -> tuple[Tensor, int]:
    """``(sum of squared errors, number of values)`` of ``clip(outputs, 0, 1)`` against ``targets``.

    The accumulator behind the pooled :func:`psnr`: summed over batches (and processes) and
    divided by the summed counts it gives the set's MSE for :func:`psnr_from_mse`.

    Shape:
        - outputs, targets: ``(N, C, H, W)`` in ``[0, 1]`` (outputs may overshoot; they are
          clipped).
        - returns a 0-d float32 tensor on the inputs' device (detached) and ``N*C*H*W``.
    """
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs and targets must have the same shape; got "
                         f"{tuple(outputs.shape)} and {tuple(targets.shape)}.")
    error = outputs.detach().float().clamp(0.0, 1.0) - targets.detach().float()
    return error.square().sum(), error.numel()


def psnr_from_mse(mse: float | Tensor) -> float:
    """``10 log10(1 / mse)`` in dB for a data range of 1; ``inf`` for ``mse = 0``."""
    value = float(mse)
    if value < 0 or math.isnan(value):
        raise ValueError(f"mse must be a non-negative number; got {value}.")
    return math.inf if value == 0 else -10.0 * math.log10(value)


def psnr(outputs: Tensor, targets: Tensor) -> float:
    """Pooled peak signal-to-noise ratio of a set of images, in dB (module docstring).

    ``10 log10(1 / MSE)`` with the MSE over every image, channel and pixel of
    ``clip(outputs, 0, 1) - targets``: the PSNR of the whole set, not a mean of per-image
    PSNRs (which near-flat images dominate). Identical sets give ``inf``.

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``.

    Example:
        >>> import torch
        >>> round(psnr(torch.full((2, 3, 4, 4), 0.1), torch.zeros(2, 3, 4, 4)), 4)  # MSE 0.01
        20.0
    """
    check_image_pair(outputs, targets)
    total, count = squared_error_sum(outputs, targets)
    return psnr_from_mse(float(total) / count)


def per_image_psnr(outputs: Tensor, targets: Tensor) -> Tensor:
    """PSNR of each image on its own, in dB (``inf`` for an exact image; no cap), ``(N,)``.

    For showing the spread behind the pooled :func:`psnr`, not as the set's figure: one
    near-flat image can have an arbitrarily large value. Outputs are clipped to ``[0, 1]``.

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``; returns ``(N,)`` float32 on CPU.
    """
    check_image_pair(outputs, targets)
    values = peak_signal_noise_ratio(
        outputs.detach().float().clamp(0.0, 1.0), targets.detach().float(), data_range=1.0,
        reduction="none", dim=(1, 2, 3),
    )
    return values.float().cpu()


def ssim(outputs: Tensor, targets: Tensor) -> float:
    """Structural similarity (Wang et al. 2004: Gaussian window 11, sigma 1.5), in ``[-1, 1]``.

    1 for identical images; mean over channels, pixels and the batch.

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``, at least 11x11.
    """
    check_image_pair(outputs, targets, min_size=SSIM_KERNEL_SIZE)
    value = structural_similarity_index_measure(
        outputs.float(), targets.float(), gaussian_kernel=True, sigma=SSIM_SIGMA,
        kernel_size=SSIM_KERNEL_SIZE, data_range=1.0, k1=0.01, k2=0.03,
    )
    return float(value)


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales (at most 5) an ``height x width`` image supports (0: none)."""
    size = min(height, width)
    for scales in range(len(MS_SSIM_BETAS), 0, -1):
        if size >= 2**scales and size // max(1, scales - 1) ** 2 > SSIM_KERNEL_SIZE - 1:
            return scales
    return 0


def ms_ssim_betas(scales: int) -> tuple[float, ...]:
    """The first ``scales`` standard betas, renormalised to sum to 1."""
    if not 1 <= scales <= len(MS_SSIM_BETAS):
        raise ValueError(f"MS-SSIM supports 1 to {len(MS_SSIM_BETAS)} scales; got {scales}.")
    kept = MS_SSIM_BETAS[:scales]
    total = sum(kept)
    return tuple(beta / total for beta in kept)


def ms_ssim(outputs: Tensor, targets: Tensor) -> float:
    """Multi-scale SSIM in ``[0, 1]`` (1 for identical images), mean over the batch.

    Images of at least 176 px get the standard five scales; smaller ones get fewer scales with
    renormalised betas (see the module docstring and :func:`ms_ssim_scales`).

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``, at least 11x11.

    Raises:
        ValueError: for images too small for even one scale.
    """
    check_image_pair(outputs, targets)
    scales = ms_ssim_scales(*outputs.shape[-2:])
    if scales == 0:
        raise ValueError(
            f"MS-SSIM needs images of at least {SSIM_KERNEL_SIZE}x{SSIM_KERNEL_SIZE} pixels; got "
            f"{outputs.shape[-2]}x{outputs.shape[-1]}."
        )
    value = multiscale_structural_similarity_index_measure(
        outputs.float(), targets.float(), gaussian_kernel=True, sigma=SSIM_SIGMA,
        kernel_size=SSIM_KERNEL_SIZE, data_range=1.0, k1=0.01, k2=0.03,
        betas=ms_ssim_betas(scales), normalize="relu",
    )
    return float(torch.as_tensor(value).mean())
