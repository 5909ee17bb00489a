"""The one metric table: every metric's name, function, direction, minimum size, label and why
it may be unavailable.

:func:`losslab.metrics.compute_image_metrics` walks this table; evaluation
(:mod:`losslab.experiments.evaluate`: column order of ``metrics.json`` / ``metrics.csv``) and the
report (column order, arrows, best-value marks and column titles) read it. A metric added here is
computed, written and reported without touching another module.

Each row (:class:`MetricSpec`) holds:

- ``name``: the key in ``metrics.json`` (``psnr``, ``ssim``, ...);
- ``function``: ``MetricInputs -> float``, the computation (the same function the loss of that
  name uses, where there is one: ``ssim``, ``ms_ssim``, ``lpips``);
- ``higher_is_better``: ``True`` / ``False``, or ``None`` for ratios whose best value is
  ``best_value`` (1: the output has the target's sharpness or colourfulness);
- ``min_size``: smallest image side in pixels it accepts (``None``: no bound, or one that depends
  on an option, as LPIPS's backbone);
- ``label``: one line for table headers and tooltips;
- ``unavailable_reason``: ``MetricInputs -> str | None``, why it cannot be computed on these
  inputs (missing weights, no encoder, no plausible answers), checked before ``function``;
- ``note``: ``MetricInputs -> str | None``, a documented fallback to record beside the value
  (MS-SSIM with fewer scales on small images).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import Tensor

from losslab.core.registry import Registry
from losslab.losses.structural import MS_SSIM_WEIGHTS, ms_ssim_min_size
from losslab.metrics.codes import EncodeFn, retrieval_top1
from losslab.metrics.color import COLOR_KEYS, color_errors, deltae_error
from losslab.metrics.fidelity import (
    SSIM_WINDOW_SIZE,
    mean_ms_ssim,
    mean_ssim,
    ms_ssim_scales,
    pooled_psnr,
)
from losslab.metrics.perceptual import LpipsNet, fid_kid, fid_kid_unavailable_reason, lpips
from losslab.metrics.plausibility import psnr_plausible
from losslab.metrics.sharpness import gradient_magnitude_ratio, high_frequency_ratio


class MetricUnavailableError(RuntimeError):
    """Raised by a metric function that finds, while computing, that it cannot (the reason)."""


@dataclass
class MetricInputs:
    """Everything a metric function may read, for one call of ``compute_image_metrics``.

    Attributes:
        outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``, detached, on one device.
        plausible: ``(N, P, 3, H, W)`` plausible answers per image, or ``None``.
        encode_fn: the autoencoder's ``encode``, or ``None``.
        lpips_net: LPIPS backbone (``"alex"``, ``"vgg"``, ``"squeeze"``).
        hf_cutoff: ``hf_ratio`` cutoff as a fraction of Nyquist.
        seed: seed of the retrieval augmentation.
    """

    outputs: Tensor
    targets: Tensor
    plausible: Tensor | None = None
    encode_fn: EncodeFn | None = None
    lpips_net: LpipsNet = "alex"
    hf_cutoff: float = 0.25
    seed: int = 0
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per call for results several rows read (colour errors, FID/KID)."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    @property
    def size(self) -> int:
        """The smaller image side in pixels."""
        return min(self.outputs.shape[-2:])


MetricFunction = Callable[[MetricInputs], "float | None"]
ReasonFunction = Callable[[MetricInputs], "str | None"]


@dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table (see the module docstring for each field)."""

    name: str
    function: MetricFunction
    higher_is_better: bool | None
    min_size: int | None
    label: str
    unavailable_reason: ReasonFunction | None = None
    note: ReasonFunction | None = None
    best_value: float | None = None
    needs: Literal["plausible", "encoder"] | None = None
    distribution: bool = False

    @property
    def direction(self) -> Literal["max", "min", "one"]:
        """``"max"`` (higher is better), ``"min"`` (lower) or ``"one"`` (closest to 1)."""
        if self.higher_is_better is None:
            return "one"
        return "max" if self.higher_is_better else "min"

    def reason(self, inputs: MetricInputs) -> str | None:
        """Why this metric cannot be computed on ``inputs`` (size first), or ``None``."""
        if self.min_size is not None and inputs.size < self.min_size:
            return (f"{self.name} needs images of at least {self.min_size}x{self.min_size} px; "
                    f"got {inputs.outputs.shape[-2]}x{inputs.outputs.shape[-1]}.")
        return self.unavailable_reason(inputs) if self.unavailable_reason is not None else None


# -- the functions behind the rows: thin adapters from MetricInputs to the metric functions ----
def _lpips(inputs: MetricInputs) -> float | None:
    value, reason = lpips(inputs.outputs, inputs.targets, net=inputs.lpips_net)
    if reason is not None:
        raise MetricUnavailableError(reason)
    return value


def _colour(key: str) -> MetricFunction:
    def compute(inputs: MetricInputs) -> float:
        return inputs.shared("colour", lambda: color_errors(inputs.outputs, inputs.targets))[key]

    return compute


def _distribution(key: str) -> MetricFunction:
    def compute(inputs: MetricInputs) -> float | None:
        values, reasons = inputs.shared("fid_kid", lambda: fid_kid(inputs.outputs, inputs.targets))
        if key in reasons:
            raise MetricUnavailableError(reasons[key])
        return values[key]

    return compute


def _ms_ssim_note(inputs: MetricInputs) -> str | None:
    scales, full = ms_ssim_scales(*inputs.outputs.shape[-2:]), len(MS_SSIM_WEIGHTS)
    if scales >= full:
        return None
    return (f"{scales} of {full} scales (weights truncated and renormalised): {inputs.size} px is "
            f"below the {ms_ssim_min_size(full)} px the five standard scales need.")


def _retrieval_reason(inputs: MetricInputs) -> str | None:
    if inputs.encode_fn is None:
        return "retrieval_top1 needs an encoder (pass encode_fn=model.encode)."
    if inputs.outputs.shape[0] < 2:
        return "retrieval_top1 needs at least 2 images."
    return None


def _retrieval(inputs: MetricInputs) -> float:
    if inputs.encode_fn is None or inputs.outputs.shape[0] < 2:  # the row's reason says why
        raise MetricUnavailableError(str(_retrieval_reason(inputs)))
    return retrieval_top1(inputs.encode_fn, inputs.targets, seed=inputs.seed)


def _psnr_plausible(inputs: MetricInputs) -> float:
    if inputs.plausible is None:  # the row's reason says why
        raise MetricUnavailableError(str(_plausible_reason(inputs)))
    return psnr_plausible(inputs.outputs, inputs.plausible)


def _plausible_reason(inputs: MetricInputs) -> str | None:
    if inputs.plausible is None:
        return ("psnr_plausible needs the plausible answers of each image (plausible=...); this "
                "data does not know them.")
    return None


_COLOUR_LABELS = {
    "err_red": "mean absolute error, red",
    "err_green": "mean absolute error, green",
    "err_blue": "mean absolute error, blue",
    "err_luma": "mean absolute error, luma (BT.601)",
    "err_chroma": "mean absolute error, chroma",
}

#: Every metric, in the order of tables, JSON and CSV files.
METRIC_TABLE: tuple[MetricSpec, ...] = (
    MetricSpec("psnr", lambda i: pooled_psnr(i.outputs, i.targets), True, None,
               "PSNR, dB, pooled over the validation set: 10 log10(1 / MSE of all pixels)"),
    MetricSpec("psnr_plausible", _psnr_plausible, True, None,
               "PSNR, dB, to each image's nearest plausible answer (pooled)",
               unavailable_reason=_plausible_reason, needs="plausible"),
    MetricSpec("ssim", lambda i: mean_ssim(i.outputs, i.targets), True, SSIM_WINDOW_SIZE, "SSIM"),
    MetricSpec("ms_ssim", lambda i: mean_ms_ssim(i.outputs, i.targets), True, SSIM_WINDOW_SIZE,
               "MS-SSIM (fewer scales below 161 px, see notes)", note=_ms_ssim_note),
    MetricSpec("lpips", _lpips, False, None, "LPIPS (lower is more similar)"),
    MetricSpec("hf_ratio", lambda i: high_frequency_ratio(i.outputs, i.targets, cutoff=i.hf_cutoff),
               None, None, "high-frequency energy, output / target", best_value=1.0),
    MetricSpec("grad_ratio", lambda i: gradient_magnitude_ratio(i.outputs, i.targets), None, None,
               "gradient magnitude, output / target", best_value=1.0),
    *(MetricSpec(key, _colour(key), False, None, label) for key, label in _COLOUR_LABELS.items()),
    MetricSpec("err_deltae", lambda i: deltae_error(i.outputs, i.targets), False, None,
               "mean CIEDE2000 colour difference (CIELAB, D65; ~1 per just-noticeable step)"),
    MetricSpec("chroma_ratio", _colour("chroma_ratio"), None, None,
               "chroma energy, output / target (< 1 = desaturated)", best_value=1.0),
    MetricSpec("retrieval_top1", _retrieval, True, None,
               "code retrieval of slightly changed images, top-1",
               unavailable_reason=_retrieval_reason, needs="encoder"),
    MetricSpec("fid", _distribution("fid"), False, None, "FID (distribution distance)",
               unavailable_reason=lambda i: fid_kid_unavailable_reason(), distribution=True),
    MetricSpec("kid", _distribution("kid"), False, None, "KID (distribution distance)",
               unavailable_reason=lambda i: fid_kid_unavailable_reason(), distribution=True),
)
if tuple(spec.name for spec in METRIC_TABLE if spec.name in COLOR_KEYS) != COLOR_KEYS:
    raise RuntimeError("the metric table must list every colour key of metrics.color, in order.")

#: The table by name (with "did you mean" errors for unknown names).
METRICS: Registry[MetricSpec] = Registry("metric")
for _spec in METRIC_TABLE:
    METRICS.register(_spec.name, _spec)

#: Per-set image metrics, in table order (what ``metrics.json`` holds).
METRIC_KEYS: tuple[str, ...] = tuple(spec.name for spec in METRIC_TABLE if not spec.distribution)
#: Distribution metrics, computed only when asked for (``fid=True`` / ``kid=True``).
DISTRIBUTION_KEYS: tuple[str, ...] = tuple(spec.name for spec in METRIC_TABLE if spec.distribution)


def metric_spec(name: str) -> MetricSpec:
    """The table row ``name``; an unknown name raises ``ValueError`` with the closest names."""
    return METRICS.get(name)


__all__ = [
    "DISTRIBUTION_KEYS",
    "METRICS",
    "METRIC_KEYS",
    "METRIC_TABLE",
    "MetricInputs",
    "MetricSpec",
    "MetricUnavailableError",
    "metric_spec",
]
