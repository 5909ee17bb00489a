"""Loss metamers: images a loss scores as (nearly) equal to a target.

:func:`metamers` starts from several images (noise, a blurred copy, another photo) and descends
the loss alone, with the pixels as parameters, until the loss is a small fraction of its value
at the start. Whatever the loss does not measure is left as the start had it:

- ``mse``, ``l1``: the target itself, from any start;
- ``l1(luma)``: the target's brightness with the start's colours;
- ``l1(red)``: the target's red channel with the start's green and blue;
- ``ssim``: the target up to what a local-statistics comparison ignores;
- random-VGG ``perceptual`` terms: whatever those features ignore;
- ``gdl``, ``gmsd``, ``ms_gmsd``, ``haarpsi`` (gradient or wavelet *magnitudes*): the target
  up to folds and offsets (an edge of either sign costs nothing). Plain descent keeps the sign
  each edge has in the start and, from noise, a blur or another photo, stops in local minima at
  up to 22 % (gdl) and 14 % (gmsd) of the start's loss, whatever the step size or budget.
  These losses declare ``edge_sign_blind``, and by default (``continuation="auto"``) they are
  descended with a continuation over scale: the loss of blurred copies of both images first,
  from the coarsest blur the image allows (a third of its side) down to none, and the whole
  schedule three times from step size 0.1, halved per cycle, each start keeping its best end.
  That settles the sign of every large region before the fine edges appear (numbers in
  docs/synthesis.md). Every other loss is descended plainly.

Optimiser: Adam on the pixels, loss divided by its start value (so one step size suits every
loss scale), step size on a cosine from ``lr`` to ``lr / 100``, pixels clamped to the range
after every step (see :mod:`losslab.synthesis._common` for why projection, not a sigmoid).
Adam's step is per pixel and channel; for a luma loss the three channels of a pixel receive
gradients in the fixed ratio of the luma weights, so Adam moves them by the same amount: the
step is grey and leaves Cb and Cr (the start's colour) exactly as they were, until a channel
reaches 0 or 1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from losslab.core.filters import gaussian_blur_matrix
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
#: Initial step size of the automatic schedule for losses blind to edge signs: the full-size
#: steps of the first cycle are what moves whole regions out of a fold (at 0.05, ``ms_gmsd``
#: from noise stays at 11-12 % for two of three seeds; at 0.1 every start ends below 0.3 %).
EDGE_SIGN_BLIND_LR = 0.1
#: Default share of the steps over which a ``continuation`` blur shrinks to nothing.
DEFAULT_CONTINUATION_SHARE = 2 / 3
#: Cycles of the automatic schedule for losses blind to edge signs (``edge_sign_blind`` terms:
#: ``gdl``, ``gmsd``, ``ms_gmsd``, ``haarpsi``); every other loss gets one plain descent.
EDGE_SIGN_BLIND_CYCLES = 3
#: Each cycle starts at this factor times the previous cycle's step size: the first cycle's
#: full-size steps move whole regions out of a fold, later cycles start from a near-metamer,
#: and a start close to the target needs a step below its distance (docs/synthesis.md).
#: Measured at 128 px (worst of five starts, % of the start's loss): ``gdl`` on the coffee
#: target 1.9 % with factors 1, 1, 0.4, 1.0 % with halving; ``ms_gmsd`` 12 % at 0.05 in every
#: cycle, 0.13 % with 0.1 halved.
CYCLE_LR_DECAY = 0.5
#: Values of ``continuation`` besides a sigma: ``"auto"`` (the default: ``"max"`` with
#: :data:`EDGE_SIGN_BLIND_CYCLES` cycles for a loss with an ``edge_sign_blind`` term, off for
#: every other loss), ``"max"`` (the coarsest blur the image allows), ``"off"`` (as ``None``).
CONTINUATION_WORDS = ("auto", "max", "off")
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
        steps, lr, seed: the optimisation settings (``steps`` per cycle).
        continuation, continuation_share: the continuation over scale actually used (its
            starting sigma in pixels; ``None``: off).
        cycles: how many times the schedule ran (each start keeps its best cycle end).
        cycle_ratios: per start, the plain loss / start loss at the end of each cycle.
        seconds: wall-clock time of the optimisation (all starts, all cycles).
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
    cycles: int = 1
    cycle_ratios: list[list[float | None]] = field(default_factory=list)

    def schedule(self) -> str:
        """The optimisation in words: ``"300 steps"``, ``"2 x 300 steps, blur 42->0 px"``."""
        steps = f"{self.cycles} x {self.steps} steps" if self.cycles > 1 else f"{self.steps} steps"
        if self.continuation is None:
            return steps
        return f"{steps}, blur {self.continuation:.3g}->0 px"

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
            "cycles": self.cycles,
            "seconds": round(self.seconds, 3),
            "device": self.device,
            "starts": {name: {**numbers, "cycle_loss_ratios": ratios}
                       for name, numbers, ratios in zip(
                           self.start_names, self.numbers,
                           self.cycle_ratios or [[n["loss_ratio"]] for n in self.numbers],
                           strict=True)},
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


def largest_sigma(height: int, width: int) -> float:
    """The coarsest continuation blur (pixels) for an ``height x width`` image: ``(min - 1) / 3``.

    The blur's reflect padding needs its radius (3 sigma) below the image side; at this sigma
    the blurred images keep only their coarsest structure (a third of the image), which is where
    the sign of each large region gets settled.
    """
    return (min(height, width) - 1) / 3


def resolve_schedule(
    criterion: Loss, continuation: float | str | None, cycles: int | None, size: tuple[int, int],
    lr: float | None = None,
) -> tuple[float | None, int, float]:
    """The continuation sigma (pixels, ``None`` = off), cycles and initial step size used.

    ``continuation="auto"`` (with ``cycles=None``, ``lr=None``) chooses by the loss: a loss with
    an ``edge_sign_blind`` term (it compares only gradient or wavelet magnitudes: ``gdl``,
    ``gmsd``, ``ms_gmsd``, ``haarpsi``) gets the coarsest blur (:func:`largest_sigma`),
    :data:`EDGE_SIGN_BLIND_CYCLES` cycles and step size :data:`EDGE_SIGN_BLIND_LR`; every other
    loss plain descent in one cycle at :data:`DEFAULT_LR`. An explicit ``continuation`` (a
    sigma, ``"max"``, ``"off"``/``None``/0), ``cycles`` or ``lr`` overrides its part of the
    choice. A sigma above :func:`largest_sigma` is used as that.

    Raises:
        ValueError: ``continuation`` is neither a sigma >= 0 nor one of
            :data:`CONTINUATION_WORDS`; ``cycles`` is not a positive integer; ``lr`` is not in
            ``(0, 1]``.
    """
    if lr is not None and not (isinstance(lr, (int, float)) and not isinstance(lr, bool)
                               and 0 < lr <= 1):
        raise ValueError(f"lr is a step in [0, 1] pixel units, in (0, 1]; got {lr!r}.")
    sigma, cycles, blind = _resolve_continuation(criterion, continuation, cycles, size)
    if lr is None:
        lr = EDGE_SIGN_BLIND_LR if blind else DEFAULT_LR
    return sigma, cycles, float(lr)


def _resolve_continuation(
    criterion: Loss, continuation: float | str | None, cycles: int | None, size: tuple[int, int],
) -> tuple[float | None, int, bool]:
    """``resolve_schedule`` without the step size; the flag says "the automatic schedule"."""
    if cycles is not None:
        cycles = check_steps(cycles, "cycles")
    largest = largest_sigma(*size)
    word = continuation.strip().lower() if isinstance(continuation, str) else None
    is_sigma = (isinstance(continuation, (int, float)) and not isinstance(continuation, bool)
                and continuation >= 0)
    if not (continuation is None or is_sigma or word in CONTINUATION_WORDS):
        raise ValueError(
            f"continuation is a starting blur sigma in pixels (>= 0), one of "
            f"{', '.join(map(repr, CONTINUATION_WORDS))}, or None (off); got {continuation!r}."
        )
    if word == "auto":
        if any(getattr(module, "edge_sign_blind", False) for module in criterion.modules()):
            return largest, cycles or EDGE_SIGN_BLIND_CYCLES, True
        return None, cycles or 1, False
    if word == "max":
        sigma: float | None = largest
    elif is_sigma and continuation:
        sigma = min(float(continuation), largest)  # type: ignore[arg-type]
    else:  # None, 0, "off"
        sigma = None
    if sigma is not None and sigma < _MIN_SIGMA:
        sigma = None
    return sigma, cycles or 1, False


def _descend(
    criterion: Loss, images: Tensor, target: Tensor, scales: Sequence[float], *, steps: int,
    lr: float, span: InputRange, sigma: float | None, share: float,
) -> Tensor:
    """One cycle: Adam on the pixels of every start from ``images``; returns the new images.

    The loss of start ``k`` is divided by ``scales[k]`` (its value at the original start).
    The step size follows a cosine from ``lr`` to ``lr / 100`` (in ``[0, 1]`` units, scaled to
    the range's span); with ``sigma`` the first ``share`` of the steps see blurred copies of
    both images (:func:`continuation_sigma`). Pixels are clamped to ``span`` after every step.
    """
    low, high = span
    pixels = images.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([pixels], lr=lr * (high - low))
    height, width = images.shape[-2:]
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * (high - low) * cosine_rate(step, steps)
        optimizer.zero_grad(set_to_none=True)
        blur = continuation_sigma(step, steps, sigma, share)
        if blur >= _MIN_SIGMA:
            # Blurring both images is linear and keeps constants, so values stay in range. As
            # two small matrix products (the same blur as core.filters.gaussian_blur): at the
            # coarsest sigma the window has 6 sigma + 1 taps, 50x slower as convolutions.
            rows = gaussian_blur_matrix(height, blur, dtype=pixels.dtype, device=pixels.device)
            columns = (rows if width == height else gaussian_blur_matrix(
                width, blur, dtype=pixels.dtype, device=pixels.device)).T
            seen, seen_target = rows @ pixels @ columns, rows @ target @ columns
        else:
            seen, seen_target = pixels, target
        total = sum(criterion.evaluate(seen[k : k + 1], seen_target) / scales[k]
                    for k in range(len(scales)))
        total.backward()  # type: ignore[union-attr]
        optimizer.step()
        with torch.no_grad():
            pixels.clamp_(low, high)  # projection onto the valid range
    return pixels.detach()


def metamers(
    spec: str | Loss,
    target: Tensor,
    starts: Sequence[str | Tensor] | Mapping[str, str | Tensor] = DEFAULT_STARTS,
    steps: int = DEFAULT_STEPS,
    *,
    lr: float | None = None,
    seed: int = 0,
    input_range: Iterable[float] | None = None,
    device: str | torch.device | None = None,
    continuation: float | str | None = "auto",
    continuation_share: float = DEFAULT_CONTINUATION_SHARE,
    cycles: int | None = None,
) -> MetamerResult:
    """Synthesise images that ``spec`` scores as equal to ``target``, one per start.

    Each start is optimised by Adam on ``loss(image, target) / loss(start, target)`` for
    ``steps`` steps, with the pixels clamped to ``input_range`` after each step (module
    docstring). The starts do not interact (each has its own loss term and the loss is
    evaluated per image), so any loss that works on one image works here. Losses that compare
    only gradient or wavelet magnitudes (``gdl``, ``gmsd``, ``ms_gmsd``, ``haarpsi``) are
    descended by default with a continuation over scale from the coarsest blur, in three cycles
    (``continuation="auto"``): plain descent stops in edge-sign minima at up to 22 % of the
    start's loss (docs/synthesis.md).

    Args:
        spec: a loss spec (``"l1(luma)"``, ``"mse + 0.01*perceptual(weights=random)"``) or a
            built :class:`~losslab.losses.Loss`. Adversarial terms are rejected.
        target: one image ``(C, H, W)`` or ``(1, C, H, W)``, ``C`` = 3 (RGB) or 1 (grey), in
            ``input_range``.
        starts: start names (``"noise"``, ``"blur"``, ``"photo"``, ``"photo:coffee"``, see
            :func:`losslab.synthesis.images.make_start`), image tensors of the target's shape
            in ``input_range``, or a dict ``{name: name_or_tensor}``.
        steps: optimisation steps per cycle (the same for every start).
        lr: initial step size in ``[0, 1]`` pixel units (scaled to the range's span), decayed
            on a cosine to a hundredth in every cycle (each cycle starts at half the previous
            one's). ``None`` (default): 0.05, or 0.1 with the automatic schedule of a loss
            blind to edge signs (:func:`resolve_schedule`). Adam's first steps move every pixel
            by about ``lr``: for a start already close to the target, use a step below its
            distance (e.g. 0.005 for a start 0.01 away, with ``continuation="off"``), or losses
            on gradient magnitudes (``gdl``, ``gmsd``) flip weak edges and stop far from it
            (docs/synthesis.md).
        seed: seed of the noise start.
        input_range: the images' value range, e.g. ``(-1, 1)`` (default: the loss's, ``(0, 1)``
            for a spec).
        device: where to optimise (default: the target's device).
        continuation: a continuation over scale (graduated non-convexity): during the first
            ``continuation_share`` of each cycle's steps the loss is evaluated on
            Gaussian-blurred copies of both images, ``loss(G_s * x, G_s * target)``, with ``s``
            shrinking geometrically to 0.25 px (:func:`continuation_sigma`); then the plain
            loss. A starting sigma in pixels (capped at :func:`largest_sigma`, a third of the
            image), ``"max"`` (that cap), ``"off"``/``None``/0, or ``"auto"`` (default): ``"max"``
            for a loss with an ``edge_sign_blind`` term, off otherwise
            (:func:`resolve_schedule`). Reported values are always the plain loss.
        continuation_share: share of each cycle's steps in ``(0, 1]`` over which the blur
            shrinks.
        cycles: how many times the whole schedule (continuation, cosine) runs, each cycle
            starting from the previous one's images with a fresh Adam and half the previous
            cycle's step size (:data:`CYCLE_LR_DECAY`); each start keeps the cycle end with the
            lowest plain loss. ``None`` (default): 3 with the automatic continuation, else 1.

    Returns:
        a :class:`MetamerResult` (``result["noise"]["loss_ratio"]``, ``result.metamers``).

    Raises:
        ValueError: an adversarial term; a target smaller than a term's ``min_size``; a grey
            target for a colour view or an RGB feature network; unknown start names; bad
            ``steps``/``lr``/``continuation``/``cycles``.
        FloatingPointError: the optimisation diverged (NaN pixels).

    Example:
        >>> import torch
        >>> target = torch.rand(3, 32, 32)
        >>> result = metamers("l1(red)", target, starts=["noise"], steps=50)
        >>> result["noise"]["err_red"] < result["noise"]["err_green"]
        True
    """
    steps = check_steps(steps)
    if not (isinstance(continuation_share, (int, float)) and 0 < continuation_share <= 1):
        raise ValueError(f"continuation_share is a share of the steps in (0, 1]; "
                         f"got {continuation_share!r}.")
    criterion, name, span = criterion_from(spec, input_range)
    target = check_target(target, criterion, name)
    sigma, cycles, lr = resolve_schedule(criterion, continuation, cycles,
                                         tuple(target.shape[-2:]), lr)
    if device is not None:
        target = target.to(device)
    criterion = criterion.to(target.device)
    target = target.detach()
    names, start_images = _resolve_starts(starts, target, span, seed)
    with torch.no_grad():  # the full checks (shapes, NaN, range) once, on every start
        start_losses = [float(criterion(start_images[k : k + 1], target))
                        for k in range(len(names))]
    # Divide each start's loss by its start value: Adam is scale-free anyway, but this keeps
    # tiny gradients (an L1 mean over 50k pixels) far above Adam's epsilon.
    scales = [value if value > 0 else 1.0 for value in start_losses]

    began = time.perf_counter()
    images = start_images
    kept = start_images.clone()
    kept_losses = [math.inf] * len(names)
    cycle_ratios: list[list[float | None]] = [[] for _ in names]
    for cycle in range(cycles):
        cycle_lr = lr * CYCLE_LR_DECAY**cycle
        images = _descend(criterion, images, target, scales, steps=steps, lr=cycle_lr,
                          span=span, sigma=sigma, share=continuation_share)
        finite_or_raise(images, f"the metamer of {name!r}")
        for k in range(len(names)):
            value = loss_value(criterion, images[k : k + 1], target)
            cycle_ratios[k].append(value / start_losses[k] if start_losses[k] > 0 else None)
            if value < kept_losses[k]:  # a later cycle may end higher: keep the best end
                kept_losses[k] = value
                kept[k] = images[k]
    if target.device.type == "cuda":
        torch.cuda.synchronize(target.device)
    seconds = time.perf_counter() - began
    result_images = kept

    numbers = []
    for k in range(len(names)):
        final = kept_losses[k]
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
        continuation=sigma, continuation_share=float(continuation_share), cycles=cycles,
        cycle_ratios=cycle_ratios,
    )


def unit_images(result: MetamerResult) -> tuple[Tensor, Tensor, Tensor]:
    """``(target, starts, metamers)`` of a result mapped to ``[0, 1]`` on the CPU (for figures)."""
    return tuple(to_unit(x.detach(), result.input_range).clamp(0, 1).cpu()  # type: ignore[return-value]
                 for x in (result.target, result.starts, result.metamers))
