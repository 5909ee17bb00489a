"""One call for every image metric: :func:`compute_image_metrics`, and batch accumulation.

The result is a plain dict (JSON-ready) with the public metric keys (:data:`METRIC_KEYS`),
a value ``None`` for each metric that could not be computed, and two bookkeeping entries:

- ``"unavailable"``: ``{metric: reason}`` for every ``None`` value (e.g. LPIPS without its
  pretrained backbone);
- ``"notes"``: ``{metric: note}`` for values computed with a documented fallback (MS-SSIM with
  fewer scales on small images).

``psnr`` is pooled over the set (:mod:`losslab.metrics.fidelity`); ``psnr_plausible`` is the
same PSNR against each output's nearest plausible answer (:mod:`losslab.metrics.plausibility`),
computed when the plausible answers are passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import Tensor

from losslab.metrics._common import check_image_pair, check_names
from losslab.metrics.codes import EncodeFn, retrieval_top1
from losslab.metrics.color import COLOR_KEYS, color_errors
from losslab.metrics.fidelity import (
    MS_SSIM_BETAS,
    ms_ssim,
    ms_ssim_scales,
    psnr,
    psnr_from_mse,
    squared_error_sum,
    ssim,
)
from losslab.metrics.perceptual import LpipsNet, fid_kid, lpips
from losslab.metrics.plausibility import psnr_plausible
from losslab.metrics.sharpness import gradient_magnitude_ratio, high_frequency_ratio

#: Public metric keys, in the order used by tables, JSON and CSV files.
METRIC_KEYS: tuple[str, ...] = (
    "psnr", "psnr_plausible", "ssim", "ms_ssim", "lpips", "hf_ratio", "grad_ratio",
    "err_red", "err_green", "err_blue", "err_luma", "err_chroma", "chroma_ratio",
    "retrieval_top1",
)
#: Distribution metrics, computed only when asked for (``fid=True`` / ``kid=True``).
DISTRIBUTION_KEYS: tuple[str, ...] = ("fid", "kid")
#: Direction of each metric, for reports: +1 higher is better, -1 lower is better, 0 closest to 1.
METRIC_DIRECTIONS: dict[str, int] = {
    "psnr": 1, "psnr_plausible": 1, "ssim": 1, "ms_ssim": 1, "lpips": -1, "hf_ratio": 0, "grad_ratio": 0,
    "err_red": -1, "err_green": -1, "err_blue": -1, "err_luma": -1, "err_chroma": -1,
    "chroma_ratio": 0, "retrieval_top1": 1, "fid": -1, "kid": -1,
}

MetricResult = dict[str, Any]


def available_metrics() -> list[str]:
    """Every metric name :func:`compute_image_metrics` accepts in ``metrics=``."""
    return [*METRIC_KEYS, *DISTRIBUTION_KEYS]


def compute_image_metrics(
    outputs: Tensor,
    targets: Tensor,
    *,
    metrics: Iterable[str] | None = None,
    lpips: bool = True,
    lpips_net: LpipsNet = "alex",
    fid: bool = False,
    kid: bool = False,
    encode_fn: EncodeFn | None = None,
    plausible: Tensor | None = None,
    hf_cutoff: float = 0.25,
    seed: int = 0,
) -> MetricResult:
    """Fidelity, perceptual, sharpness and colour metrics of ``outputs`` against ``targets``.

    Args:
        outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``, same shape, dtype and device (CPU or
            GPU; everything runs on their device).
        metrics: names to compute (default: every key of :data:`METRIC_KEYS`, subject to the
            switches below). Unknown names raise ``ValueError`` with the closest names.
        lpips: compute LPIPS (``None`` plus a reason when its weights are missing).
        lpips_net: LPIPS backbone, ``"alex"`` (default), ``"vgg"`` or ``"squeeze"``.
        fid, kid: also compute the distribution metrics FID / KID (need torch-fidelity and the
            Inception weights; hundreds of images for meaningful values).
        encode_fn: an encoder (``model.encode``) for ``retrieval_top1``; without it that key is
            left out (it only makes sense for autoencoders).
        plausible: ``(N, P, 3, H, W)``, every plausible answer of each image (e.g. every
            possible next frame), for ``psnr_plausible``; without it that key is left out.
        hf_cutoff: cutoff of ``hf_ratio`` as a fraction of the Nyquist frequency.
        seed: seed of the retrieval augmentation.

    Returns:
        ``{metric: float | None, ..., "unavailable": {metric: reason}, "notes": {metric: note}}``.
        ``psnr`` in dB, pooled over the batch (``inf`` for identical images); ``ssim``/``ms_ssim`` in ``[0, 1]``-ish;
        ``err_*`` are mean absolute errors in ``[0, 1]`` units; ratios are output over target.
    """
    check_image_pair(outputs, targets)
    if metrics is None:
        wanted = [
            key for key in METRIC_KEYS
            if (key != "lpips" or lpips) and (key != "retrieval_top1" or encode_fn is not None)
            and (key != "psnr_plausible" or plausible is not None)
        ]
        wanted += [key for key, flag in (("fid", fid), ("kid", kid)) if flag]
    else:
        wanted = check_names("metric", list(metrics), available_metrics())
    outputs, targets = outputs.detach(), targets.detach()
    result: MetricResult = {}
    unavailable: dict[str, str] = {}
    notes: dict[str, str] = {}
    colour: dict[str, float] | None = None
    distribution: tuple[dict[str, float | None], dict[str, str]] | None = None
    for key in wanted:
        if key == "psnr":
            result[key] = psnr(outputs, targets)
        elif key == "psnr_plausible":
            if plausible is None:
                result[key] = None
                unavailable[key] = ("psnr_plausible needs the plausible answers of each image "
                                    "(plausible=...); this data does not know them.")
            else:
                result[key] = psnr_plausible(outputs, plausible)
        elif key == "ssim":
            if min(outputs.shape[-2:]) < 11:
                result[key], unavailable[key] = None, "SSIM needs images of at least 11x11 px."
            else:
                result[key] = ssim(outputs, targets)
        elif key == "ms_ssim":
            scales = ms_ssim_scales(*outputs.shape[-2:])
            if scales == 0:
                result[key], unavailable[key] = None, "MS-SSIM needs images of at least 11x11 px."
            else:
                result[key] = ms_ssim(outputs, targets)
                if scales < len(MS_SSIM_BETAS):
                    notes[key] = (
                        f"{scales} of {len(MS_SSIM_BETAS)} scales (betas truncated and "
                        f"renormalised): {min(outputs.shape[-2:])} px is below the 176 px the "
                        "five standard scales need."
                    )
        elif key == "lpips":
            value, reason = _lpips(outputs, targets, lpips_net)
            result[key] = value
            if reason is not None:
                unavailable[key] = reason
        elif key == "hf_ratio":
            result[key] = high_frequency_ratio(outputs, targets, cutoff=hf_cutoff)
        elif key == "grad_ratio":
            result[key] = gradient_magnitude_ratio(outputs, targets)
        elif key in COLOR_KEYS:
            colour = colour if colour is not None else color_errors(outputs, targets)
            result[key] = colour[key]
        elif key == "retrieval_top1":
            if encode_fn is None:
                result[key] = None
                unavailable[key] = "retrieval_top1 needs an encoder (pass encode_fn=model.encode)."
            elif outputs.shape[0] < 2:
                result[key] = None
                unavailable[key] = "retrieval_top1 needs at least 2 images."
            else:
                result[key] = retrieval_top1(encode_fn, targets, seed=seed)
        elif key in DISTRIBUTION_KEYS:
            distribution = distribution or fid_kid(outputs, targets)
            result[key] = distribution[0][key]
            if key in distribution[1]:
                unavailable[key] = distribution[1][key]
    result["unavailable"] = unavailable
    result["notes"] = notes
    return result


def _lpips(outputs: Tensor, targets: Tensor, net: LpipsNet) -> tuple[float | None, str | None]:
    return lpips(outputs, targets, net=net)


class MetricAccumulator:
    """Accumulate :func:`compute_image_metrics` over batches (torchmetrics-style).

    ``update(outputs, targets)`` per batch, ``compute()`` for the batch-size-weighted mean of each
    metric (a metric that was unavailable in any batch stays ``None`` with its reason), except
    ``psnr``, which is pooled over every batch exactly as :func:`~losslab.metrics.psnr` pools
    over one (summed squared errors, then one PSNR).
    Distribution metrics (FID/KID) are not accumulated; compute them on the whole set.

    Example:
        >>> import torch
        >>> accumulator = MetricAccumulator(lpips=False)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> accumulator.update(x, x)
        >>> accumulator.compute()["err_red"]
        0.0
    """

    def __init__(self, **options: Any) -> None:
        if options.get("fid") or options.get("kid"):
            raise ValueError("FID/KID are set metrics; compute them once with compute_image_metrics.")
        self.options = options
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._unavailable: dict[str, str] = {}
        self._notes: dict[str, str] = {}
        self._keys: list[str] = []
        self._squared_error = 0.0
        self._values = 0

    def update(self, outputs: Tensor, targets: Tensor) -> None:
        """Add one batch ``(N, 3, H, W)`` in ``[0, 1]``."""
        batch = compute_image_metrics(outputs, targets, **self.options)
        n = outputs.shape[0]
        if "psnr" in batch:
            total, count = squared_error_sum(outputs, targets)
            self._squared_error += float(total)
            self._values += count
        self._unavailable.update(batch["unavailable"])
        self._notes.update(batch["notes"])
        for key, value in batch.items():
            if key in ("unavailable", "notes"):
                continue
            if key not in self._keys:
                self._keys.append(key)
            if value is not None:
                self._sums[key] = self._sums.get(key, 0.0) + value * n
                self._counts[key] = self._counts.get(key, 0) + n

    def compute(self) -> MetricResult:
        """Weighted means of every metric so far, with ``unavailable`` and ``notes``."""
        if not self._keys:
            raise ValueError("no batch was added; call update(outputs, targets) first.")
        result: MetricResult = {
            key: None if key in self._unavailable or key not in self._counts
            else self._sums[key] / self._counts[key]
            for key in self._keys
        }
        if "psnr" in result and self._values:
            result["psnr"] = psnr_from_mse(self._squared_error / self._values)
        result["unavailable"] = dict(self._unavailable)
        result["notes"] = dict(self._notes)
        return result
