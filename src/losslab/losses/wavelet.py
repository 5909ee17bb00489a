"""Wavelet sub-band distance (``wavelet``): compare images band by band of a 2-D wavelet transform.

The viewed images are decomposed into ``levels`` levels of detail sub-bands (three orientations
per level: ``LH``, ``HL``, ``HH``) plus the coarsest approximation ``LL``, and every band is
compared on its own::

    wavelet(p, t) = sum_b w_b * mean_{c, orientations, positions} d(W_b p, W_b t) / sum_b w_b

with ``b`` running over the detail levels ``1`` (finest) .. ``levels`` and the approximation,
``d`` the absolute (``distance='l1'``, default) or squared (``'mse'``) difference, and ``w_b``
the ``band_weights`` (default all 1). Each band is averaged over its own coefficients, so a
coarse band of few coefficients weighs as much as the finest one unless ``band_weights`` says
otherwise; weighting the detail bands up (``band_weights=[4, 2, 1, 1]``) is how SR trainers
use it against over-smoothing: a blur removes detail coefficients, which a pixel loss averages
with all the unchanged low-frequency content.

Transform (the coefficients equal ``ptwt`` 1.0's, checked in ``tests/losses/test_wavelet.py``):

- ``mode='decimated'``: the fast wavelet transform (``ptwt.wavedec2``), boundary ``reflect``
  (ptwt's default): each level pads the approximation by ``(2L - 3) // 2`` samples on the
  top/left and as many plus ``size % 2`` on the bottom/right (``L`` = filter length), filters
  with the four outer products of the analysis filters and keeps every second sample; level
  ``j`` has about ``H / 2^j x W / 2^j`` coefficients.
- ``mode='stationary'``: the undecimated (à trous) transform, every band at full size, the
  filters dilated by ``2^(j-1)`` at level ``j``, periodic boundary: the same coefficients as
  ``ptwt.swt`` applied along the rows and then the columns (ptwt has only the periodic boundary
  for it). A one-pixel shift of both images shifts every band by one pixel: it is shift-
  equivariant, which the decimated transform is not.

Wavelets: ``haar`` (= ``db1``), ``db2``, ``db3``, ``db4`` (orthonormal Daubechies) and the
biorthogonal (Cohen-Daubechies-Feauveau) ``bior2.2`` (5/3) and ``bior4.4`` (9/7, the JPEG 2000
lossy filters), with PyWavelets' filter conventions. With an orthonormal wavelet the
coefficients of level ``j``'s approximation are ``2^j`` times local means, so coarse bands have
larger values: ``band_weights`` is where that is balanced.

Conventions: per image (``reduction='none'`` gives ``(N,)``), in ``[0, 1]`` units of the
colour/spatial view (absolute or squared), 0 for identical images.

References:
    S. Mallat, "A theory for multiresolution signal decomposition: the wavelet representation",
    IEEE TPAMI 1989 (the decimated transform); G. P. Nason, B. W. Silverman, "The stationary
    wavelet transform and some statistical applications", 1995; wavelet-domain SR losses: H. Huang
    et al., "Wavelet-SRNet", ICCV 2017, and C. Korkmaz, A. M. Tekalp, "Training transformer
    models by wavelet losses improves quantitative and visual performance in single image
    super-resolution", CVPR Workshops 2024.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.validation import Reduction, check_choice, check_image, reduce
from losslab.losses.registry import register_loss
from losslab.losses.views import ViewedLoss, ViewLike

WaveletMode = Literal["decimated", "stationary"]
WaveletDistance = Literal["l1", "mse"]

_S2 = math.sqrt(2.0)
_S3 = math.sqrt(3.0)

#: Analysis low-pass filters of the orthonormal wavelets (PyWavelets' ``dec_lo`` order); the
#: high-pass is the quadrature mirror ``dec_hi[k] = (-1)^(k+1) dec_lo[L-1-k]``.
_ORTHONORMAL_LOWPASS: dict[str, tuple[float, ...]] = {
    "haar": (1 / _S2, 1 / _S2),
    "db2": ((1 - _S3) / (4 * _S2), (3 - _S3) / (4 * _S2), (3 + _S3) / (4 * _S2),
            (1 + _S3) / (4 * _S2)),
    "db3": (0.03522629188570953, -0.08544127388202666, -0.13501102001025458,
            0.45987750211849154, 0.8068915093110925, 0.33267055295008263),
    "db4": (-0.010597401785069032, 0.0328830116668852, 0.030841381835560764,
            -0.18703481171909309, -0.027983769416859854, 0.6308807679298589,
            0.7148465705529157, 0.2303778133088965),
}
#: Analysis (low-pass, high-pass) filters of the biorthogonal CDF wavelets, zero-padded to a
#: common even length as PyWavelets stores them.
_BIORTHOGONAL: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "bior2.2": (
        tuple(_S2 * v for v in (0.0, -1 / 8, 1 / 4, 3 / 4, 1 / 4, -1 / 8)),
        tuple(_S2 * v for v in (0.0, 1 / 4, -1 / 2, 1 / 4, 0.0, 0.0)),
    ),
    "bior4.4": (
        (0.0, 0.03782845550726404, -0.023849465019556843, -0.11062440441843718,
         0.37740285561283066, 0.8526986790088938, 0.37740285561283066, -0.11062440441843718,
         -0.023849465019556843, 0.03782845550726404),
        (0.0, -0.06453888262869706, 0.04068941760916406, 0.41809227322161724,
         -0.7884856164055829, 0.41809227322161724, 0.04068941760916406, -0.06453888262869706,
         0.0, 0.0),
    ),
}
_ALIASES = {"db1": "haar"}
WAVELETS: tuple[str, ...] = (*_ORTHONORMAL_LOWPASS, "db1", *_BIORTHOGONAL)
MAX_LEVELS = 8


def analysis_filters(wave: str) -> tuple[Tensor, Tensor]:
    """The analysis ``(low-pass, high-pass)`` filters of ``wave`` as float64 ``(L,)`` tensors."""
    name = _ALIASES.get(check_choice("wave", wave, WAVELETS), wave)
    if name in _BIORTHOGONAL:
        low, high = _BIORTHOGONAL[name]
        return torch.tensor(low, dtype=torch.float64), torch.tensor(high, dtype=torch.float64)
    low_t = torch.tensor(_ORTHONORMAL_LOWPASS[name], dtype=torch.float64)
    signs = torch.tensor([(-1.0) ** (k + 1) for k in range(low_t.numel())], dtype=torch.float64)
    return low_t, signs * low_t.flip(0)


def band_filters(wave: str) -> Tensor:
    """The four 2-D analysis filters ``(4, 1, L, L)`` float64, ordered ``LL, LH, HL, HH``.

    ``LH`` = high-pass along the rows' direction (vertical, height axis) and low-pass along the
    width; flipped, so that ``conv2d`` (a correlation) applies the true convolution.
    """
    low, high = (f.flip(0) for f in analysis_filters(wave))
    bands = [torch.outer(a, b) for a, b in ((low, low), (high, low), (low, high), (high, high))]
    return torch.stack(bands).unsqueeze(1)


def _decimated_pad(size: int, length: int) -> tuple[int, int]:
    before = (2 * length - 3) // 2
    return before, before + size % 2


def _decimated_sizes(size: int, length: int, levels: int) -> list[int]:
    """Input side of every level (the last entry is the approximation's side)."""
    sizes = [size]
    for _ in range(levels):
        before, after = _decimated_pad(sizes[-1], length)
        sizes.append((sizes[-1] + before + after - length) // 2 + 1)
    return sizes


def wavelet_min_size(wave: str, levels: int, mode: WaveletMode) -> int:
    """Smallest image side the transform accepts (reflect / periodic padding must fit)."""
    length = analysis_filters(wave)[0].numel()
    if mode == "stationary":
        # Periodic padding of at most one period: the largest pad is 2^(levels-1) * L / 2.
        return max(2, 2 ** (levels - 1) * (length // 2))
    for size in range(2, 1 << 16):
        sizes = _decimated_sizes(size, length, levels)
        if all(_decimated_pad(s, length)[1] < s for s in sizes[:-1]):
            return size
    raise ValueError(f"no image size fits {levels} levels of {wave}.")  # unreachable in practice


def wavelet_bands(
    images: Tensor, wave: str = "haar", levels: int = 3, mode: WaveletMode = "decimated"
) -> list[Tensor]:
    """Wavelet sub-bands of every channel, finest level first, the approximation last.

    Args:
        images: ``(N, C, H, W)``, any values (the transform is linear).
        wave: a name of :data:`WAVELETS`.
        levels: decomposition levels ``>= 1``.
        mode: ``'decimated'`` (``ptwt.wavedec2``, reflect boundary) or ``'stationary'``
            (``ptwt.swt`` along both axes, periodic boundary).

    Returns:
        ``levels + 1`` tensors: ``(N, C, 3, h_j, w_j)`` detail bands (``LH, HL, HH``) of levels
        ``1 .. levels``, then the ``(N, C, h_L, w_L)`` approximation. Decimated sizes follow
        ptwt (``h_{j+1} = floor((h_j + L - 1) / 2)``); stationary bands are ``H x W``.
    """
    check_image(images, "images")
    mode = check_choice("mode", mode, ("decimated", "stationary"))  # type: ignore[assignment]
    n, c, h, w = images.shape
    filters = band_filters(wave).to(dtype=images.dtype, device=images.device)
    length = filters.shape[-1]
    approximation = images.reshape(n * c, 1, h, w)
    result: list[Tensor] = []
    for level in range(levels):
        if mode == "decimated":
            top, bottom = _decimated_pad(approximation.shape[-2], length)
            left, right = _decimated_pad(approximation.shape[-1], length)
            padded = F.pad(approximation, [left, right, top, bottom], mode="reflect")
            bands = F.conv2d(padded, filters, stride=2)
        else:
            dilation = 2**level
            before, after = dilation * (length // 2 - 1), dilation * (length // 2)
            padded = F.pad(approximation, [before, after, before, after], mode="circular")
            bands = F.conv2d(padded, filters, dilation=dilation)
        approximation = bands[:, :1]
        result.append(bands[:, 1:].reshape(n, c, 3, *bands.shape[-2:]))
    result.append(approximation.reshape(n, c, *approximation.shape[-2:]))
    return result


def _check_levels(levels: int) -> int:
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= MAX_LEVELS:
        raise ValueError(
            f"wavelet levels must be an integer from 1 to {MAX_LEVELS}; got {levels!r}. "
            "Example: wavelet(levels=3)."
        )
    return levels


def _check_band_weights(band_weights: Sequence[float] | float | None, levels: int) -> list[float]:
    if band_weights is None:
        return [1.0] * (levels + 1)
    raw = [band_weights] if isinstance(band_weights, (int, float)) else list(band_weights)
    if len(raw) != levels + 1:
        raise ValueError(
            f"wavelet band_weights needs levels + 1 = {levels + 1} weights (detail levels 1 "
            f"(finest) .. {levels}, then the approximation); got {len(raw)}: {raw}. "
            f"Example: band_weights=[{', '.join(['1'] * levels)}, 0] ignores the approximation."
        )
    values = [float(v) for v in raw]
    if any(not (v >= 0.0) or math.isinf(v) for v in values) or sum(values) <= 0.0:
        raise ValueError(f"wavelet band_weights must be finite, >= 0, with a positive sum; got {raw}.")
    return values


def wavelet_distance(
    prediction: Tensor,
    target: Tensor,
    wave: str = "haar",
    levels: int = 3,
    band_weights: Sequence[float] | None = None,
    mode: WaveletMode = "decimated",
    distance: WaveletDistance = "l1",
) -> Tensor:
    """Per-image weighted sub-band distance ``(N,)`` (formula in the module docstring).

    Args:
        prediction, target: ``(N, C, H, W)``, sides at least :func:`wavelet_min_size`.
        wave, levels, mode: the transform (see :func:`wavelet_bands`).
        band_weights: ``levels + 1`` non-negative weights (finest detail level first, the
            approximation last), normalised to sum 1; default all equal.
        distance: ``'l1'`` (absolute) or ``'mse'`` (squared) coefficient difference.

    Returns:
        ``(N,)`` >= 0, 0 when all compared bands agree.
    """
    levels = _check_levels(levels)
    weights = _check_band_weights(band_weights, levels)
    distance = check_choice("distance", distance, ("l1", "mse"))  # type: ignore[assignment]
    # The transform is linear: one decomposition of the difference gives every band difference.
    return _band_distance(prediction - target, wave, levels, weights, mode, distance)


def _band_distance(
    difference: Tensor, wave: str, levels: int, weights: list[float], mode: WaveletMode,
    distance: WaveletDistance,
) -> Tensor:
    bands = wavelet_bands(difference, wave, levels, mode)
    total = difference.new_zeros(difference.shape[0])
    for weight, band in zip(weights, bands, strict=True):
        if weight == 0.0:
            continue
        values = band.abs() if distance == "l1" else band * band
        total = total + weight * values.flatten(1).mean(dim=1)
    return total / sum(weights)


@register_loss("wavelet", positional=("view",), aliases=("wavelet_subband",))
class WaveletLoss(ViewedLoss):
    """Distance between wavelet sub-bands (Haar, Daubechies, CDF; decimated or stationary).

    ``sum_b w_b mean|W_b p - W_b t| / sum_b w_b`` over the detail levels (finest first) and the
    approximation of a 2-D wavelet transform of the viewed images (``distance='mse'`` squares
    the differences). See :mod:`losslab.losses.wavelet` for the transform's exact convention
    (it matches ``ptwt``).

    Args:
        view: colour view compared (``rgb``, ``luma``, ... or a ``(K, 3)`` matrix).
        wave: ``haar`` (default), ``db1``-``db4``, ``bior2.2`` or ``bior4.4``.
        levels: decomposition levels (default 3).
        band_weights: ``levels + 1`` weights, detail level 1 (finest) .. ``levels``, then the
            approximation (default all 1; normalised to sum 1).
        mode: ``'decimated'`` (default; ptwt ``wavedec2``, reflect boundary) or
            ``'stationary'`` (undecimated, shift-equivariant; periodic boundary).
        distance: ``'l1'`` (default) or ``'mse'``.
        reduction: ``'mean'`` / ``'sum'`` over images, or ``'none'`` for ``(N,)``.
        lowpass, highpass: optional spatial view, after the colour view.

    Shape:
        - prediction, target: ``(N, C, H, W)`` (``C = 3`` for a colour view), sides at least
          :func:`wavelet_min_size` (haar, 3 levels: 5 decimated, 4 stationary).
        - output: scalar, or ``(N,)`` for ``reduction='none'``; 0 for identical images.

    Example:
        >>> loss = WaveletLoss(levels=2, band_weights=[2, 1, 0])
        >>> x = torch.rand(2, 3, 32, 32)
        >>> float(loss(x, x))
        0.0
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        wave: str = "haar",
        levels: int = 3,
        band_weights: Sequence[float] | None = None,
        mode: WaveletMode = "decimated",
        distance: WaveletDistance = "l1",
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
        self.wave = _ALIASES.get(check_choice("wave", wave, WAVELETS), wave)
        self.levels = _check_levels(levels)
        self.band_weights = _check_band_weights(band_weights, self.levels)
        self.mode = check_choice("mode", mode, ("decimated", "stationary"))
        self.distance = check_choice("distance", distance, ("l1", "mse"))
        self.min_size = wavelet_min_size(self.wave, self.levels, self.mode)  # type: ignore[arg-type]

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        # Linear colour/spatial views and a linear transform: view the difference once.
        difference = prediction - target
        if not self.linear_view_is_identity:
            difference = self.viewed(difference)
        values = _band_distance(
            difference, self.wave, self.levels, self.band_weights, self.mode,  # type: ignore[arg-type]
            self.distance,  # type: ignore[arg-type]
        )
        return reduce(values, self.reduction)

    def extra_repr(self) -> str:
        return (f"wave={self.wave!r}, levels={self.levels}, band_weights={self.band_weights}, "
                f"mode={self.mode!r}, distance={self.distance!r}")


__all__ = [
    "WAVELETS",
    "WaveletLoss",
    "analysis_filters",
    "band_filters",
    "wavelet_bands",
    "wavelet_distance",
    "wavelet_min_size",
]
