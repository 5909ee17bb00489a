"""What metamers and MAD share: building and checking a criterion, the target, the box, numbers.

Conventions of :mod:`losslab.synthesis`:

- Images are ``(N, C, H, W)`` floats in the loss's declared ``input_range`` (``(0, 1)`` by
  default), ``C`` = 3 (RGB) or 1 (grey). Every number reported (RMSE, colour errors, SSIM) is
  computed after mapping to ``[0, 1]``, so it reads the same for every range convention.
- The pixels are the parameters. They are kept in the valid range by **projection** (clamping
  to ``input_range`` after every step), not by a reparametrisation such as a sigmoid. Why:
  projection leaves the optimiser's step untouched inside the box, so what the loss does not
  measure (its null space) is not moved at all, and a pixel near 0 or 1 can still move freely.
  A sigmoid rescales each pixel's gradient by ``s'(z)``, which vanishes near the bounds (dark
  and bright pixels stall) and, being different per pixel and channel, turns a colour-neutral
  step into a colour change.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from losslab.core.validation import InputRange, check_input_range
from losslab.losses import Loss, WeightedSum
from losslab.losses import loss as build_loss
from losslab.metrics import color_errors
from losslab.metrics import ssim as ssim_metric

_FINAL_STEP = 2**62


def criterion_from(
    spec: str | Loss, input_range: Iterable[float] | None, role: str = "spec"
) -> tuple[Loss, str, InputRange]:
    """Build (or take) the loss, reject adversarial terms; returns ``(loss, name, range)``.

    ``spec``: a spec string (built with ``input_range``, default ``(0, 1)``) or a built
    :class:`~losslab.losses.Loss` (whose ``input_range`` must agree with ``input_range`` when
    both are given; it is copied, never changed). Weight schedules (``@start``, ``@ramp``) are
    set to their final weights.

    Raises:
        ValueError: a spec with an adversarial or discriminator-feature term, or conflicting
            ranges. Spec errors (:class:`~losslab.losses.SpecError`, a ``ValueError``) pass
            through with their position and suggestion.
        TypeError: ``spec`` is neither a string nor a losslab ``Loss``.
    """
    if isinstance(spec, str):
        criterion = build_loss(spec, input_range=input_range)
        name = spec.strip()
    elif isinstance(spec, Loss):
        criterion = copy.deepcopy(spec)  # eval() and the schedules below must not touch yours
        name = spec.term_name
        if input_range is not None and check_input_range(input_range) != spec.input_range:
            raise ValueError(
                f"{role} {name!r} was built for input_range={spec.input_range} but "
                f"input_range={tuple(input_range)} was given; build the loss with that range "
                "or leave input_range out."
            )
    else:
        raise TypeError(
            f"{role} must be a loss spec string such as 'l1(luma)' or a losslab Loss; got "
            f"{type(spec).__name__}."
        )
    for module in criterion.modules():
        if isinstance(module, Loss) and module.judged_by_discriminator:
            term = getattr(module, "term_name", type(module).__name__)
            raise ValueError(
                f"{role} {name!r} has the term {term!r}, which is judged by a discriminator "
                "trained together with a generator: it is not a fixed function of (image, "
                "target), so no image is 'equal' under it. Remove that term from the spec "
                "(losslab compare leaves adversarial terms out of its metamer row, as the probe "
                "does)."
            )
    for module in criterion.modules():
        if isinstance(module, WeightedSum):
            # Every scheduled term at its final weight: a metamer is about the loss a model is
            # trained with in the end, not its first steps (``mse + 0.01*perceptual@start(500)``
            # would otherwise be plain ``mse``).
            module.set_step(_FINAL_STEP)
    return criterion.eval(), name, criterion.input_range


def check_target(target: Tensor, criterion: Loss, name: str) -> Tensor:
    """One target image ``(1, C, H, W)`` (a ``(C, H, W)`` image gets its batch dimension).

    Checks, with messages naming the loss term that needs them: ``C`` is 1 (grey) or 3 (RGB);
    a colour view or feature network gets RGB; the image is at least the loss's ``min_size``.
    """
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be a torch.Tensor (C, H, W) or (1, C, H, W); got "
                        f"{type(target).__name__}.")
    if target.dim() == 3:
        target = target.unsqueeze(0)
    if target.dim() != 4 or target.shape[0] != 1:
        raise ValueError(
            f"target must be one image, (C, H, W) or (1, C, H, W); got shape {tuple(target.shape)}. "
            "Synthesise for one image at a time (target[i] for the i-th of a batch)."
        )
    if not target.is_floating_point():
        raise TypeError(f"target must be a floating-point image; got {target.dtype}. Convert a "
                        "uint8 image with image.float() / 255.")
    if target.dtype == torch.float16 or target.dtype == torch.bfloat16:
        target = target.float()  # Adam on half-precision pixels loses the small late steps
    channels = target.shape[1]
    if channels not in (1, 3):
        raise ValueError(f"target must have 1 (grey) or 3 (RGB) channels; got {channels} "
                         f"(shape {tuple(target.shape)}).")
    needs_colour = _terms_with(criterion, lambda m: getattr(m, "required_channels", None) == 3)
    if channels != 3 and needs_colour:
        raise ValueError(
            f"{name!r}: the term {needs_colour[0]!r} compares a colour view (or a network fed "
            f"RGB) and needs a 3-channel RGB image; the target is grey ({channels} channel). "
            "Use an RGB image, repeat the grey channel (image.repeat(1, 3, 1, 1)), or use a "
            "loss on all channels such as 'l1' or 'ssim'."
        )
    needed, term = minimum_size(criterion)
    height, width = target.shape[-2:]
    if min(height, width) < needed:
        raise ValueError(
            f"{name!r}: the term {term!r} needs images of at least {needed}x{needed} pixels; the "
            f"target is {height}x{width}. Use a larger image (losslab equal --size {needed}) or "
            "a lighter setting of that term (e.g. ms_ssim(scales=3) needs 41 px)."
        )
    return target


def _terms_with(criterion: Loss, predicate: Any) -> list[str]:
    return [getattr(m, "term_name", type(m).__name__) for m in criterion.modules()
            if isinstance(m, Loss) and predicate(m)]


def minimum_size(criterion: Loss) -> tuple[int, str]:
    """The smallest image side every term of ``criterion`` accepts, and the term that sets it."""
    needed, term = 1, ""
    for module in criterion.modules():
        size = getattr(module, "min_size", None) if isinstance(module, Loss) else None
        if isinstance(size, int) and size > needed:
            needed, term = size, module.term_name
    return needed, term


def to_unit(images: Tensor, input_range: InputRange) -> Tensor:
    """Map images from ``input_range`` to ``[0, 1]`` (for numbers and figures)."""
    low, high = input_range
    return (images - low) / (high - low)


def from_unit(images: Tensor, input_range: InputRange) -> Tensor:
    """Map images from ``[0, 1]`` to ``input_range``."""
    low, high = input_range
    return images * (high - low) + low


def cosine_rate(step: int, steps: int, floor: float = 0.01) -> float:
    """Step-size factor in ``[floor, 1]``: a cosine from 1 at step 0 to ``floor`` at the end.

    Large early steps cross the image quickly; small late ones settle non-smooth losses (L1)
    to within a fraction of a grey level.
    """
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * step / max(1, steps)))


def loss_value(criterion: Loss, image: Tensor, target: Tensor) -> float:
    """``criterion(image, target)`` as a float, without a graph (``image`` ``(1, C, H, W)``)."""
    with torch.no_grad():
        return float(criterion.evaluate(image, target))


def image_numbers(image: Tensor, target: Tensor, input_range: InputRange,
                  *, with_ssim: bool = False) -> dict[str, float | None]:
    """Pixel RMSE and the colour errors of ``image`` against ``target``, in ``[0, 1]`` units.

    Keys: ``rmse`` (root mean squared pixel difference over all channels), then
    :func:`losslab.metrics.color_errors`'s ``err_red``, ``err_green``, ``err_blue``,
    ``err_luma``, ``err_chroma`` (mean absolute differences) and ``chroma_ratio`` for RGB images
    (``None`` for grey ones); with ``with_ssim``, ``ssim`` (:func:`losslab.metrics.ssim`; needs
    11 px).

    Shape:
        - image, target: ``(1, C, H, W)`` in ``input_range``.
    """
    image, target = to_unit(image.detach(), input_range), to_unit(target.detach(), input_range)
    numbers: dict[str, float | None] = {
        "rmse": float((image.double() - target.double()).square().mean().sqrt())
    }
    if image.shape[1] == 3:
        numbers.update(color_errors(image, target))
    else:
        numbers.update(dict.fromkeys(
            ("err_red", "err_green", "err_blue", "err_luma", "err_chroma", "chroma_ratio")))
    if with_ssim:
        rgb = (lambda x: x) if image.shape[1] == 3 else (lambda x: x.repeat(1, 3, 1, 1))
        numbers["ssim"] = (ssim_metric(rgb(image).float(), rgb(target).float())
                           if min(image.shape[-2:]) >= 11 else None)
    return numbers


def check_steps(steps: int, name: str = "steps") -> int:
    """A positive integer number of optimisation steps."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"{name} must be a positive integer (e.g. 300); got {steps!r}.")
    return steps


def finite_or_raise(images: Tensor, what: str) -> None:
    """Raise ``FloatingPointError`` when synthesis produced NaN/Inf (a diverging loss)."""
    if not bool(torch.isfinite(images).all()):
        raise FloatingPointError(
            f"{what} diverged (NaN/Inf pixels). Lower the step size (lr=...) or check that the "
            "loss has a finite gradient at every image in range."
        )
