"""Winner-takes-all training for models that return ``K`` hypotheses ``(N, K, C, H, W)``.

With several plausible targets for one input, a single-output model trained with MSE predicts
their mean. Winner-takes-all (WTA) applies the loss only to each sample's best hypothesis, so the
``K`` hypotheses spread over the modes (a Voronoi tessellation of the targets). Relaxed WTA
(Rupprecht et al., "Learning in an Uncertain World: Representing Ambiguity Through Multiple
Hypotheses", ICCV 2017) gives the best hypothesis weight ``1 - epsilon`` and every other one
``epsilon / (K - 1)``, so a hypothesis that never wins still moves towards the data instead of
staying dead. Both are the default here (``mode="relaxed"``, ``epsilon=0.05``).

The weights are computed from detached losses (choosing the winner is not differentiated).
"""

from __future__ import annotations

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
    """(Relaxed) winner-takes-all over ``K`` hypotheses of a base loss, averaged over samples.

    For each sample ``n`` and hypothesis ``k`` it evaluates the base loss ``L[n, k] =
    base(predictions[n, k], target[n])``, then returns ``mean_n sum_k w[n, k] L[n, k]`` with
    the weights of :func:`winner_takes_all_weights`.

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
        mode: ``"relaxed"`` (default) or ``"wta"``.
        epsilon: total weight of the non-best hypotheses in relaxed mode, in ``[0, 1)``.

    Shape:
        - predictions: ``(N, K, C, H, W)``; target: ``(N, C, H, W)``; both in ``input_range``.
        - output: scalar.
    """

    def __init__(self, base: Loss, mode: WTAMode = "relaxed", epsilon: float = 0.05) -> None:
        if not isinstance(base, Loss):
            raise TypeError(f"base must be a losslab Loss; got {type(base).__name__}.")
        super().__init__(input_range=base.input_range, check_values=base.check_values)
        self.base = base
        self.mode: WTAMode = check_choice("mode", mode, get_args(WTAMode))  # type: ignore[assignment]
        self.epsilon = _check_epsilon(epsilon)
        self.last_values: dict[str, Tensor] = {}
        self.last_best: Tensor | None = None
        for part in weighted_terms(base):
            _check_per_sample_capable(part.name, part.term)

    @property
    def term_name(self) -> str:
        if self.mode == "wta":
            return f"wta({self.base.term_name})"
        return f"relaxed_wta({self.base.term_name}, epsilon={self.epsilon:g})"

    @term_name.setter
    def term_name(self, value: str) -> None:  # the name is always derived from the base
        pass

    def set_input_range(self, input_range: Any) -> MultiHypothesisLoss:
        super().set_input_range(input_range)
        self.base.set_input_range(input_range)
        return self

    def set_step(self, step: int) -> None:
        """Pass the training step to the base's weight schedules (if it has any)."""
        if isinstance(self.base, WeightedSum):
            self.base.set_step(step)

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
        weights = winner_takes_all_weights(values.detach(), self.mode, self.epsilon)
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
