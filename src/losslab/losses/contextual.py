"""Contextual loss (Mechrez, Talmi and Zelnik-Manor, ECCV 2018): features matched by context, not
by position.

Each image is a *set* of VGG19 feature vectors, one per position of a layer's map; where a
feature sits does not matter. For the prediction's features ``x_i`` and the target's ``y_j``
(``i, j = 1..N``, ``N = H_l W_l``), centred on the target's mean feature ``mu_y`` and unit-
normalised::

    d_ij  = 1 - cos(x_i - mu_y, y_j - mu_y)                     cosine distance
    d~_ij = d_ij / (min_k d_ik + eps)                           relative to x_i's nearest y
    w_ij  = exp((1 - d~_ij) / h)                                h = bandwidth
    CX_ij = w_ij / sum_k w_ik                                   row-normalised affinity
    CX(x, y) = (1 / N) sum_j max_i CX_ij                        in (0, 1]
    contextual(p, t) = sum_l w_l * (-log CX(phi_l(p), phi_l(t)))

with ``eps = 1e-5``, layer weights ``w_l`` normalised to sum 1, and everything per image
(``reduction='none'`` gives ``(N,)``). ``CX = 1`` (loss 0) when every target feature has a
prediction feature much closer to it than to any other: identical images with distinct
features. Repeated feature vectors (a flat region) share their affinity, so identical images
with flat regions cost a little more than 0; that is still far below any real difference.
Permuting the prediction's feature positions leaves the value unchanged (the defining property,
tested); a small deformation or shift therefore costs almost nothing, while a texture change does.

Memory: the affinity matrix has ``N^2`` entries per image and layer (and a few temporaries of the
same size): a 64 x 64 feature map is 4096 positions, 16.8 M entries, 67 MB in float32 per image.
It grows with the *fourth* power of the image side. ``max_positions`` (default 4096) refuses a
layer with more positions, naming the largest square input that fits; use deeper layers (each
VGG pool divides the positions by 4), smaller crops, or raise the limit knowingly.

Features: :func:`losslab.losses.perceptual.vgg19_slices` (ImageNet weights through
:mod:`losslab.weights`, ``weights=random`` for offline smoke tests, or a VGG19 state-dict file),
the input ImageNet-normalised; the default layer ``relu3_4`` (the SR setting of Mechrez et al.,
"Maintaining natural image statistics with the contextual loss", ACCV 2018, used ``conv3_4``).

Reference:
    R. Mechrez, I. Talmi, L. Zelnik-Manor, "The Contextual Loss for Image Transformation with
    Non-Aligned Data", ECCV 2018 (arXiv:1803.02077).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losslab.core.validation import Reduction, check_number, check_reduction, reduce
from losslab.losses.base import Loss
from losslab.losses.frozen import keep_out_of_state_dict
from losslab.losses.perceptual import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG19_LAYERS,
    check_vgg19_layers,
    vgg19_slices,
)
from losslab.losses.registry import register_loss

logger = logging.getLogger(__name__)

DEFAULT_MAX_POSITIONS = 4096
_EPS = 1e-5


def contextual_similarity(prediction: Tensor, target: Tensor, bandwidth: float = 0.5) -> Tensor:
    """Per-image contextual similarity ``CX`` ``(N,)`` of two feature sets (formula above).

    Args:
        prediction: ``(N, C, P)`` feature vectors (``P`` positions, any order).
        target: ``(N, C, Q)`` feature vectors.
        bandwidth: ``h > 0``; smaller is stricter (only near-exact matches count).

    Returns:
        ``(N,)`` in ``(0, 1]``; invariant to permutations of either set's positions.
    """
    centre = target.mean(dim=2, keepdim=True)
    x = F.normalize(prediction - centre, dim=1)
    y = F.normalize(target - centre, dim=1)
    distance = (1.0 - torch.bmm(x.transpose(1, 2), y)).clamp_min(0.0)  # (N, P, Q)
    relative = distance / (distance.amin(dim=2, keepdim=True) + _EPS)
    # w_ij / sum_k w_ik is a softmax over the target features k; it never overflows.
    affinity = torch.softmax((1.0 - relative) / bandwidth, dim=2)
    return affinity.amax(dim=1).mean(dim=1)


def largest_square_input(max_positions: int, downsampling: int) -> int:
    """Largest square input side whose feature map (side ``floor(s / f)``) fits ``max_positions``."""
    side = math.isqrt(max_positions)
    return downsampling * (side + 1) - 1


@register_loss("contextual", aliases=("cx",))
class ContextualLoss(Loss):
    """Contextual loss (Mechrez et al. 2018): ``-log CX`` of VGG19 feature sets, position-free.

    See :mod:`losslab.losses.contextual` for the formula. Memory grows with the square of the
    number of feature positions (the fourth power of the image side): inputs whose pairwise
    matrix would exceed ``max_positions^2`` entries are refused with the largest size that fits.

    Args:
        layers: VGG19 layer names (default ``relu3_4``).
        bandwidth: ``h > 0`` of the affinity (default 0.5).
        weights: ``"imagenet"`` (default), ``"random"`` (NOT perceptual: smoke tests) or a VGG19
            state-dict path, as :class:`~losslab.losses.perceptual.PerceptualLoss` takes them.
        seed: seed of the random weights.
        layer_weights: one non-negative weight per layer (default equal), normalised to sum 1.
        max_positions: the most feature positions per layer (default 4096 = a 64 x 64 map).
        reduction: ``'mean'`` / ``'sum'`` over images, or ``'none'`` for ``(N,)``.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` in ``input_range``; ``H, W >= 2^pools`` of the
          deepest layer, and at most ``max_positions`` positions at every layer
          (``relu3_4``: 4x fewer per side; 259 x 259 px for the default limit).
        - output: scalar, or ``(N,)`` for ``reduction='none'``; >= 0, about 0 when identical.
    """

    required_channels = 3

    def __init__(
        self,
        layers: Sequence[str] = ("relu3_4",),
        bandwidth: float = 0.5,
        weights: str = "imagenet",
        seed: int = 0,
        layer_weights: Sequence[float] | None = None,
        max_positions: int = DEFAULT_MAX_POSITIONS,
        reduction: Reduction = "mean",
        *,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(input_range=input_range, check_values=check_values)
        self.layers = check_vgg19_layers(layers, "contextual")
        self.bandwidth = check_number("contextual bandwidth", bandwidth, low=0.0, low_open=True,
                                      example="0.5")
        if isinstance(max_positions, bool) or not isinstance(max_positions, int) or max_positions < 1:
            raise ValueError(
                f"contextual max_positions must be a positive integer such as 4096; got "
                f"{max_positions!r}."
            )
        self.max_positions = max_positions
        raw = [1.0] * len(self.layers) if layer_weights is None else [float(w) for w in layer_weights]
        if len(raw) != len(self.layers) or any(not (w >= 0.0) for w in raw) or sum(raw) <= 0.0:
            raise ValueError(
                f"contextual layer_weights needs one weight >= 0 per layer ({self.layers}) with a "
                f"positive sum; got {raw}."
            )
        if not isinstance(weights, (str, os.PathLike)):
            raise TypeError(
                f"weights must be 'imagenet', 'random' or a file path; got {type(weights).__name__}."
            )
        self.weights = os.fspath(weights)
        self.seed = int(seed)
        self.reduction = check_reduction(reduction)
        order = sorted(range(len(self.layers)), key=lambda i: VGG19_LAYERS[self.layers[i]])
        self._depth_order = [self.layers[i] for i in order]
        self._ordered_weights = [raw[i] / sum(raw) for i in order]
        self.slices, self.weights_description = vgg19_slices(self._depth_order, self.weights,
                                                             self.seed)
        keep_out_of_state_dict(self, "slices")  # rebuilt from weights/seed on construction
        # Each max-pool halves (floor) the side; the factor per layer names the size that fits.
        self._downsampling: list[int] = []
        pools = 0
        for block in self.slices:
            pools += sum(isinstance(m, nn.MaxPool2d) for m in block)
            self._downsampling.append(2**pools)
        self.min_size = self._downsampling[-1]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if self.weights == "random":
            logger.warning("contextual loss uses %s weights: its features are random, not "
                           "perceptual; use it only for smoke tests.", self.weights_description)

    @property
    def term_name(self) -> str:
        explicit = getattr(self, "_term_name", None)
        if explicit:
            return explicit
        options = [] if self.layers == ["relu3_4"] else ["layers=" + ",".join(self.layers)]
        if self.weights == "random":
            options.append("weights=random")
        return self.registered_name + (f"({', '.join(options)})" if options else "")

    @term_name.setter
    def term_name(self, value: str) -> None:
        self._term_name = value

    def train(self, mode: bool = True) -> ContextualLoss:
        """Set the owner's mode; the frozen VGG always stays in eval mode."""
        super().train(mode)
        self.slices.eval()
        return self

    def check_shapes(self, prediction: Tensor, target: Tensor) -> None:
        super().check_shapes(prediction, target)
        height, width = prediction.shape[-2:]
        for name, factor in zip(self._depth_order, self._downsampling, strict=True):
            positions = (height // factor) * (width // factor)
            if positions > self.max_positions:
                side = largest_square_input(self.max_positions, factor)
                raise ValueError(
                    f"contextual: layer {name} of a {height}x{width} input has "
                    f"{height // factor}x{width // factor} = {positions} feature positions, over "
                    f"max_positions={self.max_positions} (its pairwise matrix would hold "
                    f"{positions ** 2:,} entries per image). The largest square input that fits "
                    f"is {side}x{side} px; crop or downscale, use a deeper layer, or raise "
                    "max_positions if the memory is there."
                )

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        x = (prediction.to(self.mean.dtype) - self.mean) / self.std
        with torch.no_grad():
            y = (target.to(self.mean.dtype) - self.mean) / self.std
        total = prediction.new_zeros(prediction.shape[0], dtype=self.mean.dtype)
        for block, weight in zip(self.slices, self._ordered_weights, strict=True):
            x = block(x)
            with torch.no_grad():
                y = block(y)
            if weight == 0.0:
                continue
            similarity = contextual_similarity(x.flatten(2), y.flatten(2), self.bandwidth)
            total = total + weight * -torch.log(similarity)
        return reduce(total.to(prediction.dtype), self.reduction)

    def extra_repr(self) -> str:
        return (f"layers={self.layers}, bandwidth={self.bandwidth:g}, "
                f"max_positions={self.max_positions}, weights={self.weights_description!r}")


__all__ = ["ContextualLoss", "contextual_similarity", "largest_square_input"]
