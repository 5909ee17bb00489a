"""Fidelity metrics: PSNR, SSIM and MS-SSIM (computed by ``torchmetrics``).

All take batches ``(N, 3, H, W)`` in ``[0, 1]`` (``data_range = 1``), on any device, and return
the mean over the batch of the per-image value as a Python float.

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


def psnr(outputs: Tensor, targets: Tensor) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(1 / MSE)`` per image, mean over the batch.

    Identical images give ``inf``.

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``.
    """
    check_image_pair(outputs, targets)
    values = peak_signal_noise_ratio(
        outputs.float(), targets.float(), data_range=1.0, reduction="none", dim=(1, 2, 3)
    )
    return float(values.mean())


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
