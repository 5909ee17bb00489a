"""Winner-takes-all training for models that return ``K`` hypotheses ``(N, K, C, H, W)``.

With several plausible targets for one input, a single-output model trained with MSE predicts
their mean. Winner-takes-all (WTA) applies the loss only to each sample's best hypothesis, so the
``K`` hypotheses spread over the modes (a Voronoi tessellation of the targets). Relaxed WTA
(Rupprecht et al., "Learning in an Uncertain World: Representing Ambiguity Through Multiple
Hypotheses", ICCV 2017) gives the best hypothesis weight ``1 - epsilon`` and every other one
``epsilon / (K - 1)``, so a hypothesis that never wins still moves towards the data instead of
staying dead. Both are the default here (``mode="relaxed"``, ``epsilon=0.05``).

Two assignments change the weights with the training step, so that every hypothesis first
learns the mean of the answers and the hypotheses split later (a hypothesis that starts far from
every answer never wins a hard WTA and stays dead; one that wins everything early stays a smear):

- ``annealed`` (annealed multiple-choice learning, Perera et al., "Annealed Multiple Choice
  Learning: Overcoming limitations of Winner-takes-all with annealing", NeurIPS 2024): soft
  weights ``softmax_k(-L[n, k] / T)`` (a Boltzmann soft-min of the losses) with a temperature
  ``T(step)`` that falls from ``temperature`` to ``temperature_end`` over ``steps`` steps
  (:func:`annealing_temperature`). ``T -> inf`` gives every hypothesis ``1/K`` (all learn the
  mean), ``T -> 0`` is hard WTA. ``T`` is in the units of the base loss (for MSE on ``[0, 1]``
  images per-image losses are about 1e-3 to 1e-1).
- ``evolving`` (evolving WTA, Makansi et al., "Overcoming Limitations of Mixture Density
  Networks: A Sampling and Fitting Framework for Multimodal Future Prediction", CVPR 2019): the
  ``k`` best hypotheses of each sample share the loss equally (``1/k`` each, the others 0), with
  ``k`` falling from ``K`` to 1 in equal stages over ``steps`` steps (:func:`evolving_top_k`).

The weights are computed from detached losses (choosing the winner is not differentiated).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, get_args

import torch
from torch import Tensor

from losslab.core.validation import (
    Reduction,
    check_choice,
    check_image,
    check_reduction,
    reduce,
)
from losslab.losses.base import Loss
from losslab.losses.context import LossContext, as_context
from losslab.losses.weighted_sum import WeightedSum, fold_samples, weighted_terms

WTAMode = Literal["relaxed", "wta"]
Assignment = Literal["relaxed", "annealed", "evolving"]
TemperatureSchedule = Literal["exponential", "linear"]


def _check_epsilon(epsilon: float) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not 0.0 <= epsilon < 1.0:
        raise ValueError(
            f"epsilon must be a number in [0, 1) (the total weight of the non-best hypotheses, "
            f"e.g. 0.05); got {epsilon!r}."
        )
    return float(epsilon)


def _check_per_hypothesis(losses: Tensor) -> None:
    if not isinstance(losses, Tensor) or losses.dim() != 2:
        shape = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
        raise ValueError(
            f"per-hypothesis losses must be a (N, K) tensor (samples x hypotheses); got {shape}."
        )
    if losses.shape[1] < 1:
        raise ValueError("per-hypothesis losses need at least one hypothesis (K >= 1); got K = 0.")


def winner_takes_all_weights(
    losses: Tensor, mode: WTAMode = "relaxed", epsilon: float = 0.05
) -> Tensor:
    """Weights ``(N, K)`` that WTA gives each sample's hypotheses; every row sums to 1.

    ``mode="wta"``: 1 for the hypothesis with the lowest loss, 0 for the others.
    ``mode="relaxed"``: ``1 - epsilon`` for the best, ``epsilon / (K - 1)`` for each other one
    (for ``K = 1`` the single hypothesis gets 1). Ties go to the lowest index. The weights carry
    no gradient.

    Shape:
        - losses: ``(N, K)``, lower is better.
        - output: ``(N, K)``, same dtype and device.
    """
    _check_per_hypothesis(losses)
    check_choice("mode", mode, get_args(WTAMode))
    epsilon = _check_epsilon(epsilon)
    hypotheses = losses.shape[1]
    best = losses.detach().argmin(dim=1, keepdim=True)
    if mode == "wta" or hypotheses == 1:
        winner, other = 1.0, 0.0
    else:
        winner, other = 1.0 - epsilon, epsilon / (hypotheses - 1)
    weights = torch.full_like(losses, other, requires_grad=False)
    return weights.scatter_(1, best, winner)


def winner_takes_all(
    losses: Tensor,
    mode: WTAMode = "relaxed",
    epsilon: float = 0.05,
    reduction: Reduction = "mean",
) -> Tensor:
    """Reduce per-hypothesis losses ``(N, K)`` with (relaxed) winner-takes-all weights.

    Per sample: ``sum_k w[n, k] * losses[n, k]`` with ``w`` from :func:`winner_takes_all_weights`;
    then ``reduction`` over samples (``'mean'``, ``'sum'`` or ``'none'`` for ``(N,)``).

    Example (hand calculation, ``epsilon=0.1``, ``K = 3``)::

        losses = [[3.0, 1.0, 2.0]]  ->  0.05*3 + 0.9*1 + 0.05*2 = 1.15
    """
    reduction = check_reduction(reduction)
    weights = winner_takes_all_weights(losses, mode, epsilon)
    return reduce((weights * losses).sum(dim=1), reduction)


def _check_step(step: int) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a whole number >= 0 (updates done); got {step!r}.")
    return step


def _check_schedule_steps(steps: int) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"the assignment schedule needs steps >= 1 (how many training steps "
                         f"the temperature / top-k takes to reach its end); got {steps!r}.")
    return steps


def _check_temperatures(start: float, end: float, schedule: str) -> tuple[float, float]:
    check_choice("temperature_schedule", schedule, get_args(TemperatureSchedule))
    for name, value in (("temperature", start), ("temperature_end", end)):
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value < 0):
            raise ValueError(f"{name} must be a finite number >= 0 (in the base loss's units, "
                             f"e.g. 0.01 for MSE); got {value!r}.")
    if start <= 0 or end > start:
        raise ValueError(f"annealing needs temperature > 0 and temperature_end <= temperature "
                         f"(it cools down); got {start!r} -> {end!r}.")
    if schedule == "exponential" and end <= 0:
        raise ValueError("an exponential temperature schedule never reaches 0: give "
                         "temperature_end > 0 (e.g. 1e-4) or temperature_schedule: linear.")
    return float(start), float(end)


def annealing_temperature(step: int, start: float, end: float, steps: int,
                          schedule: TemperatureSchedule = "exponential") -> float:
    """The annealed-MCL temperature at training ``step`` (in the base loss's units).

    ``exponential``: ``T = start * (end / start) ** (step / steps)`` (geometric cooling, a
    constant factor per step, as the exponential scheduler of annealed MCL); ``linear``:
    ``T = start + (end - start) * step / steps``. From ``step >= steps`` on, ``T = end``
    (``end = 0`` then means hard WTA; only the linear schedule can reach 0).

    Example: ``annealing_temperature(250, 1.0, 1e-4, 500)`` is ``1e-2``.
    """
    step, steps = _check_step(step), _check_schedule_steps(steps)
    start, end = _check_temperatures(start, end, schedule)
    fraction = min(1.0, step / steps)
    if schedule == "exponential":
        return start * (end / start) ** fraction
    return start + (end - start) * fraction


def evolving_top_k(step: int, hypotheses: int, steps: int) -> int:
    """How many best hypotheses share each sample's loss at ``step`` in evolving WTA.

    ``k = K - floor((K - 1) * step / steps)``: ``K`` at step 0 (every hypothesis gets the mean
    loss), then ``K - 1``, ..., ``2`` in equal stages of ``steps / (K - 1)`` steps, and 1 (hard
    WTA) from ``step >= steps`` on. For ``K = 4``, ``steps = 300``: k = 4 on steps 0-99, 3 on
    100-199, 2 on 200-299, 1 after.
    """
    step, steps = _check_step(step), _check_schedule_steps(steps)
    if isinstance(hypotheses, bool) or not isinstance(hypotheses, int) or hypotheses < 1:
        raise ValueError(f"hypotheses must be a whole number >= 1; got {hypotheses!r}.")
    if step >= steps:
        return 1
    return hypotheses - ((hypotheses - 1) * step) // steps


def annealed_weights(losses: Tensor, temperature: float) -> Tensor:
    """Annealed-MCL weights ``(N, K)``: ``softmax_k(-losses / temperature)``; rows sum to 1.

    ``temperature = 0`` gives hard WTA (one-hot on the lowest loss, ties to the lowest index).
    The weights carry no gradient.

    Example (hand calculation): losses ``[[0, ln 2, ln 4]]`` at ``temperature = 1`` give
    ``[4, 2, 1] / 7``.
    """
    _check_per_hypothesis(losses)
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not temperature >= 0 or math.isinf(temperature)):
        raise ValueError(f"temperature must be a finite number >= 0; got {temperature!r}.")
    losses = losses.detach()
    if temperature == 0:
        return winner_takes_all_weights(losses, mode="wta")
    return torch.softmax(-losses / temperature, dim=1)


def evolving_weights(losses: Tensor, top_k: int) -> Tensor:
    """Evolving-WTA weights ``(N, K)``: ``1 / top_k`` for each sample's ``top_k`` lowest losses,
    0 for the others (``top_k = K``: the plain mean; ``top_k = 1``: hard WTA). Ties go to the
    lowest index. The weights carry no gradient."""
    _check_per_hypothesis(losses)
    hypotheses = losses.shape[1]
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= hypotheses:
        raise ValueError(f"top_k must be a whole number in [1, K = {hypotheses}]; got {top_k!r}.")
    # stable sort: equal losses keep index order, so ties go to the lowest index as in WTA
    order = losses.detach().argsort(dim=1, stable=True)[:, :top_k]
    weights = torch.zeros_like(losses, requires_grad=False)
    return weights.scatter_(1, order, 1.0 / top_k)


def best_hypothesis(predictions: Tensor, target: Tensor) -> Tensor:
    """Index ``(N,)`` of each sample's hypothesis closest to ``target`` by MSE (the oracle).

    Use it for oracle evaluation ("best of K") together with :func:`select_hypothesis`.

    Shape:
        - predictions: ``(N, K, C, H, W)``; target: ``(N, C, H, W)``.
        - output: ``(N,)`` int64, values in ``[0, K)``.
    """
    _check_hypotheses_pair(predictions, target)
    with torch.no_grad():
        errors = (predictions - target.unsqueeze(1)).square().flatten(2).mean(dim=2)
    return errors.argmin(dim=1)


def select_hypothesis(predictions: Tensor, index: Tensor) -> Tensor:
    """Pick hypothesis ``index[n]`` of every sample: ``(N, K, C, H, W)``, ``(N,)`` -> ``(N, C, H, W)``."""
    if predictions.dim() != 5:
        raise ValueError(
            f"predictions must be (N, K, C, H, W); got shape {tuple(predictions.shape)}."
        )
    if index.shape != (predictions.shape[0],):
        raise ValueError(
            f"index must have shape ({predictions.shape[0]},), one hypothesis per sample; got "
            f"{tuple(index.shape)}."
        )
    return predictions[torch.arange(predictions.shape[0], device=predictions.device), index]


def _check_hypotheses_pair(predictions: Tensor, target: Tensor) -> None:
    if not isinstance(predictions, Tensor) or predictions.dim() != 5:
        shape = tuple(predictions.shape) if isinstance(predictions, Tensor) else type(predictions).__name__
        raise ValueError(
            f"predictions must be a 5-D tensor (N, K, C, H, W) of K hypotheses; got {shape}. "
            "Wrap the model in losslab.models.MultiHypothesisHead."
        )
    check_image(target, "target")
    if predictions.shape[0] != target.shape[0] or predictions.shape[2:] != target.shape[1:]:
        raise ValueError(
            f"predictions (N, K, C, H, W) = {tuple(predictions.shape)} do not match target "
            f"(N, C, H, W) = {tuple(target.shape)}; N, C, H and W must be equal."
        )


@contextmanager
def _unreduced(term: Loss) -> Iterator[str]:
    """Temporarily set ``term.reduction = 'none'``; yields the reduction it had."""
    saved = term.reduction  # type: ignore[attr-defined]
    term.reduction = "none"  # type: ignore[attr-defined]
    try:
        yield saved
    finally:
        term.reduction = saved  # type: ignore[attr-defined]


class MultiHypothesisLoss(Loss):
    """Winner-takes-all over ``K`` hypotheses of a base loss, averaged over samples.

    For each sample ``n`` and hypothesis ``k`` it evaluates the base loss ``L[n, k] =
    base(predictions[n, k], target[n])``, then returns ``mean_n sum_k w[n, k] L[n, k]`` with
    the weights of the ``assignment``: :func:`winner_takes_all_weights` (relaxed),
    :func:`annealed_weights` or :func:`evolving_weights` at the step given by :meth:`set_step`.

    Supported bases: per-sample values are obtained in one batched call by switching a term's
    ``reduction`` to ``'none'`` for the call (the base loss object is shared, not copied), so
    the base must be a loss with a ``reduction`` attribute (the pixel losses ``mse``, ``l1``,
    ``charbonnier``, ``huber`` and any term that honours ``reduction='none'`` with a leading
    batch dimension), or a :class:`WeightedSum` of such terms (weights and schedules are
    applied). A term's per-sample value is the mean (or, for ``reduction='sum'``, the sum) of
    its unreduced output over all but the batch dimension. Terms that reduce to a scalar only,
    or adversarial/conditional terms, raise a ``TypeError``: apply those separately, e.g. to
    the best hypothesis selected with :func:`best_hypothesis`.

    Not registered in the spec registry (it wraps a spec rather than being one). After each
    call, :attr:`last_values` maps every term name to its WTA-weighted value and
    :attr:`last_best` holds each sample's best hypothesis ``(N,)`` (both detached).

    Args:
        base: the loss applied to every hypothesis.
        mode: ``"relaxed"`` (default) or ``"wta"`` (assignment ``relaxed`` only).
        epsilon: total weight of the non-best hypotheses in relaxed mode, in ``[0, 1)``.
        assignment: ``"relaxed"`` (the fixed weights above), ``"annealed"`` (soft-min weights
            at a falling temperature) or ``"evolving"`` (top-k with k falling from K to 1); see
            the module docstring. The last two follow the step given by :meth:`set_step`.
        temperature, temperature_end, temperature_schedule: the annealed schedule
            (:func:`annealing_temperature`), in the base loss's units.
        schedule_steps: steps over which the temperature or top-k reaches its end (``>= 1``;
            the trainer passes the run's ``steps`` unless the config sets it).

    Shape:
        - predictions: ``(N, K, C, H, W)``; target: ``(N, C, H, W)``; both in ``input_range``.
        - output: scalar.
    """

    def __init__(self, base: Loss, mode: WTAMode = "relaxed", epsilon: float = 0.05, *,
                 assignment: Assignment = "relaxed", temperature: float = 0.01,
                 temperature_end: float = 1e-5,
                 temperature_schedule: TemperatureSchedule = "exponential",
                 schedule_steps: int = 1000) -> None:
        if not isinstance(base, Loss):
            raise TypeError(f"base must be a losslab Loss; got {type(base).__name__}.")
        super().__init__(input_range=base.input_range, check_values=base.check_values)
        self.base = base
        self.mode: WTAMode = check_choice("mode", mode, get_args(WTAMode))  # type: ignore[assignment]
        self.epsilon = _check_epsilon(epsilon)
        self.assignment: Assignment = check_choice(  # type: ignore[assignment]
            "assignment", assignment, get_args(Assignment))
        if assignment != "relaxed" and mode != "relaxed":
            raise ValueError(f"mode={mode!r} applies to assignment 'relaxed' only; drop mode "
                             f"(assignment {assignment!r} ends in hard WTA by itself).")
        if assignment == "annealed":  # the other assignments never read the temperatures
            temperature, temperature_end = _check_temperatures(
                temperature, temperature_end, temperature_schedule)
        self.temperature, self.temperature_end = temperature, temperature_end
        self.temperature_schedule: TemperatureSchedule = temperature_schedule
        self.schedule_steps = _check_schedule_steps(schedule_steps)
        self.step = 0
        self.last_values: dict[str, Tensor] = {}
        self.last_best: Tensor | None = None
        for part in weighted_terms(base):
            _check_per_sample_capable(part.name, part.term)

    @property
    def term_name(self) -> str:
        base = self.base.term_name
        if self.assignment == "annealed":
            return (f"annealed_mcl({base}, T={self.temperature:g}->{self.temperature_end:g} "
                    f"{self.temperature_schedule} over {self.schedule_steps})")
        if self.assignment == "evolving":
            return f"evolving_wta({base}, k=K->1 over {self.schedule_steps})"
        if self.mode == "wta":
            return f"wta({base})"
        return f"relaxed_wta({base}, epsilon={self.epsilon:g})"

    @term_name.setter
    def term_name(self, value: str) -> None:  # the name is always derived from the base
        pass

    def set_input_range(self, input_range: Any) -> MultiHypothesisLoss:
        super().set_input_range(input_range)
        self.base.set_input_range(input_range)
        return self

    def set_step(self, step: int) -> None:
        """The training step (updates done): it sets the annealed temperature / evolving top-k
        and is passed to the base's weight schedules (if it has any)."""
        self.step = _check_step(step)
        if isinstance(self.base, WeightedSum):
            self.base.set_step(step)

    def current_temperature(self) -> float | None:
        """The annealed-MCL temperature at the current step (``None`` for other assignments)."""
        if self.assignment != "annealed":
            return None
        return annealing_temperature(self.step, self.temperature, self.temperature_end,
                                     self.schedule_steps, self.temperature_schedule)

    def current_top_k(self, hypotheses: int) -> int | None:
        """The evolving-WTA ``k`` at the current step for ``K = hypotheses`` (else ``None``)."""
        if self.assignment != "evolving":
            return None
        return evolving_top_k(self.step, hypotheses, self.schedule_steps)

    def weights(self, losses: Tensor) -> Tensor:
        """The assignment's weights ``(N, K)`` for per-hypothesis losses ``(N, K)`` at the
        current step (detached; rows sum to 1)."""
        if self.assignment == "annealed":
            return annealed_weights(losses, self.current_temperature())  # type: ignore[arg-type]
        if self.assignment == "evolving":
            return evolving_weights(losses, self.current_top_k(losses.shape[1]))  # type: ignore[arg-type]
        return winner_takes_all_weights(losses.detach(), self.mode, self.epsilon)

    def assignment_logs(self, hypotheses: int) -> dict[str, float]:
        """What the schedule is at now, for the training log: ``hypotheses/temperature`` or
        ``hypotheses/top_k`` (empty for relaxed)."""
        temperature = self.current_temperature()
        if temperature is not None:
            return {"hypotheses/temperature": temperature}
        top_k = self.current_top_k(hypotheses)
        return {} if top_k is None else {"hypotheses/top_k": float(top_k)}

    def forward(self, prediction: Tensor, target: Tensor,
                context: LossContext | None = None) -> Tensor:
        """The WTA-weighted loss of ``(N, K, C, H, W)`` hypotheses against ``(N, C, H, W)``
        targets. ``context`` is accepted so a trainer calls every criterion the same way; no
        term here reads it (terms that would are refused at construction)."""
        as_context(context)
        self.validate(prediction, target)
        return self.evaluate(prediction, target)

    def validate(self, prediction: Tensor, target: Tensor) -> None:
        """Check the ``(N, K, C, H, W)`` / ``(N, C, H, W)`` pair, then the base's own checks."""
        _check_hypotheses_pair(prediction, target)
        self.base.validate(*fold_samples(prediction, target))

    def per_hypothesis(self, predictions: Tensor, target: Tensor) -> Tensor:
        """Base loss of every (sample, hypothesis) pair, ``(N, K)``, graph-connected.

        Inputs are not validated here (``forward`` does it).
        """
        values, _ = self._per_hypothesis_terms(predictions, target)
        return values

    def _per_hypothesis_terms(
        self, predictions: Tensor, target: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        samples, hypotheses = predictions.shape[:2]
        flat_predictions, flat_target = fold_samples(predictions, target)
        total: Tensor | None = None
        per_term: dict[str, Tensor] = {}
        for part in weighted_terms(self.base):
            name, weight = part.name, part.current
            if weight == 0.0:
                continue  # a scheduled term that has not started costs nothing
            with _unreduced(part.term) as reduction:
                values = part.term.evaluate(flat_predictions, flat_target)
            if values.dim() == 0 or values.shape[0] != samples * hypotheses:
                raise ValueError(
                    f"term {name!r} returned shape {tuple(values.shape)} with reduction='none'; "
                    f"MultiHypothesisLoss needs a leading batch dimension of N*K = "
                    f"{samples * hypotheses}."
                )
            values = values.flatten(1) if values.dim() > 1 else values.unsqueeze(1)
            values = (values.sum(dim=1) if reduction == "sum" else values.mean(dim=1))
            values = values.view(samples, hypotheses)
            per_term[name] = values
            total = values * weight if total is None else total + values * weight
        if total is None:  # every term is scheduled later: a zero that keeps the graph
            total = predictions.flatten(2).sum(dim=2) * 0.0
        return total, per_term

    def evaluate(self, prediction: Tensor, target: Tensor,
                 context: LossContext | None = None) -> Tensor:
        values, per_term = self._per_hypothesis_terms(prediction, target)
        weights = self.weights(values.detach())
        self.last_best = values.detach().argmin(dim=1)
        self.last_values = {
            name: (weights * term_values.detach()).sum(dim=1).mean()
            for name, term_values in per_term.items()
        }
        return (weights * values).sum(dim=1).mean()


def _check_per_sample_capable(name: str, term: Loss) -> None:
    if term.judged_by_discriminator or term.uses_condition:
        raise TypeError(
            f"term {name!r} is adversarial/conditional; MultiHypothesisLoss cannot apply it per "
            "hypothesis. Apply it separately, e.g. to select_hypothesis(predictions, "
            "best_hypothesis(predictions, target))."
        )
    reduction = getattr(term, "reduction", None)
    if reduction is None:
        raise TypeError(
            f"term {name!r} ({type(term).__name__}) has no 'reduction' option, so it gives no "
            "per-sample values; MultiHypothesisLoss needs terms that support reduction='none' "
            "(e.g. mse, l1, charbonnier, huber). Apply other terms to the best hypothesis instead."
        )
    if reduction == "none":
        raise ValueError(
            f"term {name!r} has reduction='none'; MultiHypothesisLoss needs a reducing base "
            "loss ('mean' or 'sum')."
        )
