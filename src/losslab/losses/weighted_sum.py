"""Weighted sums of loss terms (``a + 0.01 * b``, or a spec string): the training objective.

:class:`WeightedSum` is the one place where terms meet: it applies each term's weight and
schedule (:mod:`losslab.losses.schedule`), sets ``@share`` weights from measured gradient shares
(:mod:`losslab.losses.share`), hands the per-step :class:`~losslab.losses.context.LossContext` to
the terms that read it, keeps every term's last value for logging, and names the term when the
total is NaN/Inf.

It also takes *samples*: called with ``(N, m, C, H, W)`` draws of a stochastic model and an
``(N, C, H, W)`` target, sample-based terms (proper scoring rules, ``Loss.sample_based``) get the
samples, and every other term scores each draw against the target (the samples folded to
``(N*m, C, H, W)``, the target repeated), so ``mse + energy_score`` means "each draw close to the
target, and the draws distributed as the targets are".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from losslab.core.distributed import mean_across_processes
from losslab.core.validation import InputRange, check_pair_values
from losslab.losses.base import Loss
from losslab.losses.context import LossContext, as_context
from losslab.losses.schedule import CONSTANT, WeightSchedule
from losslab.losses.share import check_share_targets, share_multipliers, smooth_norms

_Part = tuple[float, Loss, WeightSchedule]


def _as_parts(loss: Loss) -> list[_Part]:
    return [(part.weight, part.term, part.schedule) for part in weighted_terms(loss)]


def add_losses(first: Loss, second: Loss) -> WeightedSum:
    """``first + second`` as one flat sum (the parts of sums are concatenated)."""
    return WeightedSum._from_parts(_as_parts(first) + _as_parts(second))


def scale_loss(loss: Loss, weight: float) -> WeightedSum:
    """``weight * loss`` as a sum (every part's weight multiplied)."""
    return WeightedSum._from_parts([(weight * w, t, s) for w, t, s in _as_parts(loss)])


def fold_samples(samples: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """``(N, m, C, H, W)`` draws and an ``(N, C, H, W)`` target -> two ``(N*m, C, H, W)``
    tensors (the target repeated once per draw), so an image loss scores every draw."""
    draws = samples.shape[1]
    repeated = target.unsqueeze(1).expand(-1, draws, -1, -1, -1)
    return samples.flatten(0, 1), repeated.flatten(0, 1)


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
        return self.term.judged_by_discriminator


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
        - prediction, target: ``(N, C, H, W)`` in the declared input range; or, when a term is
          sample-based, prediction ``(N, m, C, H, W)`` samples (see the module docstring).
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

    @property
    def has_sample_terms(self) -> bool:
        """Whether a term scores samples ``(N, m, C, H, W)`` (a proper scoring rule)."""
        return any(term.sample_based for term in self.terms)

    def _pairs(self, prediction: Tensor, target: Tensor, term: Loss) -> tuple[Tensor, Tensor]:
        """What ``term`` is called with: samples as they are for a sample-based term, every
        draw against the target for the others (:func:`fold_samples`)."""
        if prediction.dim() == 5 and not term.sample_based and self.has_sample_terms:
            return fold_samples(prediction, target)
        return prediction, target

    def validate(self, prediction: Tensor, target: Tensor) -> None:
        if prediction.dim() == 5 and not self.has_sample_terms:
            raise ValueError(
                f"got 5-D samples {tuple(prediction.shape)} (N, m, C, H, W), but no term of "
                f"{self.term_name!r} is sample-based: add one (energy_score, crps, "
                "kernel_score), score each draw with fold_samples(samples, target), or wrap "
                "the loss in MultiHypothesisLoss for K hypotheses."
            )
        ranges_checked: set[InputRange] = set()
        for term in self.terms:
            term.check_shapes(*self._pairs(prediction, target, term))
            if term._values_checked() and term.input_range not in ranges_checked:
                self._warn_range_mixup(term.input_range,
                                       *check_pair_values(prediction, target, term.input_range))
                ranges_checked.add(term.input_range)

    def forward(self, prediction: Tensor, target: Tensor,
                context: LossContext | None = None) -> Tensor:
        """The weighted total; ``context`` (:mod:`losslab.losses.context`) is handed to the
        terms that read it (a conditional discriminator's input, the adaptive weight's last
        layer, LDL's EMA prediction)."""
        self.validate(prediction, target)
        return self.evaluate(prediction, target, as_context(context))

    def evaluate_terms(
        self, prediction: Tensor, target: Tensor, context: LossContext | None = None,
    ) -> list[tuple[WeightedTerm, Tensor]]:
        """Each started term's unweighted, graph-connected scalar value, in evaluation order.

        Terms judged by a discriminator go last: each receives the context with
        ``reconstruction`` set to the weighted total of the terms evaluated before it without a
        discriminator (the adaptive adversarial weight reads it), so nothing is computed
        twice. Scheduled terms that have not started are left out (they cost nothing). Inputs
        are not validated here.
        """
        context = as_context(context)
        reconstruction: Tensor | None = None  # weighted sum of the terms without a discriminator
        evaluated: list[tuple[WeightedTerm, Tensor]] = []
        for part in sorted(self.weighted_terms(), key=lambda p: p.judged_by_discriminator):
            if part.waiting:
                continue
            term_context = (replace(context, reconstruction=reconstruction)
                            if part.term.uses_reconstruction else context)
            value = part.term.evaluate(*self._pairs(prediction, target, part.term), term_context)
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

    def evaluate(self, prediction: Tensor, target: Tensor,
                 context: LossContext | None = None) -> Tensor:
        evaluated = self.evaluate_terms(prediction, target, context)
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


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return result


__all__ = ["WeightedSum", "WeightedTerm", "add_losses", "fold_samples", "scale_loss",
           "weighted_terms"]
