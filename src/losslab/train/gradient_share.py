"""Which loss term actually drives training? Per-term gradient norms at the model output.

For a sum ``total = sum_i w_i(step) * term_i(prediction, target)``, the gradient reaching the
network is ``d total / d prediction = sum_i w_i * d term_i / d prediction``. The norm of each
summand, ``g_i = || w_i * d term_i / d prediction ||_2``, says how hard term ``i`` pushes; its
*share* ``g_i / sum_j g_j`` shows at a glance whether a ``0.01*perceptual`` term dominates the
update or contributes nothing (the weights alone do not tell: term gradients differ by orders of
magnitude). Shares ignore directions (terms can oppose each other); they sum to 1.
"""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.losses.context import LossContext
from losslab.losses.weighted_sum import WeightedSum


def gradient_shares(
    criterion: WeightedSum,
    prediction: Tensor,
    target: Tensor,
    context: LossContext | None = None,
) -> dict[str, tuple[float, float]]:
    """``{term name: (gradient norm, share)}`` of each weighted term w.r.t. ``prediction``.

    Args:
        criterion: the weighted sum (its current step's effective weights are used).
        prediction: ``(N, C, H, W)`` model output that is part of an autograd graph (or a leaf
            with ``requires_grad``); the graph is kept (``retain_graph=True``).
        target: ``(N, C, H, W)`` target.
        context: the step's :class:`~losslab.losses.context.LossContext` (the model input for
            conditional adversarial terms, the last layer for adaptive ones); the terms are
            evaluated as the sum evaluates them (:meth:`WeightedSum.evaluate_terms`).

    Returns:
        Norms are ``|| w_i * d term_i / d prediction ||_2``; shares are norms over their sum
        (all 0 when every norm is 0). A term whose effective weight is 0 gets ``(0.0, 0.0)``.
    """
    if not prediction.requires_grad:
        raise ValueError("gradient_shares needs a prediction that requires grad (the model "
                         "output inside the training step).")
    norms = dict.fromkeys(criterion.term_names, 0.0)
    for part, value in criterion.evaluate_terms(prediction, target, context):
        if part.current == 0.0:
            continue
        (gradient,) = torch.autograd.grad(part.current * value, prediction, retain_graph=True,
                                          allow_unused=True)
        norms[part.name] = 0.0 if gradient is None else float(gradient.float().norm())
    total = sum(norms.values())
    return {name: (norm, norm / total if total > 0 else 0.0) for name, norm in norms.items()}
