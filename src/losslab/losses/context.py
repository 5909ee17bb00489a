"""What a loss term needs beyond ``(prediction, target)``, in one object the trainer hands over.

Most losses compare two images and nothing else: ``loss(prediction, target)``. A few terms of a
training objective need more, and each declares it with a flag on :class:`~losslab.losses.base.Loss`:

| flag | term | field read |
|---|---|---|
| ``uses_condition`` | conditional adversarial / feature-matching terms | :attr:`LossContext.condition` |
| ``uses_reconstruction`` | the adaptive adversarial weight (VQGAN) | :attr:`LossContext.last_layer`, :attr:`LossContext.reconstruction` |
| ``uses_ema_prediction`` | LDL (Liang et al. 2022) | :attr:`LossContext.ema_prediction` |

The trainer builds one :class:`LossContext` per step and passes it to the weighted sum
(``criterion(prediction, target, context)``); the sum fills in ``reconstruction`` (its weighted
total of the terms not judged by a discriminator) for the terms that read it, and hands the
context to every term's ``evaluate``. Terms that need nothing ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class LossContext:
    """Per-step inputs of the terms that need more than ``(prediction, target)``.

    Attributes:
        condition: the model's input, ``(N, C, h, w)`` or a clip ``(N, T, C, h, w)`` in the
            declared input range, for conditional discriminators.
        last_layer: the generator's last layer weight (a Parameter), for the adaptive
            adversarial weight ``||grad_w L_rec|| / ||grad_w L_G||``.
        ema_prediction: the EMA model's output on the same inputs, ``(N, C, H, W)``, detached,
            for LDL's refined artifact map.
        reconstruction: the graph-connected weighted total of the terms evaluated before a
            discriminator-judged term; set by :class:`~losslab.losses.weighted_sum.WeightedSum`,
            or by the caller of a lone adaptive adversarial term.
    """

    condition: Tensor | None = None
    last_layer: Tensor | None = None
    ema_prediction: Tensor | None = None
    reconstruction: Tensor | None = None


#: The context of a plain call: nothing beyond the two images.
NO_CONTEXT = LossContext()


def as_context(context: object) -> LossContext:
    """``context`` checked (``None`` -> :data:`NO_CONTEXT`); anything else but a
    :class:`LossContext` raises a ``TypeError`` that shows the call to write instead."""
    if context is None:
        return NO_CONTEXT
    if not isinstance(context, LossContext):
        raise TypeError(
            f"the third argument of a loss call is a LossContext; got {type(context).__name__}. "
            "Pass the model input as criterion(prediction, target, "
            "LossContext(condition=inputs)) (from losslab.losses import LossContext)."
        )
    return context


__all__ = ["NO_CONTEXT", "LossContext", "as_context"]
