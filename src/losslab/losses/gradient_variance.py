"""Gradient-variance loss (Abrahamyan et al. 2022): local gradient activity must match.

A super-resolution network trained on a pixel loss returns smooth outputs: inside a textured
patch its gradients are weaker and more uniform than the target's. This loss compares the
*variance* of the gradient maps over non-overlapping patches::

    G_x = S_x * v,  G_y = S_y * v              (3x3 Sobel filters, zero padding, v = the view)
    var_x(k) = unbiased variance of G_x over the k-th p x p patch (p^2 - 1 in the denominator)
    gv(p, t) = mean_k (var_x(k; p) - var_x(k; t))^2 + mean_k (var_y(k; p) - var_y(k; t))^2

with ``S_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` and ``S_y = S_x^T``, patches tiling the
image from the top-left corner (a remainder narrower than ``p`` at the right/bottom is left
out), and the mean running over the patches and the view's channels of one image. The paper
converts RGB to grey first: the default view is ``luma`` (BT.601), the same weights.

Units: Sobel responses of ``[0, 1]`` images lie in ``[-4, 4]``, so variances in ``[0, 16]``
and the loss is in their squared units; 0 for identical images, also 0 for a change that keeps
every patch's gradient variance (a constant offset, a sign flip of the gradients).

Reference:
    L. Abrahamyan, A. M. Truong, W. Philips, N. Deligiannis, "Gradient Variance Loss for
    Structure-Enhanced Image Super-Resolution", ICASSP 2022 (arXiv:2202.00997).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.validation import Reduction, check_pair, reduce
from losslab.losses.registry import register_loss
from losslab.losses.views import ViewedLoss, ViewLike

#: Largest patch side accepted (a larger patch averages the gradients of whole objects).
MAX_PATCH_SIZE = 64
_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def _check_patch_size(patch_size: int) -> int:
    if (isinstance(patch_size, bool) or not isinstance(patch_size, int)
            or not 2 <= patch_size <= MAX_PATCH_SIZE):
        raise ValueError(
            f"gradient_variance patch_size must be an integer from 2 to {MAX_PATCH_SIZE} "
            f"(a variance needs >= 2 pixels); got {patch_size!r}. Example: "
            "gradient_variance(patch_size=8)."
        )
    return patch_size


def sobel_filters(dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
    """The ``(2, 1, 3, 3)`` Sobel filters (``x`` then ``y``), as correlation kernels."""
    sobel_x = torch.tensor(_SOBEL_X, dtype=dtype, device=device)
    return torch.stack([sobel_x, sobel_x.T]).unsqueeze(1)


def patch_gradient_variance(images: Tensor, patch_size: int = 8) -> Tensor:
    """Unbiased variance of the Sobel maps over non-overlapping patches.

    Args:
        images: ``(N, C, H, W)`` with ``H, W >= patch_size``.
        patch_size: side ``p`` of the patches.

    Returns:
        ``(N, C, 2, H // p, W // p)``: the variance of ``G_x`` (index 0) and ``G_y`` (index 1)
        in every patch.
    """
    n, c, h, w = images.shape
    filters = sobel_filters(images.dtype, images.device)
    gradients = F.conv2d(images.reshape(n * c, 1, h, w), filters, padding=1)
    rows, cols = h // patch_size, w // patch_size
    tiles = gradients[..., : rows * patch_size, : cols * patch_size].reshape(
        n * c, 2, rows, patch_size, cols, patch_size)
    variance = tiles.var(dim=(3, 5), correction=1)
    return variance.reshape(n, c, 2, rows, cols)


def gradient_variance(prediction: Tensor, target: Tensor, patch_size: int = 8) -> Tensor:
    """Per-image gradient-variance loss ``(N,)`` (formula in the module docstring).

    Args:
        prediction, target: ``(N, C, H, W)`` (any channels; compared channel by channel), sides
            at least ``patch_size``.
        patch_size: side of the non-overlapping patches (the paper's default 8).

    Returns:
        ``(N,)`` >= 0; 0 when every patch's gradient variances match.
    """
    patch_size = _check_patch_size(patch_size)
    check_pair(prediction, target, min_size=patch_size)
    return _gradient_variance(prediction, target, patch_size)


def _gradient_variance(prediction: Tensor, target: Tensor, patch_size: int) -> Tensor:
    predicted = patch_gradient_variance(prediction, patch_size)
    with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
        targeted = patch_gradient_variance(target, patch_size)
    difference = predicted - targeted
    # mean over channels and patches of each direction, then the two directions summed
    return (difference * difference).mean(dim=(1, 3, 4)).sum(dim=1)


@register_loss("gradient_variance", positional=("view",), aliases=("gv",))
class GradientVarianceLoss(ViewedLoss):
    """Gradient-variance loss (Abrahamyan et al. 2022): per-patch Sobel variances must match.

    ``mean_k (var_x(k; p) - var_x(k; t))^2 + mean_k (var_y(k; p) - var_y(k; t))^2`` over the
    non-overlapping ``patch_size`` patches of the viewed images' Sobel maps; see
    :mod:`losslab.losses.gradient_variance`. Added to a pixel loss against over-smoothing
    (``mse + 0.1*gradient_variance``).

    Args:
        view: colour view (default ``luma``: the paper's grey image; ``rgb`` compares every
            channel).
        patch_size: side of the patches (default 8).
        reduction: ``'mean'`` / ``'sum'`` over images, or ``'none'`` for ``(N,)``.
        lowpass, highpass: optional spatial view, after the colour view.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` for a colour view, sides ``>= patch_size``.
        - output: scalar, or ``(N,)`` for ``reduction='none'``; 0 for identical images.

    Example:
        >>> loss = GradientVarianceLoss(patch_size=4)
        >>> x = torch.rand(2, 3, 16, 16)
        >>> float(loss(x, x))
        0.0
    """

    edge_sign_blind = True  # variances of gradients: a flipped edge has the same variance

    def __init__(
        self,
        view: ViewLike = "luma",
        patch_size: int = 8,
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
        self.patch_size = _check_patch_size(patch_size)
        self.min_size = self.patch_size

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        values = _gradient_variance(self.viewed(prediction), self.viewed(target), self.patch_size)
        return reduce(values, self.reduction)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}"


__all__ = ["GradientVarianceLoss", "gradient_variance", "patch_gradient_variance", "sobel_filters"]
