"""Haar wavelet-based perceptual similarity index, HaarPSI (Reisenhofer et al. 2018), as a loss.

HaarPSI compares the magnitudes of Haar wavelet responses (horizontal and vertical, at the two
finest scales) of two images with a similarity ``(2 a b + C) / (a^2 + b^2 + C)``, weights each
pixel by how strong the coarsest-scale response is there (where the eye looks), squashes the
weighted mean through a logistic function and maps it back:
``HaarPSI = (logit(sum_i w_i sigmoid(alpha s_i) / sum_i w_i) / alpha)^2`` in ``[0, 1]``, 1 for
identical images. It is a *similarity*: the loss is ``1 - HaarPSI``.

Conventions (those of the reference implementation, piq 0.8, for ``[0, 255]`` values):

- an RGB image is converted to YIQ; the structure term uses Y, the chroma term (RGB only)
  compares ``|2 x 2 mean|`` of I and Q (one zero column/row padded at the right/bottom); a
  1-channel view gives the greyscale index (no chroma term);
- with ``subsample`` (default) the image is first halved (2 x 2 block mean, an odd side gets
  one zero row/column at the bottom/right);
- scale ``s`` (``s = 0, 1, 2``) uses the ``2^(s+1)`` square Haar filter (``+1/k`` upper half,
  ``-1/k`` lower half, and its transpose), zero padding ``k/2 - 1`` before and ``k/2`` after;
- ``C = 30`` and ``alpha = 4.2`` (for ``[0, 255]`` values; images are scaled by 255 inside);
  a machine-epsilon term guards the weighted mean.

Reference:
    R. Reisenhofer, S. Bosse, G. Kutyniok, T. Wiegand, "A Haar wavelet-based perceptual
    similarity index for image quality assessment", Signal Processing: Image Communication 61,
    2018.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.filters import channels_last
from losslab.core.validation import Reduction, check_pair
from losslab.losses._index import QualityIndexLoss
from losslab.losses._similarity import YIQ_MATRIX, colour_transform, halve, similarity_map
from losslab.losses.registry import register_loss
from losslab.losses.views import ViewLike


def _haar_responses(luma: Tensor, scales: int) -> Tensor:
    """``(N, 1, H, W) -> (N, 2 * scales, H, W)``: per scale, the row-difference and
    column-difference Haar responses (zero padding keeps the size).

    Both orientations of a scale are one 2-D convolution with two output channels (measured
    faster here than the separable form, four 1-D passes, for the sizes used: k = 2, 4, 8).
    """
    responses = []
    for scale in range(scales):
        size = 2 ** (scale + 1)
        half = size // 2
        step = torch.cat((torch.ones(half), -torch.ones(half))).to(luma) / size
        vertical = step.view(size, 1).expand(size, size)  # upper half +, lower half -
        kernels = torch.stack((vertical, vertical.t())).unsqueeze(1)
        padded = channels_last(F.pad(luma, (half - 1, half, half - 1, half)))
        responses.append(F.conv2d(padded, kernels))
    return torch.cat(responses, dim=1)


def haarpsi(
    prediction: Tensor,
    target: Tensor,
    *,
    scales: int = 3,
    subsample: bool = True,
    constant: float = 30.0,
    alpha: float = 4.2,
) -> Tensor:
    """Per-image HaarPSI ``(N,)`` in ``[0, 1]`` (1 for identical images).

    Args:
        prediction, target: ``(N, 3, H, W)`` RGB or ``(N, 1, H, W)`` greyscale in ``[0, 1]``,
            ``H, W >= 2^(scales + 1)``.
        scales: Haar scales (the coarsest gives the weights, the others the similarities).
        subsample: halve the images first (the paper's default).
        constant, alpha: the paper's ``C`` and ``alpha`` for ``[0, 255]`` values.
    """
    check_pair(prediction, target, min_size=2 ** (scales + 1))
    prediction, target = 255.0 * prediction, 255.0 * target
    colour = prediction.shape[1] == 3
    if colour:
        prediction, target = (colour_transform(x, YIQ_MATRIX) for x in (prediction, target))
    if subsample:
        prediction, target = halve(prediction), halve(target)
    responses_p = _haar_responses(prediction[:, :1], scales)
    responses_t = _haar_responses(target[:, :1], scales)
    coarsest = slice(2 * (scales - 1), 2 * scales)
    weights = torch.maximum(responses_p[:, coarsest].abs(), responses_t[:, coarsest].abs())
    maps = []
    for orientation in range(2):
        finer = [orientation + 2 * scale for scale in range(scales - 1)]
        similarity = similarity_map(
            responses_p[:, finer].abs(), responses_t[:, finer].abs(), constant
        )
        maps.append(similarity.mean(dim=1, keepdim=True))
    if colour:
        # |2 x 2 mean| of I and Q (one zero column/row after the last), compared like the rest.
        chroma_p = F.avg_pool2d(F.pad(prediction[:, 1:], (0, 1, 0, 1)), 2, stride=1).abs()
        chroma_t = F.avg_pool2d(F.pad(target[:, 1:], (0, 1, 0, 1)), 2, stride=1).abs()
        maps.append(similarity_map(chroma_p, chroma_t, constant).mean(dim=1, keepdim=True))
        weights = torch.cat((weights, weights.mean(dim=1, keepdim=True)), dim=1)
    similarity = torch.cat(maps, dim=1)
    eps = torch.finfo(similarity.dtype).eps
    pooled = ((torch.sigmoid(alpha * similarity) * weights).sum(dim=(1, 2, 3)) + eps) / (
        weights.sum(dim=(1, 2, 3)) + eps
    )
    return (torch.logit(pooled) / alpha) ** 2


@register_loss("haarpsi", positional=("view",))
class HaarPSILoss(QualityIndexLoss):
    """One minus HaarPSI (Reisenhofer et al. 2018): Haar wavelet similarity, a similarity index.

    Compares Haar wavelet magnitudes at the finest scales, weighted by the coarsest scale's
    response (plus I/Q chroma for RGB). The loss is ``1 - index`` (the index is a similarity,
    1 for identical images). See :mod:`losslab.losses.haarpsi` for the exact convention (that of
    piq).

    Args:
        view: ``rgb`` (default: YIQ, with the chroma term) or a single-channel view (greyscale
            HaarPSI).
        scales: Haar scales (default 3).
        subsample: halve the images first (default true, as the paper).
        reduction: ``'mean'`` / ``'sum'`` over images, or ``'none'`` for ``(N,)``.
        lowpass, highpass: optional spatial view (pyramid level), after the colour view.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` or ``(N, 1, H, W)``, ``H, W >= 2^(scales + 1)``
          (16 for 3 scales).
        - output: scalar, or ``(N,)`` for ``reduction='none'``; in ``[0, 1]``, 0 when equal.
    """

    edge_sign_blind = True  # compares |Haar responses| (and |I|, |Q| means) only

    index_kind = "similarity"

    def __init__(
        self,
        view: ViewLike = "rgb",
        scales: int = 3,
        subsample: bool = True,
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
        if isinstance(scales, bool) or not isinstance(scales, int) or not 2 <= scales <= 6:
            raise ValueError(
                f"haarpsi scales must be an integer from 2 to 6 (the coarsest gives the weights); "
                f"got {scales!r}."
            )
        if not isinstance(subsample, bool):
            raise ValueError(f"haarpsi subsample must be true or false; got {subsample!r}.")
        self.scales = scales
        self.subsample = subsample
        self.min_size = 2 ** (scales + 1)

    def index(self, prediction: Tensor, target: Tensor) -> Tensor:
        return haarpsi(prediction, target, scales=self.scales, subsample=self.subsample)


