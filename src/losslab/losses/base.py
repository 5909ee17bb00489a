"""The base class of every losslab loss, and weighted composition (``a + 0.01 * b``).

Every loss is an ``nn.Module`` called as ``loss(prediction, target)`` with two image batches of
shape ``(N, C, H, W)``. Each loss declares the value range its inputs use (``input_range``,
``(0, 1)`` by default) and converts internally to what its formula or network needs: pixel,
structural and frequency losses compute in ``[0, 1]`` units whatever the declared range, so a
weight means the same thing for ``[0, 1]`` and ``[-1, 1]`` data.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from losslab.core.distributed import mean_across_processes
from losslab.core.validation import (
    InputRange,
    RangeMixupWarning,
    check_flag,
    check_input_range,
    check_pair,
    check_pair_values,
    range_mixup_message,
    value_checks_enabled,
)
from losslab.losses.share import check_share_targets, share_multipliers, smooth_norms


class Loss(nn.Module):
    """Base class: validate ``(prediction, target)``, map them to ``[0, 1]``, call :meth:`compute`.

    Subclasses implement :meth:`compute` on inputs already mapped to ``[0, 1]`` and may set
    ``required_channels`` / ``min_size`` (checked for free on every call).

    Args:
        input_range: the ``(low, high)`` value range of the inputs, e.g. ``(0, 1)`` or ``(-1, 1)``.
        check_values: run the NaN/Inf and range checks (they synchronise with the device).
            ``None`` follows the global switch :func:`losslab.losses.set_value_checks`.
    """

    registered_name: ClassVar[str] = ""
    required_channels: ClassVar[int | None] = None
    min_size: int | None = None
    #: Terms that need the model's input (conditional discriminators) set this to True.
    uses_condition: ClassVar[bool] = False
    #: Terms whose ``evaluate`` takes ``reconstruction=`` and ``last_layer=`` keyword arguments
    #: (the adaptive adversarial weight); a :class:`WeightedSum` passes both.
    uses_reconstruction: ClassVar[bool] = False
    #: True for terms that compare only the magnitudes of local differences (gradient or
    #: wavelet magnitudes): an edge costs the same with either sign, so images folded along the
    #: target's level sets match exactly, and descent from a far start stops in local minima
    #: of edge-sign patterns. Loss metamers (``losslab.synthesis.metamers``) descend such
    #: losses with a continuation over scale by default (docs/synthesis.md).
    edge_sign_blind: ClassVar[bool] = False
    #: True for losses on *samples*: called as ``loss(samples, target)`` with samples
    #: ``(N, m, C, H, W)`` (m draws of a stochastic model per input) and target
    #: ``(N, C, H, W)`` (proper scoring rules: energy score, CRPS, kernel score).
    sample_based: ClassVar[bool] = False

    def __init__(
        self, *, input_range: Iterable[float] = (0.0, 1.0), check_values: bool | None = None
    ) -> None:
        super().__init__()
        self.input_range: InputRange = check_input_range(input_range)
        self.check_values = check_flag("check_values", check_values, allow_none=True)

    # -- naming ---------------------------------------------------------------------------
    @property
    def term_name(self) -> str:
        """Short name used in logs and tables (the spec text when built from a spec)."""
        return getattr(self, "_term_name", None) or self.registered_name or type(self).__name__

    @term_name.setter
    def term_name(self, value: str) -> None:
        self._term_name = value

    # -- range ----------------------------------------------------------------------------
    def set_input_range(self, input_range: Iterable[float]) -> Loss:
        """Declare the inputs' value range for this loss (and every sub-term); returns self."""
        self.input_range = check_input_range(input_range)
        return self

    def to_unit_range(self, images: Tensor) -> Tensor:
        """Map images from the declared ``input_range`` to ``[0, 1]`` (no-op for ``(0, 1)``)."""
        low, high = self.input_range
        if low == 0.0 and high == 1.0:
            return images
        return (images - low) / (high - low)

    def _values_checked(self) -> bool:
        return value_checks_enabled() if self.check_values is None else self.check_values

    def check_shapes(self, prediction: Tensor, target: Tensor) -> None:
        """Shape, dtype and device checks (free: no device sync); losses may add their own."""
        check_pair(prediction, target, channels=self.required_channels, min_size=self.min_size)

    def validate(self, prediction: Tensor, target: Tensor) -> None:
        """All input checks of this loss: shapes always, values when enabled."""
        self.check_shapes(prediction, target)
        if self._values_checked():
            self._warn_range_mixup(self.input_range,
                                   *check_pair_values(prediction, target, self.input_range))

    def _warn_range_mixup(self, input_range: InputRange, target_min: float, target_max: float) -> None:
        """Warn (once per loss object) when the targets look like ``[0, 1]`` data under a
        declared ``(-1, 1)`` or ``(0, 255)``; see :func:`~losslab.core.validation.range_mixup_message`."""
        if getattr(self, "_range_mixup_warned", False):
            return
        message = range_mixup_message(input_range, target_min, target_max)
        if message is not None:
            self._range_mixup_warned = True
            warnings.warn(f"{self.term_name}: {message}", RangeMixupWarning, stacklevel=4)

    # -- evaluation -----------------------------------------------------------------------
    def forward(self, prediction: Tensor, target: Tensor, condition: Tensor | None = None, *,
                last_layer: Tensor | None = None) -> Tensor:
        """Loss between ``prediction`` and ``target`` (both ``(N, C, H, W)`` in ``input_range``).

        ``condition`` (the model's input) is used only by conditional adversarial terms;
        ``last_layer`` (the generator's last layer weight) only by adaptive adversarial terms,
        through the sum that holds them (:class:`WeightedSum`): every other loss ignores it, so
        a trainer can pass both to any criterion.
        """
        self.validate(prediction, target)
        return self.evaluate(prediction, target, condition)

    def evaluate(self, prediction: Tensor, target: Tensor, condition: Tensor | None = None) -> Tensor:
        """Loss value for inputs that were already validated (used by compositions)."""
        return self.compute(self.to_unit_range(prediction), self.to_unit_range(target))

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        """The loss on inputs in ``[0, 1]``; implemented by every concrete loss."""
        raise NotImplementedError

    # -- composition ----------------------------------------------------------------------
    def __add__(self, other: Any) -> WeightedSum:
        if not isinstance(other, Loss):
            return NotImplemented
        return WeightedSum._from_parts(_as_parts(self) + _as_parts(other))

    def __mul__(self, weight: Any) -> WeightedSum:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            return NotImplemented
        return WeightedSum._from_parts([(float(weight) * w, t, s) for w, t, s in _as_parts(self)])

    __rmul__ = __mul__

    def __radd__(self, other: Any) -> Loss:
        if other == 0:  # lets sum([loss_a, loss_b]) work
            return self
        return NotImplemented


@dataclass(frozen=True)
class WeightSchedule:
    """A multiplier on a term's weight as a function of the training step, and a share target.

    Kinds: ``constant`` (always 1), ``start`` (0 before step ``begin``, then 1) and ``ramp``
    (0 before ``begin``, linear to 1 at ``end``, then 1). Spec syntax: ``0.01*perceptual@start(500)``
    or ``0.01*perceptual@ramp(1000, 2000)``.

    ``share`` (spec ``@share(0.2)``, combinable with either kind: ``@start(500)@share(0.2)``)
    asks the sum to set the term's weight during training so that its share of the gradient at
    the model output tracks ``share * factor(step)``; see :mod:`losslab.losses.share`.
    """

    kind: str = "constant"
    begin: int = 0
    end: int = 0
    share: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "start", "ramp"):
            raise ValueError(
                f"weight schedule must be 'constant', 'start' or 'ramp'; got {self.kind!r}."
            )
        if self.begin < 0 or (self.kind == "ramp" and self.end <= self.begin):
            raise ValueError(
                f"schedule {self.kind}({self.begin}, {self.end}) needs 0 <= begin"
                + (" < end" if self.kind == "ramp" else "")
                + "; e.g. ramp(1000, 2000) or start(500)."
            )
        if self.share is not None and not 0.0 < self.share < 1.0:
            raise ValueError(f"share(...) takes a fraction of the gradient in (0, 1), e.g. "
                             f"share(0.2); got {self.share}.")

    def factor(self, step: int) -> float:
        """Multiplier in ``[0, 1]`` at ``step``."""
        if self.kind == "constant":
            return 1.0
        if step < self.begin:
            return 0.0
        if self.kind == "start":
            return 1.0
        return min(1.0, (step - self.begin) / (self.end - self.begin))

    def render(self) -> str:
        """The spec suffix (``@start(500)``, ``@ramp(1000,2000)@share(0.2)``, ``''``)."""
        share = "" if self.share is None else f"@share({self.share:g})"
        if self.kind == "constant":
            return share
        if self.kind == "start":
            return f"@start({self.begin})" + share
        return f"@ramp({self.begin},{self.end})" + share


CONSTANT = WeightSchedule()
_Part = tuple[float, Loss, WeightSchedule]


def _as_parts(loss: Loss) -> list[_Part]:
    return [(part.weight, part.term, part.schedule) for part in weighted_terms(loss)]


@dataclass(frozen=True)
class WeightedTerm:
    """One term of a :class:`WeightedSum` at the sum's current step.

    ``current = weight * factor * multiplier`` is the weight the sum applies now (written
    weight x schedule factor in ``[0, 1]`` x ``@share`` multiplier, 1 without ``@share``).
    """

    index: int
    name: str
    term: Loss
    weight: float
    schedule: WeightSchedule
    factor: float = 1.0
    multiplier: float = 1.0

    @property
    def current(self) -> float:
        """The effective weight at the current step."""
        return self.weight * self.factor * self.multiplier

    @property
    def waiting(self) -> bool:
        """A scheduled term that has not started (weight 0 now): the sum skips evaluating it."""
        return self.current == 0.0 and self.schedule.kind != "constant"

    @property
    def judged_by_discriminator(self) -> bool:
        """Whether the term reads a discriminator (adversarial, feature matching): such terms
        are evaluated after the others and are not part of the reconstruction total."""
        return _uses_discriminator(self.term)


def weighted_terms(loss: Loss) -> Iterator[WeightedTerm]:
    """The terms of ``loss`` with their weights: a sum's parts (:meth:`WeightedSum.weighted_terms`),
    or the loss itself as one part of weight 1."""
    if isinstance(loss, WeightedSum):
        return loss.weighted_terms()
    return iter([WeightedTerm(0, loss.term_name, loss, 1.0, CONSTANT)])


def _format_weight(weight: float) -> str:
    return f"{weight:g}"


class WeightedSum(Loss):
    """Weighted sum of loss terms: ``total = sum_i weight_i * schedule_i(step) * term_i``.

    Built with ``a + 0.01 * b`` or from a spec string. After each call, :attr:`last_values`
    maps every term's name to its unweighted value (detached, no device sync) for logging.
    When value checks are on and the total is NaN/Inf, the error names the offending term(s).

    Terms with a share target (``@share(0.2)``) get a multiplier ``m_i`` on their weight,
    ``weight_i * schedule_i(step) * m_i``, updated by every call made in training mode with
    gradients (see :mod:`losslab.losses.share`; it costs one gradient of each term w.r.t. the
    prediction per call). The state is in the buffers ``share_norms`` and
    ``share_multipliers`` (present only when a term has a share target).

    Shape:
        - prediction, target: ``(N, C, H, W)`` in the declared input range.
        - output: scalar (every term must reduce to a scalar).
    """

    registered_name = "sum"

    def __init__(
        self,
        terms: Iterable[Loss],
        weights: Iterable[float] | None = None,
        schedules: Iterable[WeightSchedule] | None = None,
    ) -> None:
        terms = list(terms)
        if not terms:
            raise ValueError("a WeightedSum needs at least one loss term.")
        for term in terms:
            if not isinstance(term, Loss):
                raise TypeError(f"every term must be a losslab Loss; got {type(term).__name__}.")
        super().__init__(input_range=terms[0].input_range)
        self.terms = nn.ModuleList(terms)
        self.weights = [1.0] * len(terms) if weights is None else [float(w) for w in weights]
        self.schedules = [CONSTANT] * len(terms) if schedules is None else list(schedules)
        if not (len(self.weights) == len(self.schedules) == len(terms)):
            raise ValueError(
                f"got {len(terms)} terms, {len(self.weights)} weights and "
                f"{len(self.schedules)} schedules; they must match one to one."
            )
        for weight in self.weights:
            if not math.isfinite(weight):
                raise ValueError(f"term weights must be finite numbers; got {weight}.")
        self.step = 0
        self.last_values: dict[str, Tensor] = {}
        self.term_names = _unique_names([term.term_name for term in terms])
        self.share_targets = [s.share for s in self.schedules]
        check_share_targets(self.share_targets, self.term_names)
        if self.has_share_targets:
            self.register_buffer("share_norms", torch.zeros(len(terms), dtype=torch.float64))
            self.register_buffer("share_multipliers", torch.ones(len(terms), dtype=torch.float64))

    @property
    def has_share_targets(self) -> bool:
        """Whether any term's weight is set by gradient share (``@share``)."""
        return any(t is not None for t in self.share_targets)

    def multipliers(self) -> list[float]:
        """The share multiplier ``m_i`` of every term (1 for terms without ``@share``)."""
        if not self.has_share_targets:
            return [1.0] * len(self.terms)
        return [float(m) for m in self.share_multipliers.tolist()]

    def weighted_terms(self) -> Iterator[WeightedTerm]:
        """Every term with its name, written weight, schedule, factor and share multiplier at
        the current step, in spec order: the one loop over the parts that evaluation, logging,
        gradient shares and the multi-hypothesis loss share."""
        multipliers = self.multipliers()
        for index, (name, term, weight, schedule) in enumerate(
                zip(self.term_names, self.terms, self.weights, self.schedules, strict=True)):
            yield WeightedTerm(index, name, term, weight, schedule, schedule.factor(self.step),
                               multipliers[index])  # type: ignore[arg-type]

    @classmethod
    def _from_parts(cls, parts: list[_Part]) -> WeightedSum:
        return cls([t for _, t, _ in parts], [w for w, _, _ in parts], [s for _, _, s in parts])

    @property
    def term_name(self) -> str:
        return " + ".join(
            (f"{_format_weight(part.weight)}*" if part.weight != 1.0 else "") + part.name
            + part.schedule.render() for part in self.weighted_terms()
        )

    @term_name.setter
    def term_name(self, value: str) -> None:  # the composite name is always derived
        pass

    def set_input_range(self, input_range: Iterable[float]) -> WeightedSum:
        super().set_input_range(input_range)
        for term in self.terms:
            term.set_input_range(input_range)
        return self

    def set_step(self, step: int) -> None:
        """Tell the schedules the current training step."""
        self.step = int(step)

    def current_weights(self) -> dict[str, float]:
        """Effective weight of each term at the current step (weight x schedule factor x share
        multiplier)."""
        return {part.name: part.current for part in self.weighted_terms()}

    def validate(self, prediction: Tensor, target: Tensor) -> None:
        ranges_checked: set[InputRange] = set()
        for term in self.terms:
            term.check_shapes(prediction, target)
            if term._values_checked() and term.input_range not in ranges_checked:
                self._warn_range_mixup(term.input_range,
                                       *check_pair_values(prediction, target, term.input_range))
                ranges_checked.add(term.input_range)

    def forward(self, prediction: Tensor, target: Tensor, condition: Tensor | None = None, *,
                last_layer: Tensor | None = None) -> Tensor:
        """The weighted total; ``last_layer`` is handed to adaptive adversarial terms."""
        self.validate(prediction, target)
        return self.evaluate(prediction, target, condition, last_layer=last_layer)

    def evaluate_terms(
        self, prediction: Tensor, target: Tensor, condition: Tensor | None = None, *,
        last_layer: Tensor | None = None,
    ) -> list[tuple[WeightedTerm, Tensor]]:
        """Each started term's unweighted, graph-connected scalar value, in evaluation order.

        Terms judged by a discriminator go last: each term with ``uses_reconstruction`` (the
        adaptive adversarial term) receives the weighted total of the terms evaluated before it
        without a discriminator (``reconstruction=``) and ``last_layer``, so nothing is
        computed twice. Scheduled terms that have not started are left out (they cost
        nothing). Inputs are not validated here.
        """
        reconstruction: Tensor | None = None  # weighted sum of the terms without a discriminator
        evaluated: list[tuple[WeightedTerm, Tensor]] = []
        for part in sorted(self.weighted_terms(), key=lambda p: p.judged_by_discriminator):
            if part.waiting:
                continue
            term = part.term
            cond = condition if term.uses_condition else None
            if term.uses_reconstruction:
                value = term.evaluate(prediction, target, cond,  # type: ignore[call-arg]
                                      reconstruction=reconstruction, last_layer=last_layer)
            else:
                value = term.evaluate(prediction, target, cond)
            if value.dim() != 0:
                raise ValueError(
                    f"term {part.name!r} returned shape {tuple(value.shape)}; terms of a sum must "
                    "reduce to a scalar (use reduction='mean' or 'sum')."
                )
            evaluated.append((part, value))
            if not part.judged_by_discriminator:
                weighted = value * part.current
                reconstruction = weighted if reconstruction is None else reconstruction + weighted
        return evaluated

    def evaluate(self, prediction: Tensor, target: Tensor, condition: Tensor | None = None, *,
                 last_layer: Tensor | None = None) -> Tensor:
        evaluated = self.evaluate_terms(prediction, target, condition, last_layer=last_layer)
        if self.has_share_targets and self.training and torch.is_grad_enabled() \
                and prediction.requires_grad:
            self._update_shares(evaluated, prediction)
        # This call's weights: with @share, the multipliers just set from this call's values.
        weights = [part.current for part in self.weighted_terms()]
        total: Tensor | None = None
        values: dict[str, Tensor] = {}
        weighted_values: dict[str, tuple[float, Tensor]] = {}  # for naming an overflowing term
        for part, value in evaluated:
            weighted = value * weights[part.index]
            values[part.name] = value.detach()
            weighted_values[part.name] = (weights[part.index], weighted.detach())
            total = weighted if total is None else total + weighted
        if total is None:  # every term is scheduled later: a zero that keeps the graph
            total = prediction.sum() * 0.0
        self.last_values = {name: values[name] for name in self.term_names if name in values}
        if self._values_checked() and not bool(torch.isfinite(total)):
            bad = [f"{n!r} = {float(v)}" for n, v in values.items() if not torch.isfinite(v)]
            if not bad:  # each term is finite: its weight (or the sum) overflowed the dtype
                bad = [f"{n!r} = {float(values[n]):.4g} x weight {f:g} = {float(w)}"
                       for n, (f, w) in weighted_values.items() if not torch.isfinite(w)]
            if not bad and weighted_values:  # the sum of finite parts overflowed: the largest
                name, (f, w) = max(weighted_values.items(), key=lambda item: abs(float(item[1][1])))
                bad = [f"{name!r} x weight {f:g} = {float(w):.4g} (largest part of the overflowing sum)"]
            raise FloatingPointError(
                f"loss total is {float(total.detach())}; non-finite term(s): "
                f"{', '.join(bad)}. Lower the learning rate or that term's weight, or check the "
                "inputs."
            )
        return total

    def _measure_norm(self, value: Tensor, prediction: Tensor) -> float:
        """``||d value / d prediction||_2`` (graph kept for the training backward)."""
        (gradient,) = torch.autograd.grad(value, prediction, retain_graph=True, allow_unused=True)
        return 0.0 if gradient is None else float(gradient.float().norm())

    def _update_shares(self, evaluated: list[tuple[WeightedTerm, Tensor]], prediction: Tensor) -> None:
        """Steps 1-3 of :mod:`losslab.losses.share`: measure, smooth, set the multipliers."""
        measured = [0.0] * len(self.terms)
        for part, value in evaluated:
            if value.requires_grad:
                measured[part.index] = self._measure_norm(value, prediction)
        # Every process averages the same measurements, so every rank sets the same weights.
        measured = mean_across_processes(torch.tensor(measured, dtype=torch.float64)).tolist()
        norms = smooth_norms(self.share_norms.tolist(), [n if n > 0 else None for n in measured])
        parts = list(self.weighted_terms())
        multipliers = share_multipliers(norms, [p.weight for p in parts], [p.factor for p in parts],
                                        self.share_targets, [p.multiplier for p in parts])
        self.share_norms.copy_(torch.tensor(norms, dtype=torch.float64))
        self.share_multipliers.copy_(torch.tensor(multipliers, dtype=torch.float64))


def _uses_discriminator(term: Loss) -> bool:
    """Whether a term is judged by a discriminator (adversarial, feature matching)."""
    return bool(getattr(term, "is_adversarial", False) or getattr(term, "uses_discriminator", False))


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return result
