"""Gradient difference loss (GDL, Mathieu, Couprie and LeCun 2016): edges must be as strong.

Compares the *magnitudes* of neighbouring-pixel differences, not the pixels: a constant offset
or a sign flip of an edge costs nothing, a blurred edge (weaker differences) costs a lot, which
is why it was paired with MSE against blurry predictions.

``gdl = mean_{pixels} | |dx p| - |dx t| |^alpha + mean_{pixels} | |dy p| - |dy t| |^alpha``
with forward differences ``dx x[i, j] = x[i, j + 1] - x[i, j]`` (``W - 1`` columns) and
``dy x[i, j] = x[i + 1, j] - x[i, j]`` (``H - 1`` rows); each term is averaged over its own
valid positions and the channels of the view, so the value is in ``[0, 1]`` units raised to
``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from torch import Tensor

from losslab.core.validation import Reduction, check_pair, reduce
from losslab.losses.registry import register_loss
from losslab.losses.views import ViewedLoss, ViewLike

#: Largest exponent: differences lie in [0, 1] and 0.01 ** 10 = 1e-20 already charges nothing.
MAX_ALPHA = 10.0


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise ValueError(f"gdl alpha must be a finite number >= 1 such as 1 or 2; got {alpha!r}.")
    if alpha < 1:
        raise ValueError(
            f"gdl alpha must be >= 1; got {alpha}. Below 1, |x|^alpha has an infinite slope at "
            "x = 0 (every equal edge), which makes the gradient NaN. Use alpha=1 or alpha=2."
        )
    if alpha > MAX_ALPHA:
        raise ValueError(
            f"gdl alpha must be <= {MAX_ALPHA:g}; got {alpha}. Gradient differences lie in "
            "[0, 1], so a large power underflows to 0 and the loss stops charging anything. "
            "Use alpha=1 or alpha=2."
        )
    return float(alpha)


def _power(values: Tensor, alpha: float) -> Tensor:
    if alpha == 1.0:
        return values
    if alpha == 2.0:
        return values * values
    return values.pow(alpha)


def gradient_difference(prediction: Tensor, target: Tensor, alpha: float = 1.0) -> Tensor:
    """Per-sample gradient difference ``(N,)`` (see the module docstring for the formula).

    Args:
        prediction, target: ``(N, C, H, W)`` images, ``H, W >= 2``.
        alpha: exponent ``>= 1`` on the difference of gradient magnitudes.

    Returns:
        ``(N,)`` non-negative values; 0 when every gradient magnitude matches.
    """
    check_pair(prediction, target, min_size=2)
    return _gradient_difference(prediction, target, _check_alpha(alpha))


def _gradient_difference(prediction: Tensor, target: Tensor, alpha: float) -> Tensor:
    dx = (prediction[..., :, 1:] - prediction[..., :, :-1]).abs() - (
        target[..., :, 1:] - target[..., :, :-1]
    ).abs()
    dy = (prediction[..., 1:, :] - prediction[..., :-1, :]).abs() - (
        target[..., 1:, :] - target[..., :-1, :]
    ).abs()
    term_x = _power(dx.abs(), alpha).flatten(1).mean(dim=1)
    term_y = _power(dy.abs(), alpha).flatten(1).mean(dim=1)
    return term_x + term_y


@register_loss("gdl", positional=("view",), aliases=("gradient_difference",))
class GradientDifferenceLoss(ViewedLoss):
    """Gradient difference loss (Mathieu et al. 2016): edge strengths must match, not pixels.

    ``mean | |dx p| - |dx t| |^alpha + mean | |dy p| - |dy t| |^alpha`` on the viewed images in
    ``[0, 1]`` units (forward differences, each direction averaged over its own positions).

    Args:
        view: colour view compared (``rgb``, ``luma``, ``red``, ... or a ``(K, 3)`` matrix).
        alpha: exponent ``>= 1`` (1 in the paper's experiments; 2 penalises large misses more).
        reduction: ``'mean'`` / ``'sum'`` over samples, or ``'none'`` for per-sample ``(N,)``.

    Shape:
        - prediction, target: ``(N, C, H, W)`` (``C = 3`` for a colour view), ``H, W >= 2``.
        - output: scalar, or ``(N,)`` for ``reduction='none'``.

    Example:
        >>> import torch
        >>> loss = GradientDifferenceLoss()
        >>> x = torch.rand(2, 3, 8, 8) * 0.5
        >>> round(float(loss(x + 0.25, x)), 6)  # a constant offset keeps every gradient
        0.0
    """

    edge_sign_blind = True  # compares |differences| only

    def __init__(
        self,
        view: ViewLike = "rgb",
        alpha: float = 1.0,
        reduction: Reduction = "mean",
        *,
        lowpass: int | None = None,
        highpass: int | None = None,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(
            view, reduction, lowpass=lowpass, highpass=highpass, input_range=input_range,
            check_values=check_values,
        )
        self.alpha = _check_alpha(alpha)
        self.min_size = 2

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        values = _gradient_difference(self.viewed(prediction), self.viewed(target), self.alpha)
        return reduce(values, self.reduction)


__all__ = ["GradientDifferenceLoss", "gradient_difference"]
