"""Fidelity metrics: PSNR (pooled over the set), SSIM and MS-SSIM (losslab's own, the losses' code).

All take batches ``(N, 3, H, W)`` in ``[0, 1]`` (``data_range = 1``), on any device, and return
a Python float: PSNR pooled over the batch (:func:`pooled_psnr`, see below), SSIM and MS-SSIM
the mean over the batch of the per-image value (:func:`mean_ssim`, :func:`mean_ms_ssim`). The
per-image tensors ``(N,)`` are :func:`losslab.functional.psnr`, :func:`~losslab.functional.ssim`
and :func:`~losslab.functional.ms_ssim`; the old names ``psnr``, ``ssim`` and ``ms_ssim`` here
(floats named like those tensors) still work and warn (``DeprecationWarning``).

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
The same functions compute the metric in ``metrics.json`` (:func:`pooled_psnr`), the training log's
``val/psnr`` (:func:`squared_error_sum` accumulated over validation batches, then
:func:`psnr_from_mse`) and the report; :func:`per_image_psnr` gives the per-image spread the
report plots beside it (uncapped, for display only).

SSIM and MS-SSIM: one implementation
------------------------------------
:func:`mean_ssim` and :func:`mean_ms_ssim` are the batch means of the per-image indices of
:func:`losslab.functional.ssim` / :func:`~losslab.functional.ms_ssim` (which call
:mod:`losslab.losses.structural`), the functions
the ``ssim`` and ``ms_ssim`` losses are ``1 - index`` of, so a logged loss and a reported metric
cannot disagree. Settings of Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5,
``K1 = 0.01``, ``K2 = 0.03``, valid region only, per channel then averaged; MS-SSIM with the five
scale weights of Wang, Simoncelli & Bovik (2003) and 2x2 ceil-mode averaging between scales.

MS-SSIM on small images
-----------------------
Each scale halves the image, and the 11-pixel window must still fit at the coarsest scale:
five scales need 161 px (:func:`losslab.losses.structural.ms_ssim_min_size`, the loss's rule).
For smaller images :func:`mean_ms_ssim` uses the largest number of scales ``S`` that fits
(:func:`ms_ssim_scales`: 4 from 81 px, 3 from 41 px, ...) and keeps the first ``S`` weights
**renormalised to sum to 1** (:func:`~losslab.losses.structural.ms_ssim_weights`), so the value
stays on the same 0..1 scale as SSIM; :func:`losslab.metrics.compute_image_metrics` records the
fallback in its ``notes``. Below 11 px not even one scale fits and the metric is unavailable.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from losslab import functional
from losslab.losses.structural import WINDOW_SIZE as SSIM_WINDOW_SIZE
from losslab.losses.structural import ms_ssim_scales
from losslab.metrics._common import check_image_pair


def squared_error_sum(outputs: Tensor, targets: Tensor) -> tuple[Tensor, int]:
    """``(sum of squared errors, number of values)`` of ``clip(outputs, 0, 1)`` against ``targets``.

    The accumulator behind :func:`pooled_psnr`: summed over batches (and processes) and
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


def pooled_psnr(outputs: Tensor, targets: Tensor) -> float:
    """Pooled peak signal-to-noise ratio of a set of images, in dB (module docstring).

    ``10 log10(1 / MSE)`` with the MSE over every image, channel and pixel of
    ``clip(outputs, 0, 1) - targets``: the PSNR of the whole set, not a mean of per-image
    PSNRs (which near-flat images dominate). Identical sets give ``inf``.

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``.

    Example:
        >>> import torch
        >>> round(pooled_psnr(torch.full((2, 3, 4, 4), 0.1), torch.zeros(2, 3, 4, 4)), 4)  # MSE 0.01
        20.0
    """
    check_image_pair(outputs, targets)
    total, count = squared_error_sum(outputs, targets)
    return psnr_from_mse(float(total) / count)


def per_image_psnr(outputs: Tensor, targets: Tensor) -> Tensor:
    """PSNR of each image on its own, in dB (``inf`` for an exact image; no cap), ``(N,)``.

    For showing the spread behind :func:`pooled_psnr`, not as the set's figure: one
    near-flat image can have an arbitrarily large value. Outputs are clipped to ``[0, 1]``; the
    same definition as :func:`pooled_psnr` applied to one image at a time
    (:func:`losslab.functional.psnr` of the clipped outputs).

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``; returns ``(N,)`` float32 on CPU.
    """
    check_image_pair(outputs, targets)
    # functional.psnr on clipped float64 copies; log10(0) = -inf: an exact image is +inf
    values = functional.psnr(outputs.detach().double().clamp(0.0, 1.0), targets.detach().double())
    return values.float().cpu()


def mean_ssim(outputs: Tensor, targets: Tensor) -> float:
    """Structural similarity (Wang et al. 2004: Gaussian window 11, sigma 1.5), in ``[-1, 1]``.

    The batch mean of :func:`losslab.functional.ssim` (per image: valid-region map
    averaged per channel, then over channels); 1 for identical images. The ``ssim`` loss is
    ``1 -`` the same index.

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``, at least 11x11.
    """
    check_image_pair(outputs, targets, min_size=SSIM_WINDOW_SIZE)
    with torch.no_grad():
        values = functional.ssim(outputs.detach().float(), targets.detach().float())
    return float(values.mean())


def mean_ms_ssim(outputs: Tensor, targets: Tensor) -> float:
    """Multi-scale SSIM in ``[0, 1]`` (1 for identical images), mean over the batch.

    The batch mean of :func:`losslab.functional.ms_ssim` (the ``ms_ssim`` loss is ``1 -``
    the same index) with as many scales as the image holds: five from 161 px, fewer with
    renormalised weights below (see the module docstring and :func:`ms_ssim_scales`).

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``, at least 11x11.

    Raises:
        ValueError: for images too small for even one scale.
    """
    check_image_pair(outputs, targets)
    scales = ms_ssim_scales(*outputs.shape[-2:])
    if scales == 0:
        raise ValueError(
            f"MS-SSIM needs images of at least {SSIM_WINDOW_SIZE}x{SSIM_WINDOW_SIZE} pixels; got "
            f"{outputs.shape[-2]}x{outputs.shape[-1]}. Use larger images or the ssim metric."
        )
    with torch.no_grad():
        values = functional.ms_ssim(outputs.detach().float(), targets.detach().float(),
                                    scales=scales)
    return float(values.mean())


def _deprecated(old: str, new: Callable[[Tensor, Tensor], float], what: str
                ) -> Callable[[Tensor, Tensor], float]:
    def call(outputs: Tensor, targets: Tensor) -> float:
        warnings.warn(
            f"losslab.metrics.{old} is now losslab.metrics.{new.__name__} (it returns {what} as a "
            f"float); for one value per image as a tensor (N,) use losslab.functional.{old}.",
            DeprecationWarning, stacklevel=2,
        )
        return new(outputs, targets)

    call.__name__ = call.__qualname__ = old
    call.__doc__ = f"Deprecated name of :func:`{new.__name__}`."
    return call


psnr = _deprecated("psnr", pooled_psnr, "the PSNR pooled over the batch")
ssim = _deprecated("ssim", mean_ssim, "the batch mean")
ms_ssim = _deprecated("ms_ssim", mean_ms_ssim, "the batch mean")

__all__ = ["mean_ms_ssim", "mean_ssim", "ms_ssim", "ms_ssim_scales", "per_image_psnr",
           "pooled_psnr", "psnr", "psnr_from_mse", "squared_error_sum", "ssim"]
