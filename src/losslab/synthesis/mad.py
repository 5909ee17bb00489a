"""MAD competition (Wang & Simoncelli, 2008): what one loss misses and the other over-weights.

From a start ``target + noise``, four images: the best and the worst under loss B while loss A
is held at its start value, and the best and the worst under A while B is held. A pair that B
ranks far apart while A calls them equal shows what A is blind to (and B cares about).

Algorithm (ours, after the paper's section 2): gradient steps on the held loss's level set.
Each step takes the moved loss's gradient, removes its component along the held loss's gradient
(so, to first order, the held loss does not change), moves a fixed RMS pixel distance along
what is left (descending for *best*, ascending for *worst*; the distance follows a cosine from
``step_size`` to a hundredth), clamps the pixels to the valid range, then returns to the level
set with Newton steps along the held loss's gradient (``x -= (A(x) - A0) g / |g|^2``, only on
pixels that are not pinned at a bound) until the held loss is within ``tolerance`` of its start
value. The reported numbers say how close each image ended.

Why not plenoptic's ``MADCompetition``: it holds the reference loss by a soft penalty
``lambda (A(x) - A0)^2`` whose weight must be tuned per loss pair (its automatic choice is a
power of ten from one random image), so "held" drifts by an amount that depends on that weight;
it keeps pixels in range by another soft penalty, so images leave ``[0, 1]``; it takes
``metric(target, image)`` (losslab's order is ``loss(image, target)``) and knows nothing of
``input_range``. The level-set projection above holds A to a set tolerance and keeps every
pixel in range exactly. A test runs both on the same case (``mse`` held, ``ssim`` moved) and
checks that ours moves SSIM at least as far while holding MSE tighter.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from losslab.losses import Loss
from losslab.synthesis._common import (
    InputRange,
    check_steps,
    check_target,
    cosine_rate,
    criterion_from,
    finite_or_raise,
    image_numbers,
    to_unit,
)

#: The four MAD images: key -> (held loss, moved loss, direction). "best" = lowest loss.
MAD_IMAGES: dict[str, tuple[str, str, str]] = {
    "best_b": ("a", "b", "best"),
    "worst_b": ("a", "b", "worst"),
    "best_a": ("b", "a", "best"),
    "worst_a": ("b", "a", "worst"),
}
DEFAULT_NOISE = 0.1
DEFAULT_STEPS = 200
DEFAULT_STEP_SIZE = 0.01
DEFAULT_TOLERANCE = 1e-3
_NEWTON_STEPS = 10


@dataclass
class MADResult:
    """The four MAD images of losses A and B for one target.

    Attributes:
        spec_a, spec_b: the two losses.
        target: ``(1, C, H, W)`` in ``input_range``.
        start: ``(1, C, H, W)``, the target plus Gaussian noise, clamped to the range.
        images: ``{"best_b", "worst_b", "best_a", "worst_a"}`` -> ``(1, C, H, W)``:
            ``best_b`` is the image B scores lowest while A stays at its start value,
            ``worst_b`` the highest; ``best_a`` / ``worst_a`` the same with the roles swapped.
        numbers: for ``"start"`` and each image: ``loss_a``, ``loss_b`` (each loss's own units),
            ``ratio_a``, ``ratio_b`` (value / the start's value), ``rmse`` and ``ssim`` to the
            target and the colour errors (``[0, 1]`` units).
        noise: standard deviation of the start's noise, ``[0, 1]`` units.
        steps, step_size, tolerance, seed, seconds, input_range, device: settings and cost.
    """

    spec_a: str
    spec_b: str
    target: Tensor
    start: Tensor
    images: dict[str, Tensor]
    numbers: dict[str, dict[str, float | None]]
    noise: float
    steps: int
    step_size: float
    tolerance: float
    seed: int
    seconds: float
    input_range: InputRange = (0.0, 1.0)
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)

    def label(self, key: str) -> str:
        """A caption for one image: ``"mse held, best for ssim"``."""
        held, moved, direction = MAD_IMAGES[key]
        specs = {"a": self.spec_a, "b": self.spec_b}
        return f"{specs[held]} held, {direction} for {specs[moved]}"

    def to_dict(self) -> dict[str, Any]:
        """Every number and setting, JSON-ready (no images)."""
        return {
            "spec_a": self.spec_a,
            "spec_b": self.spec_b,
            "image_size": list(self.target.shape[-2:]),
            "channels": int(self.target.shape[1]),
            "input_range": list(self.input_range),
            "noise": self.noise,
            "steps": self.steps,
            "step_size": self.step_size,
            "tolerance": self.tolerance,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "device": self.device,
            "images": {key: {"label": self.label(key), **self.numbers[key]} for key in MAD_IMAGES},
            "start": dict(self.numbers["start"]),
            "notes": list(self.notes),
        }


def _value_and_gradient(criterion: Loss, image: Tensor, target: Tensor) -> tuple[float, Tensor]:
    with torch.enable_grad():
        pixels = image.detach().requires_grad_(True)
        value = criterion.evaluate(pixels, target)
        (gradient,) = torch.autograd.grad(value, pixels)
    return float(value.detach()), gradient


def _free(image: Tensor, step: Tensor, low: float, high: float) -> Tensor:
    """Mask of coordinates where moving by ``-step`` stays in the box (pinned ones are 0)."""
    pinned = ((image <= low) & (step > 0)) | ((image >= high) & (step < 0))
    return (~pinned).to(image.dtype)


def _hold(criterion: Loss, image: Tensor, target: Tensor, level: float, tolerance: float,
          low: float, high: float) -> Tensor:
    """Newton steps along the gradient back to ``criterion == level`` (within ``tolerance``)."""
    for _ in range(_NEWTON_STEPS):
        value, gradient = _value_and_gradient(criterion, image, target)
        error = value - level
        if abs(error) <= tolerance * abs(level):
            break
        direction = gradient * _free(image, error * gradient, low, high)
        norm = float(direction.square().sum())
        if norm == 0.0:
            break
        image = (image - (error / norm) * direction).clamp(low, high)
    return image


def _search(held: Loss, moved: Loss, start: Tensor, target: Tensor, *, best: bool, steps: int,
            step_size: float, tolerance: float, span: InputRange) -> Tensor:
    low, high = span
    level = float(held.evaluate(start, target).detach())
    image = start.clone()
    sign = 1.0 if best else -1.0
    for step in range(steps):
        _, moved_gradient = _value_and_gradient(moved, image, target)
        _, held_gradient = _value_and_gradient(held, image, target)
        free = _free(image, sign * moved_gradient, low, high)
        moved_gradient, held_gradient = moved_gradient * free, held_gradient * free
        held_norm = float(held_gradient.square().sum())
        direction = moved_gradient
        if held_norm > 0:
            direction = direction - (
                float((moved_gradient * held_gradient).sum()) / held_norm) * held_gradient
        rms = float(direction.square().mean().sqrt())
        if rms == 0.0:
            break  # the moved loss is stationary on the level set
        distance = step_size * (high - low) * cosine_rate(step, steps)
        image = (image - sign * (distance / rms) * direction).clamp(low, high)
        image = _hold(held, image, target, level, tolerance, low, high)
    return image.detach()


def mad(
    spec_a: str | Loss,
    spec_b: str | Loss,
    target: Tensor,
    noise: float = DEFAULT_NOISE,
    steps: int = DEFAULT_STEPS,
    *,
    step_size: float = DEFAULT_STEP_SIZE,
    tolerance: float = DEFAULT_TOLERANCE,
    start: Tensor | None = None,
    seed: int = 0,
    input_range: Iterable[float] | None = None,
    device: str | torch.device | None = None,
) -> MADResult:
    """The four MAD-competition images of losses A and B around ``target``.

    Args:
        spec_a, spec_b: loss specs or built losses (no adversarial terms), both declared for
            the same ``input_range``.
        target: one image ``(C, H, W)`` or ``(1, C, H, W)`` in ``input_range``.
        noise: standard deviation of the Gaussian noise added to the target for the start, in
            ``[0, 1]`` units (scaled to the range's span); the start is clamped to the range.
        steps: steps per image (four searches of ``steps`` each).
        step_size: RMS pixel change of the first step in ``[0, 1]`` units (cosine-decayed).
        tolerance: how close the held loss must return to its start value, relative.
        start: an explicit start image (same shape as the target) instead of target + noise.
        seed: seed of the noise.
        input_range: the images' range (default: the losses', ``(0, 1)`` for specs).
        device: where to compute (default: the target's device).

    Returns:
        a :class:`MADResult`; ``result.images["worst_b"]``, ``result.numbers["worst_b"]``.

    Raises:
        ValueError: adversarial terms, images too small or grey for a colour loss, losses with
            different ranges, ``noise`` not in ``(0, 1]`` (the start must differ from the target:
            at the target both losses are at their minimum and there is nothing to hold).
    """
    steps = check_steps(steps)
    for name, value, top in (("noise", noise, 1.0), ("step_size", step_size, 1.0),
                             ("tolerance", tolerance, 0.5)):
        if not (isinstance(value, (int, float)) and 0 < value <= top):
            raise ValueError(f"{name} must be a number in (0, {top:g}]; got {value!r}.")
    loss_a, name_a, span = criterion_from(spec_a, input_range, "spec_a")
    loss_b, name_b, span_b = criterion_from(spec_b, input_range, "spec_b")
    if span != span_b:
        raise ValueError(f"spec_a and spec_b must share one input_range; got {span} and {span_b}. "
                         "Build both for the range of your images.")
    target = check_target(target, loss_a, name_a)
    target = check_target(target, loss_b, name_b)
    if device is not None:
        target = target.to(device)
    target = target.detach()
    loss_a, loss_b = loss_a.to(target.device), loss_b.to(target.device)
    low, high = span
    if start is None:
        generator = torch.Generator().manual_seed(seed)
        perturbation = torch.randn(target.shape, generator=generator).to(target)
        start = (target + noise * (high - low) * perturbation).clamp(low, high)
    else:
        start = start.unsqueeze(0) if start.dim() == 3 else start
        if start.shape != target.shape:
            raise ValueError(f"start has shape {tuple(start.shape)}; it must match the target "
                             f"{tuple(target.shape)}.")
        start = start.detach().to(target)
    with torch.no_grad():  # full checks once; the start must not already be a minimum of A or B
        start_values = {"a": float(loss_a(start, target)), "b": float(loss_b(start, target))}
    for key, value in start_values.items():
        if value <= 0:
            raise ValueError(
                f"the start already scores 0 under {(name_a, name_b)[key == 'b']!r}: there is no "
                "level to hold. Add noise (noise > 0) or give a start that differs from the target."
            )
    losses = {"a": loss_a, "b": loss_b}
    began = time.perf_counter()
    images = {
        key: _search(losses[held], losses[moved], start, target, best=direction == "best",
                     steps=steps, step_size=float(step_size), tolerance=float(tolerance), span=span)
        for key, (held, moved, direction) in MAD_IMAGES.items()
    }
    if target.device.type == "cuda":
        torch.cuda.synchronize(target.device)
    seconds = time.perf_counter() - began
    for key, image in images.items():
        finite_or_raise(image, f"the MAD image {key!r}")
    numbers: dict[str, dict[str, float | None]] = {}
    for key, image in {"start": start, **images}.items():
        with torch.no_grad():
            values = {"a": float(loss_a.evaluate(image, target)),
                      "b": float(loss_b.evaluate(image, target))}
        row: dict[str, float | None] = {
            "loss_a": values["a"], "loss_b": values["b"],
            "ratio_a": values["a"] / start_values["a"], "ratio_b": values["b"] / start_values["b"],
        }
        row.update(image_numbers(image, target, span, with_ssim=True))
        numbers[key] = row
    return MADResult(
        spec_a=name_a, spec_b=name_b, target=target, start=start, images=images, numbers=numbers,
        noise=float(noise), steps=steps, step_size=float(step_size), tolerance=float(tolerance),
        seed=seed, seconds=seconds, input_range=span, device=str(target.device),
    )


def unit_images(result: MADResult) -> dict[str, Tensor]:
    """``{"target", "start", key...}`` mapped to ``[0, 1]`` on the CPU (for figures)."""
    images = {"target": result.target, "start": result.start, **result.images}
    return {key: to_unit(image.detach(), result.input_range).clamp(0, 1).cpu()
            for key, image in images.items()}
