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

from losslab.metrics._common import check_image_pair
from losslab.metrics.codes import EncodeFn
from losslab.metrics.fidelity import psnr_from_mse, squared_error_sum
from losslab.metrics.perceptual import LpipsNet
from losslab.metrics.table import (
    DISTRIBUTION_KEYS,
    METRIC_KEYS,
    METRIC_TABLE,
    MetricInputs,
    MetricUnavailableError,
    metric_spec,
)

MetricResult = dict[str, Any]


def available_metrics() -> list[str]:
    """Every metric name :func:`compute_image_metrics` accepts in ``metrics=``, in table order."""
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

    Walks the metric table (:data:`losslab.metrics.table.METRIC_TABLE`): for each wanted row, its
    reason to be unavailable (image size, missing weights or inputs) or its value, and its note.

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
        present = {"plausible": plausible is not None, "encoder": encode_fn is not None}
        switches = {"lpips": lpips, "fid": fid, "kid": kid}
        wanted = [
            spec for spec in METRIC_TABLE
            if switches.get(spec.name, not spec.distribution)
            and (spec.needs is None or present[spec.needs])
        ]
    else:
        wanted = [metric_spec(name) for name in metrics]
    inputs = MetricInputs(outputs.detach(), targets.detach(), plausible=plausible,
                          encode_fn=encode_fn, lpips_net=lpips_net, hf_cutoff=hf_cutoff, seed=seed)
    result: MetricResult = {}
    unavailable: dict[str, str] = {}
    notes: dict[str, str] = {}
    for spec in wanted:
        reason = spec.reason(inputs)
        if reason is None:
            try:
                result[spec.name] = spec.function(inputs)
            except MetricUnavailableError as error:
                reason = str(error)
        if reason is not None:
            result[spec.name], unavailable[spec.name] = None, reason
            continue
        note = spec.note(inputs) if spec.note is not None else None
        if note is not None:
            notes[spec.name] = note
    result["unavailable"] = unavailable
    result["notes"] = notes
    return result


class MetricAccumulator:
    """Accumulate :func:`compute_image_metrics` over batches (torchmetrics-style).

    ``update(outputs, targets)`` per batch, ``compute()`` for the batch-size-weighted mean of each
    metric (a metric that was unavailable in any batch stays ``None`` with its reason), except
    ``psnr``, which is pooled over every batch exactly as :func:`~losslab.metrics.pooled_psnr` pools
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
