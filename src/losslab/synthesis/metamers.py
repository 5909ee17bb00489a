"""Loss metamers: images a loss scores as (nearly) equal to a target.

:func:`metamers` starts from several images (noise, a blurred copy, another photo) and descends
the loss alone, with the pixels as parameters, until the loss is a small fraction of its value
at the start. Whatever the loss does not measure is left as the start had it:

- ``mse``, ``l1``: the target itself, from any start;
- ``l1(luma)``: the target's brightness with the start's colours;
- ``l1(red)``: the target's red channel with the start's green and blue;
- ``ssim``: the target up to what a local-statistics comparison ignores;
- random-VGG ``perceptual`` terms: whatever those features ignore;
- ``gdl``, ``gmsd`` (gradient *magnitudes*): the target up to folds (an edge of either sign
  costs nothing). Descent keeps the sign each edge has in the start and, from noise, a blur or
  another photo, stops in local minima at up to 22 % (gdl) and 14 % (gmsd) of the start's
  loss (more steps, other step sizes and a pyramid parametrisation do not change that:
  docs/synthesis.md). ``continuation=8`` (descend the loss on blurred copies first, the blur
  shrinking to nothing) brings ``gdl`` from noise and from a blur to 0.7-1.5 % and from
  another photo to about 6 %; it does not fix ``gmsd`` (2.5-22 % from noise, seed-dependent),
  so it is off by default (``continuation=16, lr=0.1``: every start of both within 5 %).

Optimiser: Adam on the pixels, loss divided by its start value (so one step size suits every
loss scale), step size on a cosine from ``lr`` to ``lr / 100``, pixels clamped to the range
after every step (see :mod:`losslab.synthesis._common` for why projection, not a sigmoid).
Adam's step is per pixel and channel; for a luma loss the three channels of a pixel receive
gradients in the fixed ratio of the luma weights, so Adam moves them by the same amount: the
step is grey and leaves Cb and Cr (the start's colour) exactly as they were, until a channel
reaches 0 or 1.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from losslab.core.filters import gaussian_blur
from losslab.losses import Loss
from losslab.synthesis._common import (
    InputRange,
    check_steps,
    check_target,
    cosine_rate,
    criterion_from,
    finite_or_raise,
    image_numbers,
    loss_value,
    to_unit,
)
from losslab.synthesis.images import START_KINDS, make_start

#: Default starts of :func:`metamers`.
DEFAULT_STARTS: tuple[str, ...] = START_KINDS
#: Default number of optimisation steps (pixel and structural losses reach < 1 % of the start
#: value at 128 px with 300: benchmarks/synthesis_targets.py).
DEFAULT_STEPS = 300
#: Default initial step size, in ``[0, 1]`` pixel units per step.
DEFAULT_LR = 0.05
#: Default share of the steps over which a ``continuation`` blur shrinks to nothing.
DEFAULT_CONTINUATION_SHARE = 2 / 3
#: Below this sigma (pixels) the continuation blur is skipped: its 3-tap window would be an
#: identity up to rounding.
_MIN_SIGMA = 0.25


def continuation_sigma(step: int, steps: int, sigma: float | None, share: float) -> float:
    """Blur sigma (pixels) at ``step`` of ``steps`` for a continuation starting at ``sigma``.

    Geometric from ``sigma`` down to ``_MIN_SIGMA`` (0.25 px) over the first ``share * steps``
    steps (equal time per octave of scale: a linear schedule spends most steps at the coarsest
    scales and measured slightly worse for ``gdl``, docs/synthesis.md), then 0.0 (off). Also
    0.0 when continuation is off (``sigma`` None or 0) or ``sigma`` is already below 0.25 px.
    """
    if not sigma or sigma < _MIN_SIGMA:
        return 0.0
    length = share * steps
    if step >= length:
        return 0.0
    return float(sigma) * (_MIN_SIGMA / float(sigma)) ** (step / length)


@dataclass
class MetamerResult:
    """Metamers of one loss for one target, one per start.

    Attributes:
        spec: the loss (spec text or the loss's term name).
        target: ``(1, C, H, W)`` in ``input_range``.
        start_names: one name per start (``"noise"``, ``"blur"``, ``"photo:chelsea"``, ...).
        starts: ``(K, C, H, W)`` start images in ``input_range``.
        metamers: ``(K, C, H, W)`` synthesised images in ``input_range``.
        numbers: one dict per start: ``loss_start``, ``loss_final`` (the loss's own units),
            ``loss_ratio`` (final / start; ``None`` when the start already scores 0), then
            ``rmse`` and the colour errors of the metamer against the target (``[0, 1]`` units,
            see :func:`losslab.synthesis._common.image_numbers`), and ``start_rmse``,
            ``start_err_luma``, ``start_err_chroma`` of the start.
        steps, lr, seed: the optimisation settings.
        continuation, continuation_share: the continuation over scale (``None``: off).
        seconds: wall-clock time of the optimisation (all starts).
        input_range: the range of every image.
        device: where it ran.
    """

    spec: str
    target: Tensor
    start_names: list[str]
    starts: Tensor
    metamers: Tensor
    numbers: list[dict[str, float | None]]
    steps: int
    lr: float
    seed: int
    seconds: float
    input_range: InputRange = (0.0, 1.0)
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)
    continuation: float | None = None
    continuation_share: float = DEFAULT_CONTINUATION_SHARE

    def __getitem__(self, start: str) -> dict[str, float | None]:
        """The numbers of the metamer grown from ``start``."""
        if start not in self.start_names:
            raise KeyError(f"no start {start!r}; starts: {', '.join(self.start_names)}.")
        return self.numbers[self.start_names.index(start)]

    def metamer(self, start: str) -> Tensor:
        """The metamer grown from ``start``, ``(1, C, H, W)`` in ``input_range``."""
        self[start]
        index = self.start_names.index(start)
        return self.metamers[index : index + 1]

    def to_dict(self) -> dict[str, Any]:
        """Every number and setting, JSON-ready (no images)."""
        return {
            "spec": self.spec,
            "image_size": list(self.target.shape[-2:]),
            "channels": int(self.target.shape[1]),
            "input_range": list(self.input_range),
            "steps": self.steps,
            "lr": self.lr,
            "seed": self.seed,
            "continuation": self.continuation,
            "continuation_share": self.continuation_share,
            "seconds": round(self.seconds, 3),
            "device": self.device,
            "starts": {name: dict(numbers)
                       for name, numbers in zip(self.start_names, self.numbers, strict=True)},
            "notes": list(self.notes),
        }


def _resolve_starts(
    starts: Sequence[str | Tensor] | Mapping[str, str | Tensor], target: Tensor,
    input_range: InputRange, seed: int,
) -> tuple[list[str], Tensor]:
    items = list(starts.items()) if isinstance(starts, Mapping) else [
        (item if isinstance(item, str) else f"start{index}", item)
        for index, item in enumerate(starts)
    ]
    if isinstance(starts, str) or not items:
        raise ValueError(
            f"starts must be a non-empty list such as ['noise', 'blur', 'photo'] or a dict "
            f"{{name: image}}; got {starts!r}."
        )
    generator = torch.Generator().manual_seed(seed)
    names, images = [], []
    for name, item in items:
        if isinstance(item, str):
            image = make_start(item, target, input_range, generator=generator)
        elif isinstance(item, Tensor):
            image = item.unsqueeze(0) if item.dim() == 3 else item
            if image.shape != target.shape:
                raise ValueError(
                    f"start {name!r} has shape {tuple(item.shape)}; it must match the target "
                    f"{tuple(target.shape[1:])} (or (1, C, H, W))."
                )
            image = image.detach().to(target.device, target.dtype)
        else:
            raise TypeError(f"start {name!r} must be a start name ({', '.join(START_KINDS)}) or "
                            f"an image tensor; got {type(item).__name__}.")
        if name in names:
            raise ValueError(f"start {name!r} is given twice; give each start once.")
        names.append(name)
        images.append(image)
    return names, torch.cat(images)


def metamers(
    spec: str | Loss,
    target: Tensor,
    starts: Sequence[str | Tensor] | Mapping[str, str | Tensor] = DEFAULT_STARTS,
    steps: int = DEFAULT_STEPS,
    *,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    input_range: Iterable[float] | None = None,
    device: str | torch.device | None = None,
    continuation: float | None = None,
    continuation_share: float = DEFAULT_CONTINUATION_SHARE,
) -> MetamerResult:
    """Synthesise images that ``spec`` scores as equal to ``target``, one per start.

    Each start is optimised by Adam on ``loss(image, target) / loss(start, target)`` for
    ``steps`` steps, with the pixels clamped to ``input_range`` after each step (module
    docstring). The starts do not interact (each has its own loss term and the loss is
    evaluated per image), so any loss that works on one image works here.

    Args:
        spec: a loss spec (``"l1(luma)"``, ``"mse + 0.01*perceptual(weights=random)"``) or a
            built :class:`~losslab.losses.Loss`. Adversarial terms are rejected.
        target: one image ``(C, H, W)`` or ``(1, C, H, W)``, ``C`` = 3 (RGB) or 1 (grey), in
            ``input_range``.
        starts: start names (``"noise"``, ``"blur"``, ``"photo"``, ``"photo:coffee"``, see
            :func:`losslab.synthesis.images.make_start`), image tensors of the target's shape
            in ``input_range``, or a dict ``{name: name_or_tensor}``.
        steps: optimisation steps (the same for every start).
        lr: initial step size in ``[0, 1]`` pixel units (scaled to the range's span), decayed
            on a cosine to a hundredth. Adam's first steps move every pixel by about ``lr``:
            for a start already close to the target, use a step below its distance (e.g.
            0.005 for a start 0.01 away), or losses on gradient magnitudes (``gdl``, ``gmsd``)
            flip weak edges and stop far from it (docs/synthesis.md).
        seed: seed of the noise start.
        input_range: the images' value range, e.g. ``(-1, 1)`` (default: the loss's, ``(0, 1)``
            for a spec).
        device: where to optimise (default: the target's device).
        continuation: starting sigma in pixels of a continuation over scale (graduated
            non-convexity): during the first ``continuation_share`` of the steps the loss is
            evaluated on Gaussian-blurred copies of both images, ``loss(G_s * x, G_s *
            target)``, with ``s`` shrinking geometrically from ``continuation`` to 0.25 px
            (:func:`continuation_sigma`); then the plain loss. ``None`` (default): off. Reported values are always the plain loss.
        continuation_share: share of the steps in ``(0, 1]`` over which the blur shrinks.

    Returns:
        a :class:`MetamerResult` (``result["noise"]["loss_ratio"]``, ``result.metamers``).

    Raises:
        ValueError: an adversarial term; a target smaller than a term's ``min_size``; a grey
            target for a colour view or an RGB feature network; unknown start names; bad
            ``steps``/``lr``.
        FloatingPointError: the optimisation diverged (NaN pixels).

    Example:
        >>> import torch
        >>> target = torch.rand(3, 32, 32)
        >>> result = metamers("l1(red)", target, starts=["noise"], steps=50)
        >>> result["noise"]["err_red"] < result["noise"]["err_green"]
        True
    """
    steps = check_steps(steps)
    if not (isinstance(lr, (int, float)) and 0 < lr <= 1):
        raise ValueError(f"lr is a step in [0, 1] pixel units, in (0, 1]; got {lr!r}.")
    if continuation is not None and not (isinstance(continuation, (int, float))
                                         and continuation >= 0):
        raise ValueError(f"continuation is a starting blur sigma in pixels, >= 0, or None (off); "
                         f"got {continuation!r}.")
    if not (isinstance(continuation_share, (int, float)) and 0 < continuation_share <= 1):
        raise ValueError(f"continuation_share is a share of the steps in (0, 1]; "
                         f"got {continuation_share!r}.")
    criterion, name, span = criterion_from(spec, input_range)
    target = check_target(target, criterion, name)
    if device is not None:
        target = target.to(device)
    criterion = criterion.to(target.device)
    target = target.detach()
    names, start_images = _resolve_starts(starts, target, span, seed)
    low, high = span
    with torch.no_grad():  # the full checks (shapes, NaN, range) once, on every start
        start_losses = [float(criterion(start_images[k : k + 1], target))
                        for k in range(len(names))]
    # Divide each start's loss by its start value: Adam is scale-free anyway, but this keeps
    # tiny gradients (an L1 mean over 50k pixels) far above Adam's epsilon.
    scales = [value if value > 0 else 1.0 for value in start_losses]

    pixels = start_images.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([pixels], lr=lr * (high - low))
    began = time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * (high - low) * cosine_rate(step, steps)
        optimizer.zero_grad(set_to_none=True)
        sigma = continuation_sigma(step, steps, continuation, continuation_share)
        # The blur's reflect padding needs a radius (3 sigma) below the image size.
        sigma = min(sigma, (min(target.shape[-2:]) - 1) / 3)
        if sigma >= _MIN_SIGMA:
            # Blurring both images is linear and keeps constants, so values stay in range.
            seen, seen_target = gaussian_blur(pixels, sigma), gaussian_blur(target, sigma)
        else:
            seen, seen_target = pixels, target
        total = sum(criterion.evaluate(seen[k : k + 1], seen_target) / scales[k]
                    for k in range(len(names)))
        total.backward()  # type: ignore[union-attr]
        optimizer.step()
        with torch.no_grad():
            pixels.clamp_(low, high)  # projection onto the valid range
    if target.device.type == "cuda":
        torch.cuda.synchronize(target.device)
    seconds = time.perf_counter() - began
    result_images = pixels.detach()
    finite_or_raise(result_images, f"the metamer of {name!r}")

    numbers = []
    for k in range(len(names)):
        final = loss_value(criterion, result_images[k : k + 1], target)
        row: dict[str, float | None] = {
            "loss_start": start_losses[k],
            "loss_final": final,
            "loss_ratio": final / start_losses[k] if start_losses[k] > 0 else None,
        }
        row.update(image_numbers(result_images[k : k + 1], target, span))
        start_row = image_numbers(start_images[k : k + 1], target, span)
        row.update({f"start_{key}": start_row[key] for key in ("rmse", "err_luma", "err_chroma")})
        numbers.append(row)
    return MetamerResult(
        spec=name, target=target, start_names=names, starts=start_images,
        metamers=result_images, numbers=numbers, steps=steps, lr=float(lr), seed=seed,
        seconds=seconds, input_range=span, device=str(target.device),
        continuation=float(continuation) if continuation else None,
        continuation_share=float(continuation_share),
    )


def unit_images(result: MetamerResult) -> tuple[Tensor, Tensor, Tensor]:
    """``(target, starts, metamers)`` of a result mapped to ``[0, 1]`` on the CPU (for figures)."""
    return tuple(to_unit(x.detach(), result.input_range).clamp(0, 1).cpu()  # type: ignore[return-value]
                 for x in (result.target, result.starts, result.metamers))
