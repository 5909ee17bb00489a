"""Gradient magnitude similarity deviation: GMSD (Xue et al. 2014) and MS-GMSD (Zhang et al. 2017).

GMSD compares the *gradient magnitudes* of two images pixel by pixel with the similarity
``gms = (2 m_p m_t + c) / (m_p^2 + m_t^2 + c)`` and reports how *unevenly* that similarity is
spread: the standard deviation of the map over the image. A uniform loss of contrast costs less
than a local one; a blur, which erases gradients at edges only, costs a lot. It is a
*deviation*: 0 for identical images, larger is worse, and the loss is the index as it is.

Conventions (those of the reference implementation, piq 0.8):

- colour: an RGB image is reduced to the Y channel of YIQ (BT.601 luma ``0.299, 0.587, 0.114``);
  a 1-channel view is used as it is;
- GMSD first halves the image (2 x 2 block mean; an odd side gets one zero row/column at the
  bottom/right), then takes Prewitt gradients (3 x 3, divided by 3, zero padding), magnitudes,
  the map with ``c = 170 / 255^2`` (in ``[0, 1]`` units), and the population standard deviation;
- MS-GMSD: no initial halving; four scales (halving between them) with the weights
  ``(0.096, 0.596, 0.289, 0.019)``, a masked map ``(2ab - alpha ab + c) / (a^2 + b^2 - alpha ab
  + c)`` with ``alpha = 0.5`` and ``c = 170`` in ``[0, 255]`` units (the same ``170 / 255^2`` in
  ``[0, 1]`` units), combined as ``sqrt(sum_s w_s gmsd_s^2)``; the colour variant MS-GMSDc
  (``chromatic=true``) mixes in the RMSE of the I and Q channels (in ``[0, 255]`` units).

References:
    W. Xue, L. Zhang, X. Mou, A. C. Bovik, "Gradient Magnitude Similarity Deviation: A Highly
    Efficient Perceptual Image Quality Index", IEEE TIP 23(2), 2014.
    B. Zhang, P. V. Sander, A. Bermak, "Gradient magnitude similarity deviation on multiple
    scales for color image quality assessment", ICASSP 2017.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from losslab.core.validation import Reduction, check_pair
from losslab.losses._index import QualityIndexLoss
from losslab.losses._similarity import (
    YIQ_MATRIX,
    colour_transform,
    halve,
    prewitt_magnitude,
    safe_sqrt,
    similarity_map,
)
from losslab.losses.registry import register_loss
from losslab.losses.views import ViewLike

#: GMSD's stability constant ``T = 170`` for ``[0, 255]`` images, here in ``[0, 1]`` units.
GMSD_CONSTANT = 170.0 / 255.0**2
#: MS-GMSD scale weights (Zhang et al. 2017), finest first.
MS_GMSD_WEIGHTS = (0.096, 0.596, 0.289, 0.019)


def _luma_or_grey(images: Tensor) -> Tensor:
    """Y of YIQ for RGB ``(N, 3, H, W)``, the image itself for ``(N, 1, H, W)``."""
    if images.shape[1] == 3:
        return colour_transform(images, YIQ_MATRIX[:1])
    return images


def _deviation(prediction: Tensor, target: Tensor, constant: float, alpha: float = 0.0) -> Tensor:
    """Population standard deviation ``(N,)`` of the gradient magnitude similarity map."""
    gms = similarity_map(prewitt_magnitude(prediction), prewitt_magnitude(target), constant, alpha)
    centred = gms - gms.mean(dim=(1, 2, 3), keepdim=True)
    return safe_sqrt((centred * centred).mean(dim=(1, 2, 3)))


def gmsd(prediction: Tensor, target: Tensor, *, constant: float = GMSD_CONSTANT) -> Tensor:
    """Per-image GMSD ``(N,)`` of ``(N, 1 or 3, H, W)`` images in ``[0, 1]`` (0 when equal).

    Args:
        prediction, target: RGB (reduced to Y of YIQ) or greyscale, ``H, W >= 2``.
        constant: the stability constant in ``[0, 1]`` units (``170 / 255^2``).

    Returns:
        ``(N,)`` deviations, >= 0 (at most about 0.5 in practice).
    """
    check_pair(prediction, target, min_size=2)
    return _deviation(halve(_luma_or_grey(prediction)), halve(_luma_or_grey(target)), constant)


def ms_gmsd(
    prediction: Tensor,
    target: Tensor,
    *,
    weights: Sequence[float] = MS_GMSD_WEIGHTS,
    alpha: float = 0.5,
    constant: float = GMSD_CONSTANT,
    chromatic: bool = False,
    beta1: float = 0.01,
    beta2: float = 0.32,
    beta3: float = 15.0,
) -> Tensor:
    """Per-image MS-GMSD ``(N,)`` (MS-GMSDc with ``chromatic=True``); 0 when equal.

    Args:
        prediction, target: ``(N, 1 or 3, H, W)`` in ``[0, 1]``, ``H, W >= 2^len(weights) + 1``.
        weights: one weight per scale, finest first (normalised to sum 1 when not the default).
        alpha: masking coefficient of the similarity map.
        constant: stability constant in ``[0, 1]`` units (``170 / 255^2``).
        chromatic: add the chroma term of MS-GMSDc (RGB only): ``gamma * d + (1 - gamma) * beta1
            * rmse_IQ`` with ``gamma = 2 / (1 + beta2 exp(-beta3 d)) - 1`` and ``rmse_IQ`` in
            ``[0, 255]`` units, ``d`` the MS-GMSD.
    """
    check_pair(prediction, target, min_size=2 ** len(weights) + 1)
    total = sum(weights)
    weights = [w / total for w in weights]
    if prediction.shape[1] == 3:
        # Y alone unless the chroma term needs I and Q: a third of the halving work.
        matrix = YIQ_MATRIX if chromatic else YIQ_MATRIX[:1]
        prediction, target = (colour_transform(x, matrix) for x in (prediction, target))
    elif chromatic:
        raise ValueError("MS-GMSDc (chromatic=true) needs RGB images; got 1 channel.")
    squares: Tensor | None = None
    for scale, weight in enumerate(weights):
        if scale:
            prediction, target = halve(prediction), halve(target)
        value = _deviation(prediction[:, :1], target[:, :1], constant, alpha)
        squares = weight * value * value if squares is None else squares + weight * value * value
    score = safe_sqrt(squares)  # type: ignore[arg-type]
    if not chromatic:
        return score
    # The chroma term of MS-GMSDc is defined on [0, 255] values.
    chroma = 255.0 * (prediction[:, 1:] - target[:, 1:])
    rmse = safe_sqrt((chroma * chroma).mean(dim=(2, 3)).sum(dim=1))
    gamma = 2.0 / (1.0 + beta2 * torch.exp(-beta3 * score)) - 1.0
    return gamma * score + (1.0 - gamma) * beta1 * rmse


@register_loss("gmsd", positional=("view",))
class GMSDLoss(QualityIndexLoss):
    """Gradient magnitude similarity deviation (Xue et al. 2014), a deviation: 0 when equal.

    The standard deviation over the image of the gradient magnitude similarity (Prewitt, on the
    half-resolution Y of YIQ); a blur that erases edges costs much more than a uniform change.
    Used as it is (a deviation). See :mod:`losslab.losses.gmsd` for the exact convention
    (that of piq).

    Args:
        view: ``rgb`` (default: Y of YIQ, as the paper) or a single-channel view (``luma``,
            ``red``, ...).
        reduction: ``'mean'`` / ``'sum'`` over images, or ``'none'`` for ``(N,)``.
        lowpass, highpass: optional spatial view (pyramid level), after the colour view.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` or ``(N, 1, H, W)``, ``H, W >= 4``.
        - output: scalar, or ``(N,)`` for ``reduction='none'``; >= 0, 0 when equal.

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> float(GMSDLoss()(x, x))
        0.0
    """

    min_size = 4
    edge_sign_blind = True  # compares Prewitt magnitudes only

    def index(self, prediction: Tensor, target: Tensor) -> Tensor:
        return gmsd(prediction, target)


@register_loss("ms_gmsd", positional=("view",), aliases=("msgmsd",))
class MSGMSDLoss(QualityIndexLoss):
    """Multi-scale GMSD (Zhang et al. 2017), a deviation: 0 when equal.

    GMSD with a masked similarity map at four scales, weights ``(0.096, 0.596, 0.289, 0.019)``;
    ``chromatic=true`` gives MS-GMSDc (adds the I/Q chroma error). Used as it is (a deviation).
    See :mod:`losslab.losses.gmsd` for the exact convention (that of piq).

    Args:
        view: ``rgb`` (default: Y of YIQ, IQ for the chroma term) or a single-channel view.
        scale_weights: one weight per scale, finest first (default the paper's four).
        alpha: masking coefficient of the similarity map (default 0.5).
        chromatic: MS-GMSDc: add the chroma term (RGB only).
        reduction: ``'mean'`` / ``'sum'`` over images, or ``'none'`` for ``(N,)``.
        lowpass, highpass: optional spatial view (pyramid level), after the colour view.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` or ``(N, 1, H, W)``, ``H, W >= 2^scales + 1``
          (17 for four scales).
        - output: scalar, or ``(N,)`` for ``reduction='none'``; >= 0, 0 when equal.
    """

    edge_sign_blind = True  # compares Prewitt magnitudes only (the chroma term aside)

    def __init__(
        self,
        view: ViewLike = "rgb",
        scale_weights: Sequence[float] = MS_GMSD_WEIGHTS,
        alpha: float = 0.5,
        chromatic: bool = False,
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
        weights = [float(w) for w in ([scale_weights] if isinstance(scale_weights, (int, float))
                                      else scale_weights)]
        if not weights or len(weights) > 8 or any(not (w >= 0 and math.isfinite(w)) for w in weights) \
                or sum(weights) <= 0:
            raise ValueError(
                f"ms_gmsd scale_weights must be 1 to 8 non-negative numbers with a positive sum, "
                f"finest scale first; got {scale_weights!r}. Example: scale_weights=0.2,0.5,0.3."
            )
        if not (isinstance(alpha, (int, float)) and 0.0 <= alpha < 2.0):
            raise ValueError(f"ms_gmsd alpha must be a number in [0, 2); got {alpha!r}.")
        if not isinstance(chromatic, bool):
            raise ValueError(f"ms_gmsd chromatic must be true or false; got {chromatic!r}.")
        if chromatic and self.view.out_channels == 1:
            raise ValueError(
                f"ms_gmsd(chromatic=true) needs the rgb view (its chroma term uses I and Q); got "
                f"the single-channel view {self.view.name!r}."
            )
        self.scale_weights = tuple(weights)
        self.alpha = float(alpha)
        self.chromatic = chromatic
        self.min_size = 2 ** len(weights) + 1

    def index(self, prediction: Tensor, target: Tensor) -> Tensor:
        return ms_gmsd(
            prediction, target, weights=self.scale_weights, alpha=self.alpha,
            chromatic=self.chromatic,
        )
