"""Measuring what a loss does: fidelity, perceptual, sharpness, colour and code metrics.

Every function takes image batches ``(N, 3, H, W)`` in ``[0, 1]`` on any device.
:func:`compute_image_metrics` returns them all under the public keys :data:`METRIC_KEYS`
(``psnr``, ``psnr_plausible``, ``ssim``, ``ms_ssim``, ``lpips``, ``hf_ratio``, ``grad_ratio``, ``err_red``,
``err_green``, ``err_blue``, ``err_luma``, ``err_chroma``, ``err_deltae``, ``chroma_ratio``,
``retrieval_top1``) with ``None`` plus a reason for anything that needs missing weights.

The one metric table, :data:`METRIC_TABLE` (:mod:`losslab.metrics.table`), gives each metric's
function, direction, minimum size, label and unavailability reason; evaluation and the report
read it. SSIM, MS-SSIM and LPIPS are the functions of the losses of the same names
(:mod:`losslab.functional`, :mod:`losslab.losses.lpips`). The float summaries are named for
what they return (:func:`pooled_psnr`, :func:`mean_ssim`, :func:`mean_ms_ssim`); the old names
``psnr``, ``ssim``, ``ms_ssim`` still work and warn.
"""

from losslab.metrics.codes import default_augment, nearest_neighbours, retrieval_top1
from losslab.metrics.color import chroma_magnitude, chroma_ratio, color_errors, deltae_error
from losslab.metrics.compute import MetricAccumulator, available_metrics, compute_image_metrics
from losslab.metrics.fidelity import (
    mean_ms_ssim,
    mean_ssim,
    ms_ssim,
    ms_ssim_scales,
    per_image_psnr,
    pooled_psnr,
    psnr,
    psnr_from_mse,
    squared_error_sum,
    ssim,
)
from losslab.metrics.perceptual import (
    fid_kid,
    fid_kid_unavailable_reason,
    lpips,
    lpips_unavailable_reason,
)
from losslab.metrics.plausibility import (
    best_plausible_hypothesis,
    nearest_plausible,
    per_image_psnr_plausible,
    plausible_per_hypothesis,
    psnr_plausible,
)
from losslab.metrics.sharpness import (
    gradient_magnitude,
    gradient_magnitude_ratio,
    high_frequency_energy,
    high_frequency_ratio,
    power_spectrum,
    radial_bin_centres,
    radial_power_spectrum,
)
from losslab.metrics.table import (
    DISTRIBUTION_KEYS,
    METRIC_KEYS,
    METRIC_TABLE,
    METRICS,
    MetricInputs,
    MetricSpec,
    metric_spec,
)

__all__ = [
    "DISTRIBUTION_KEYS",
    "METRICS",
    "METRIC_KEYS",
    "METRIC_TABLE",
    "MetricAccumulator",
    "MetricInputs",
    "MetricSpec",
    "available_metrics",
    "best_plausible_hypothesis",
    "chroma_magnitude",
    "chroma_ratio",
    "color_errors",
    "compute_image_metrics",
    "default_augment",
    "deltae_error",
    "fid_kid",
    "fid_kid_unavailable_reason",
    "gradient_magnitude",
    "gradient_magnitude_ratio",
    "high_frequency_energy",
    "high_frequency_ratio",
    "lpips",
    "lpips_unavailable_reason",
    "mean_ms_ssim",
    "mean_ssim",
    "metric_spec",
    "ms_ssim",
    "ms_ssim_scales",
    "nearest_neighbours",
    "nearest_plausible",
    "per_image_psnr",
    "per_image_psnr_plausible",
    "plausible_per_hypothesis",
    "pooled_psnr",
    "power_spectrum",
    "psnr",
    "psnr_from_mse",
    "psnr_plausible",
    "radial_bin_centres",
    "radial_power_spectrum",
    "retrieval_top1",
    "squared_error_sum",
    "ssim",
]
