"""Input validation shared by every loss: one place, messages that name expected and actual.

Shape, dtype and device checks cost nothing and always run. Value checks (NaN/Inf and range)
force a device-to-host synchronisation, so they can be switched off globally with
:func:`set_value_checks` or per loss with ``check_values=False``.

Range tolerance
---------------
The range check exists to catch a wrong *convention* (a ``[-1, 1]`` or ``[0, 255]`` tensor given
to a ``[0, 1]`` loss), not a model's small overshoot while it trains. Therefore:

- the **target** (data) may leave the declared range ``[lo, hi]`` by at most
  ``TARGET_TOLERANCE * (hi - lo)`` (5 %: covers resampling ringing and rounding);
- the **prediction** (a model output, often unconstrained) may leave it by at most
  ``PREDICTION_TOLERANCE * (hi - lo)`` (one whole span: ``[-1, 2]`` for ``[0, 1]``). A model with
  a linear output overshoots while it trains, a GAN generator by 50 % and more (measured: an
  SRGAN-style run reached 1.53 on ``[0, 1]`` data), and that must never stop training. A
  ``[0, 255]`` prediction still fails at once; a ``[-1, 1]`` convention mismatch is caught on the
  target, which carries the data's convention.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, get_args

import torch
from torch import Tensor

Reduction = Literal["mean", "sum", "none"]
InputRange = tuple[float, float]

TARGET_TOLERANCE = 0.05
PREDICTION_TOLERANCE = 1.0

_value_checks_enabled = True


def set_value_checks(enabled: bool) -> None:
    """Globally enable or disable the syncing NaN/Inf and range checks (default: enabled)."""
    global _value_checks_enabled
    _value_checks_enabled = bool(enabled)


def value_checks_enabled() -> bool:
    """Whether the syncing NaN/Inf and range checks run (see :func:`set_value_checks`)."""
    return _value_checks_enabled


def check_choice(name: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` listing them."""
    options = tuple(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}.")
    return value


def check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    example: str = "",
) -> float:
    """A finite real number in ``[low, high]`` (``(low, high]`` with ``low_open``), as a float.

    Constructors call this so that a bad value fails when the loss is built, not as a silent
    NaN/Inf/0 at the first call. Booleans and strings are refused (``TypeError``), as are
    NaN/Inf and values outside the bounds (``ValueError``); messages name the parameter, the
    allowed range, the value given and an ``example``.
    """
    hint = f" such as {example}" if example else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number{hint}; got {value!r} ({type(value).__name__}).")
    number = float(value)
    if high is None:
        bounds = "" if low is None else (f" > {low:g}" if low_open else f" >= {low:g}")
    else:
        bounds = (" in (" if low_open else " in [") + ("-inf" if low is None else f"{low:g}") \
            + f", {high:g}]"
    if (not math.isfinite(number) or (low is not None and (number < low or (low_open and number == low)))
            or (high is not None and number > high)):
        raise ValueError(f"{name} must be a finite number{bounds}{hint}; got {value!r}.")
    return number


def check_flag(name: str, value: object, *, allow_none: bool = False) -> bool | None:
    """A boolean option (``True``/``False``, or ``None`` when ``allow_none``); anything else,
    such as the string ``'banana'`` or ``'none'`` given as text, raises a ``TypeError``."""
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        allowed = "true, false or none" if allow_none else "true or false"
        raise TypeError(f"{name} must be {allowed}; got {value!r} ({type(value).__name__}).")
    return value


def check_reduction(reduction: str) -> Reduction:
    """Validate a ``reduction`` argument (``'mean'``, ``'sum'`` or ``'none'``)."""
    return check_choice("reduction", reduction, get_args(Reduction))  # type: ignore[return-value]


def reduce(values: Tensor, reduction: Reduction) -> Tensor:
    """Apply ``reduction`` to a per-element or per-sample loss tensor.

    ``'mean'`` and ``'sum'`` return a scalar; ``'none'`` returns ``values`` unchanged.
    """
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    check_reduction(reduction)
    raise AssertionError("unreachable")


def check_input_range(input_range: Iterable[float]) -> InputRange:
    """Validate a declared value range ``(low, high)`` with ``low < high``, both finite."""
    try:
        low, high = (float(v) for v in input_range)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"input_range must be a pair (low, high) such as (0, 1) or (-1, 1); got {input_range!r}."
        ) from error
    if not (low < high) or not all(map(lambda v: abs(v) != float("inf"), (low, high))):
        raise ValueError(
            f"input_range must satisfy low < high with finite values; got ({low}, {high})."
        )
    return (low, high)


def check_image(
    tensor: Tensor,
    name: str = "input",
    *,
    channels: int | None = None,
    min_size: int | None = None,
) -> None:
    """Check that ``tensor`` is a float image batch ``(N, C, H, W)``; never syncs."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W); got {type(tensor).__name__}.")
    if tensor.dim() != 4:
        raise ValueError(
            f"{name} must be a 4-D tensor (N, C, H, W); got {tensor.dim()}-D with shape "
            f"{tuple(tensor.shape)}. Add a batch dimension with tensor.unsqueeze(0) for one image."
        )
    if not tensor.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor; got {tensor.dtype}. "
            "Convert with tensor.float() (and divide uint8 images by 255 for the (0, 1) range)."
        )
    if tensor.numel() == 0:  # an empty batch would give NaN (checks off) or fail in aminmax
        raise ValueError(
            f"{name} is empty: shape {tuple(tensor.shape)} has a zero-sized dimension; a loss "
            "needs at least one image of at least 1x1 pixel with one channel. Check the batch "
            "size, the crop and the data loader (an empty last batch?)."
        )
    if channels is not None and tensor.shape[1] != channels:
        raise ValueError(
            f"{name} must have {channels} channels (dim 1); got {tensor.shape[1]} with shape "
            f"{tuple(tensor.shape)}."
        )
    if min_size is not None and min(tensor.shape[-2:]) < min_size:
        raise ValueError(
            f"{name} must be at least {min_size}x{min_size} pixels; got "
            f"{tensor.shape[-2]}x{tensor.shape[-1]}."
        )


def check_pair(
    prediction: Tensor,
    target: Tensor,
    *,
    channels: int | None = None,
    min_size: int | None = None,
) -> None:
    """Check a ``(prediction, target)`` pair: both images, same shape, dtype and device."""
    check_image(prediction, "prediction", channels=channels, min_size=min_size)
    check_image(target, "target", channels=channels, min_size=min_size)
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction and target must have the same shape; got prediction "
            f"{tuple(prediction.shape)} and target {tuple(target.shape)}."
        )
    if prediction.dtype != target.dtype:
        raise TypeError(
            f"prediction and target must have the same dtype; got {prediction.dtype} and "
            f"{target.dtype}. Cast one with .to(other.dtype)."
        )
    if prediction.device != target.device:
        raise ValueError(
            f"prediction and target must be on the same device; got {prediction.device} and "
            f"{target.device}. Move one with .to(other.device)."
        )


def _range_hint(low: float, high: float, seen_min: float, seen_max: float) -> str:
    if seen_max > 2.0 * max(abs(high), 1.0) and seen_max <= 255.0 * 1.05:
        return " It looks like a [0, 255] image: divide by 255."
    if seen_min < low and seen_min >= -1.05 and (low, high) == (0.0, 1.0):
        return " It looks like a [-1, 1] image: pass input_range=(-1, 1) or map it with (x + 1) / 2."
    return ""


def _finite_count_error(tensor: Tensor, name: str) -> ValueError:
    count = int((~torch.isfinite(tensor)).sum())
    return ValueError(
        f"{name} contains {count} NaN or Inf value(s) out of {tensor.numel()}; a loss cannot "
        "compare them. Check the data pipeline or the model for a diverging layer."
    )


def _range_error(
    name: str, input_range: InputRange, tolerance: float, seen_min: float, seen_max: float
) -> ValueError:
    low, high = input_range
    return ValueError(
        f"{name} values lie in [{seen_min:.4g}, {seen_max:.4g}] but the loss was declared for "
        f"input_range=({low:g}, {high:g}) (tolerance {tolerance:.0%} of the span for the "
        f"{name})." + _range_hint(low, high, seen_min, seen_max)
        + " Declare the right range with losslab.loss(spec, input_range=...)."
    )


def _check_extremes(
    tensor: Tensor, name: str, input_range: InputRange, tolerance: float,
    seen_min: float, seen_max: float,
) -> None:
    # NaN propagates into min/max and Inf is an extreme, so the two extremes tell both stories.
    if not (math.isfinite(seen_min) and math.isfinite(seen_max)):
        raise _finite_count_error(tensor, name)
    low, high = input_range
    slack = tolerance * (high - low)
    if seen_min < low - slack or seen_max > high + slack:
        raise _range_error(name, input_range, tolerance, seen_min, seen_max)


def check_values(
    tensor: Tensor, name: str, input_range: InputRange, tolerance: float
) -> None:
    """Raise if ``tensor`` holds NaN/Inf or leaves ``input_range`` by more than the tolerance.

    ``tolerance`` is a fraction of the range's span. One pass, one device synchronisation.
    """
    seen_min, seen_max = torch.aminmax(tensor.detach())
    low_high = torch.stack([seen_min, seen_max]).tolist()
    _check_extremes(tensor, name, input_range, tolerance, *low_high)


def check_pair_values(
    prediction: Tensor, target: Tensor, input_range: InputRange
) -> tuple[float, float]:
    """Value checks for a pair: strict-ish for the target (data), loose for the prediction.

    Both tensors' extremes come back in a single device synchronisation. Returns the target's
    ``(min, max)`` (for :func:`range_mixup_message`).
    """
    target_min, target_max = torch.aminmax(target.detach())
    prediction_min, prediction_max = torch.aminmax(prediction.detach())
    extremes = torch.stack([target_min, target_max, prediction_min, prediction_max]).tolist()
    _check_extremes(target, "target", input_range, TARGET_TOLERANCE, *extremes[:2])
    _check_extremes(prediction, "prediction", input_range, PREDICTION_TOLERANCE, *extremes[2:])
    return extremes[0], extremes[1]


class RangeMixupWarning(UserWarning):
    """A whole batch of targets sits where data of another convention would (see
    :func:`range_mixup_message`). Silence it with
    ``warnings.filterwarnings("ignore", category=losslab.losses.RangeMixupWarning)``."""


def range_mixup_message(input_range: InputRange, target_min: float, target_max: float) -> str | None:
    """Why a target batch looks like ``[0, 1]`` data under a declared ``(-1, 1)`` or ``(0, 255)``.

    Data may legitimately use part of its range (a dark scene in ``[-1, 1]`` may never go above
    0), so this is a warning, not an error: it fires when *every* target value lies in the upper
    half ``[0, 1]`` of a declared ``(-1, 1)``, or inside ``[0, 1]`` of a declared ``(0, 255)``,
    where the loss would be 1/2 or 1/255 of the intended value. ``None`` when nothing looks wrong.
    """
    silence = ('If the data really is like that, silence this with warnings.filterwarnings('
               '"ignore", category=losslab.losses.RangeMixupWarning).')
    if input_range == (-1.0, 1.0) and target_min >= 0.0 and target_max <= 1.0:
        return (f"every target value of this batch lies in [{target_min:.3g}, {target_max:.3g}], "
                "inside [0, 1], but the loss was declared for input_range=(-1, 1): if the data "
                "is in [0, 1], the loss is half its intended value (and feature networks see "
                "the wrong range). Declare input_range=(0, 1), or map the data with 2 * x - 1. "
                + silence)
    if input_range == (0.0, 255.0) and target_min >= 0.0 and target_max <= 1.0:
        return (f"every target value of this batch lies in [{target_min:.3g}, {target_max:.3g}], "
                "inside [0, 1], but the loss was declared for input_range=(0, 255): if the data "
                "is in [0, 1], the loss is 1/255 of its intended value. Declare "
                "input_range=(0, 1), or multiply the data by 255. " + silence)
    return None
