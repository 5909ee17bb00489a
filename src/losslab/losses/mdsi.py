"""Mean deviation similarity index, MDSI (Nafchi et al. 2016), as a loss.

MDSI joins a *gradient* similarity and a *chromaticity* similarity per pixel and reports how far
the joint map deviates from its mean. The gradient part compares the Prewitt gradient magnitudes
of the two luminances, and also each against the magnitude of their *average* image (which
catches edges that appear or vanish, where the plain comparison is lenient); the chromatic part
compares the two chromaticity channels of the LHM space. The deviation is taken on the
``q``-th power of the map as a complex number (a negative joint similarity has a phase), with a
mean absolute deviation pooled by a final power ``o``. MDSI is a *deviation*: 0 for identical
images, larger is worse; the loss is the index as it is.

Conventions (those of the reference implementation, piq 0.8, for ``[0, 255]`` values; images
are scaled by 255 inside):

- RGB only: a 1-channel view is repeated to three channels (as piq does, with the same
  caveat: the chromatic term is then constant);
- images larger than 383 px on the short side are first averaged over ``k x k`` blocks,
  ``k = round(min(H, W) / 256)`` (zero padding ``(k - 1) // 2`` before and ``k // 2`` after);
- LHM: ``L = 0.2989 R + 0.587 G + 0.114 B``, ``H = 0.30 R + 0.04 G - 0.35 B``,
  ``M = 0.34 R - 0.60 G + 0.17 B``; Prewitt gradients (3 x 3 / 3, zero padding);
- ``GS = S(g_p, g_t; C1) + S(g_p, g_a; C2) - S(g_t, g_a; C2)`` with ``g_a`` the gradient
  magnitude of ``(L_p + L_t) / 2``; ``CS = (2 (H_p H_t + M_p M_t) + C3) / (H_p^2 + H_t^2 +
  M_p^2 + M_t^2 + C3)``; ``C1, C2, C3 = 140, 55, 550``;
- ``'sum'`` combination ``GCS = alpha GS + (1 - alpha) CS`` (``alpha = 0.6``) or ``'mult'``
  ``GCS = GS^gamma CS^beta`` (``gamma = 0.2``, ``beta = 0.1``, complex powers);
- ``MDSI = mean_i(|GCS_i^q - mean_j GCS_j^q|^rho)^(o / rho)`` with ``q = o = 0.25``,
  ``rho = 1`` and complex powers (principal branch).

Difference from piq: for ``'mult'`` piq multiplies the real parts and adds the imaginary parts
of ``GS^gamma`` and ``CS^beta``; here they are multiplied as complex numbers (the paper's
product). The two agree wherever ``GS >= 0`` (measured on photos: within 7e-6 for noise and blur,
2.5e-3 apart for a mirrored image, where ``GS < 0`` is common). ``'sum'`` (the default) agrees
with piq to rounding.

Reference:
    H. Z. Nafchi, A. Shahkolaei, R. Hedjam, M. Cheriet, "Mean Deviation Similarity Index:
    Efficient and Reliable Full-Reference Image Quality Evaluator", IEEE Access 4, 2016.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.validation import Reduction, check_choice, check_pair
from losslab.losses._index import QualityIndexLoss
from losslab.losses._similarity import (
    LHM_MATRIX,
    colour_transform,
    prewitt_magnitude,
    safe_power,
    safe_sqrt,
    similarity_map,
)
from losslab.losses.registry import register_loss
from losslab.losses.views import ViewLike

Combination = Literal["sum", "mult"]


def _complex_power(magnitude: Tensor, phase: Tensor, exponent: float) -> tuple[Tensor, Tensor]:
    """``(r e^{i phi})^exponent`` on the principal branch as ``(real, imaginary)``."""
    powered = safe_power(magnitude, exponent)
    angle = phase * exponent
    return powered * torch.cos(angle), powered * torch.sin(angle)


def _polar(values: Tensor) -> tuple[Tensor, Tensor]:
    """Magnitude and phase (0 or pi) of a real tensor seen as complex numbers."""
    return values.abs(), torch.where(values < 0, torch.full_like(values, math.pi),
                                     torch.zeros_like(values))


def mdsi(
    prediction: Tensor,
    target: Tensor,
    *,
    combination: Combination = "sum",
    c1: float = 140.0,
    c2: float = 55.0,
    c3: float = 550.0,
    alpha: float = 0.6,
    beta: float = 0.1,
    gamma: float = 0.2,
    rho: float = 1.0,
    q: float = 0.25,
    o: float = 0.25,
) -> Tensor:
    """Per-image MDSI ``(N,)`` of RGB ``(N, 3, H, W)`` images in ``[0, 1]``; 0 when equal.

    A ``(N, 1, H, W)`` input is repeated to three channels. Constants are the paper's (for
    ``[0, 255]`` values); see the module docstring for the formula.
    """
    check_pair(prediction, target, min_size=2)
    if prediction.shape[1] == 1:
        prediction, target = prediction.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
    prediction, target = 255.0 * prediction, 255.0 * target
    size = max(1, round(min(prediction.shape[-2:]) / 256))
    if size > 1:
        before, after = (size - 1) // 2, size // 2
        prediction, target = (
            F.avg_pool2d(F.pad(x, (before, after, before, after)), size)
            for x in (prediction, target)
        )
    lhm_p, lhm_t = colour_transform(prediction, LHM_MATRIX), colour_transform(target, LHM_MATRIX)
    luma_p, luma_t = lhm_p[:, :1], lhm_t[:, :1]
    gradient_p, gradient_t = prewitt_magnitude(luma_p), prewitt_magnitude(luma_t)
    gradient_mean = prewitt_magnitude((luma_p + luma_t) / 2.0)
    gradient_similarity = (
        similarity_map(gradient_p, gradient_t, c1)
        + similarity_map(gradient_p, gradient_mean, c2)
        - similarity_map(gradient_t, gradient_mean, c2)
    )
    h_p, m_p, h_t, m_t = lhm_p[:, 1:2], lhm_p[:, 2:], lhm_t[:, 1:2], lhm_t[:, 2:]
    chroma_similarity = (2.0 * (h_p * h_t + m_p * m_t) + c3) / (
        h_p * h_p + h_t * h_t + m_p * m_p + m_t * m_t + c3
    )
    if combination == "sum":
        magnitude, phase = _polar(alpha * gradient_similarity + (1.0 - alpha) * chroma_similarity)
    else:
        check_choice("combination", combination, ("sum", "mult"))
        # GS^gamma * CS^beta as complex numbers: magnitudes multiply, phases add.
        gs_magnitude, gs_phase = _polar(gradient_similarity)
        cs_magnitude, cs_phase = _polar(chroma_similarity)
        real = safe_power(gs_magnitude, gamma) * safe_power(cs_magnitude, beta)
        angle = gs_phase * gamma + cs_phase * beta
        product_real, product_imaginary = real * torch.cos(angle), real * torch.sin(angle)
        magnitude = safe_sqrt(product_real * product_real + product_imaginary * product_imaginary)
        phase = torch.atan2(product_imaginary, product_real)
    real, imaginary = _complex_power(magnitude, phase, q)
    real_dev = real - real.mean(dim=(2, 3), keepdim=True)
    imaginary_dev = imaginary - imaginary.mean(dim=(2, 3), keepdim=True)
    deviation = safe_sqrt(real_dev * real_dev + imaginary_dev * imaginary_dev)
    if rho != 1.0:
        deviation = safe_power(deviation, rho)
    return safe_power(deviation.mean(dim=(1, 2, 3)), o / rho)


@register_loss("mdsi", positional=("view",))
class MDSILoss(QualityIndexLoss):
    """Mean deviation similarity index (Nafchi et al. 2016), a deviation: 0 when equal.

    Joint gradient (with the average image) and LHM chromaticity similarity per pixel; the
    index is the mean deviation of its ``q``-th power. Used as it is (a deviation, smaller is
    better). See :mod:`losslab.losses.mdsi` for the exact convention (that of piq).

    Args:
        view: ``rgb`` (default) or a single-channel view (repeated to RGB; the chromatic term
            is then constant).
        combination: ``'sum'`` (default, ``0.6 GS + 0.4 CS``) or ``'mult'`` (``GS^0.2 CS^0.1``).
        reduction: ``'mean'`` / ``'sum'`` over images, or ``'none'`` for ``(N,)``.
        lowpass, highpass: optional spatial view (pyramid level), after the colour view.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` or ``(N, 1, H, W)``, ``H, W >= 3``.
        - output: scalar, or ``(N,)`` for ``reduction='none'``; >= 0 (about 0.5 at most), 0 when
          equal.
    """

    min_size = 3

    def __init__(
        self,
        view: ViewLike = "rgb",
        combination: Combination = "sum",
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
        self.combination = check_choice("combination", combination, ("sum", "mult"))

    def index(self, prediction: Tensor, target: Tensor) -> Tensor:
        return mdsi(prediction, target, combination=self.combination)  # type: ignore[arg-type]
