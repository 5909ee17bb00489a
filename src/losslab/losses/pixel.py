"""Pixel distances (MSE, L1, Charbonnier, Huber), each seen through a colour view.

All distances are computed on inputs mapped to ``[0, 1]`` (whatever ``input_range`` is
declared), per element of the viewed tensor, then reduced. ``l1(luma)`` is the seed
experiment's "L1 grayscale loss", ``l1(red)`` its "red component loss".

Shape:
    - prediction, target: ``(N, 3, H, W)`` for a colour view, ``(N, C, H, W)`` for ``rgb``.
    - output: scalar for ``reduction='mean'``/``'sum'``, ``(N, K, H, W)`` for ``'none'``
      (``K`` = the view's channel count).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.validation import Reduction, check_number, reduce
from losslab.losses.registry import register_loss
from losslab.losses.views import ViewedLoss, ViewLike


def charbonnier_error(difference: Tensor, eps: float) -> Tensor:
    """``sqrt(difference^2 + eps^2)`` elementwise: the Charbonnier penalty of a difference."""
    return torch.sqrt(difference * difference + eps * eps)


def per_image_mean(values: Tensor) -> Tensor:
    """``(N, ...) -> (N,)``: the mean over everything but the batch dimension."""
    return values.flatten(1).mean(dim=1)


def mse(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-image mean squared error ``(N,)`` of two ``(N, C, H, W)`` batches, in their units."""
    return per_image_mean(F.mse_loss(prediction, target, reduction="none"))


def l1(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-image mean absolute error ``(N,)`` of two ``(N, C, H, W)`` batches, in their units."""
    return per_image_mean(F.l1_loss(prediction, target, reduction="none"))


def charbonnier(prediction: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Per-image mean Charbonnier penalty ``(N,)`` (:func:`charbonnier_error`); ``eps`` at 0."""
    return per_image_mean(charbonnier_error(prediction - target, eps))


def huber(prediction: Tensor, target: Tensor, delta: float = 0.1) -> Tensor:
    """Per-image mean Huber penalty ``(N,)`` (``torch.nn.functional.huber_loss``)."""
    return per_image_mean(F.huber_loss(prediction, target, reduction="none", delta=delta))


def psnr(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-image PSNR ``(N,)`` in dB for a data range of 1: ``-10 log10(mse)``; ``inf`` when
    an image is exact. No clipping (the metric :func:`losslab.metrics.per_image_psnr` clips)."""
    return -10.0 * torch.log10(mse(prediction, target))


class PixelLoss(ViewedLoss):
    """Base of the pixel distances: view both images, take a per-element distance, reduce.

    Every colour and spatial view is linear, so ``view(p) - view(t) == view(p - t)``: with a view
    the distance is taken on the viewed *difference* (one view evaluation instead of two).
    """

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        if self.linear_view_is_identity:
            return self.distance(prediction, target)
        return self.difference_distance(self.viewed(prediction - target))

    def distance(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Reduced distance between two viewed tensors of equal shape."""
        return self.difference_distance(prediction - target)

    def difference_distance(self, difference: Tensor) -> Tensor:
        """Reduced distance of a viewed difference ``view(p) - view(t)`` from zero."""
        raise NotImplementedError


@register_loss("mse", positional=("view",), aliases=("l2",))
class MSELoss(PixelLoss):
    """Mean squared error; the minimiser over plausible targets is their mean (blur, ghosts).

    ``mean((view(p) - view(t))^2)`` with inputs in ``[0, 1]`` units.
    """

    def distance(self, prediction: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(prediction, target, reduction=self.reduction)

    def difference_distance(self, difference: Tensor) -> Tensor:
        return reduce(difference * difference, self.reduction)


@register_loss("l1", positional=("view",), aliases=("mae",))
class L1Loss(PixelLoss):
    """Mean absolute error (L1); the minimiser over plausible targets is their median.

    ``mean(|view(p) - view(t)|)`` with inputs in ``[0, 1]`` units.
    """

    def distance(self, prediction: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(prediction, target, reduction=self.reduction)

    def difference_distance(self, difference: Tensor) -> Tensor:
        return reduce(difference.abs(), self.reduction)


@register_loss("charbonnier", positional=("view",))
class CharbonnierLoss(PixelLoss):
    """Charbonnier (smooth L1): ``mean(sqrt((p - t)^2 + eps^2))``, differentiable at 0.

    Args:
        eps: smoothing scale in ``[0, 1]`` pixel units (default ``1e-3``); the loss of identical
            images is ``eps``, not 0.
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        eps: float = 1e-3,
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
        self.eps = check_number("charbonnier eps", eps, low=0.0, low_open=True, example="1e-3")

    def difference_distance(self, difference: Tensor) -> Tensor:
        return reduce(charbonnier_error(difference, self.eps), self.reduction)


@register_loss("huber", positional=("view",))
class HuberLoss(PixelLoss):
    """Huber: quadratic for ``|p - t| < delta``, linear beyond (``torch.nn.functional.huber_loss``).

    Args:
        delta: the switch point in ``[0, 1]`` pixel units (default ``0.1``, i.e. 10 % of the
            range; PyTorch's default 1.0 would make it plain MSE/2 on ``[0, 1]`` images).
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        delta: float = 0.1,
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
        self.delta = check_number("huber delta", delta, low=0.0, low_open=True, example="0.1")

    def distance(self, prediction: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(prediction, target, reduction=self.reduction, delta=self.delta)

    def difference_distance(self, difference: Tensor) -> Tensor:
        # A zero target that costs no memory (stride 0); huber_loss is one fused kernel.
        zero = difference.new_zeros(()).expand_as(difference)
        return F.huber_loss(difference, zero, reduction=self.reduction, delta=self.delta)
