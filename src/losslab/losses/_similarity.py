"""Pieces shared by the gradient-based quality indices (GMSD, MS-GMSD, HaarPSI, MDSI).

- :func:`safe_sqrt` / :func:`safe_power`: roots whose gradient is 0 (not NaN) at 0, so an index
  can be a training loss even where two images agree exactly (a flat region, identical images).
- :func:`similarity_map`: the ratio ``(2 a b + c) / (a^2 + b^2 + c)`` used by all of them.
- :func:`prewitt_magnitude`: the Prewitt gradient magnitude (3 x 3, divided by 3, zero padding).
- :func:`halve`: the 2 x 2 block mean used before GMSD, between MS-GMSD scales and before HaarPSI
  (an odd side first gets one zero row/column at the bottom/right, as in the reference
  implementations).
- the colour transforms of these papers: YIQ (NTSC; its Y is BT.601 luma) and LHM (MDSI).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.filters import channels_last

#: RGB -> YIQ (NTSC 1953, rows Y, I, Q), as used by GMSD, MS-GMSD and HaarPSI.
YIQ_MATRIX = (
    (0.299, 0.587, 0.114),
    (0.5959, -0.2746, -0.3213),
    (0.2115, -0.5227, 0.3112),
)
#: RGB -> LHM (luminance and two chromatic channels, Nafchi et al. 2016, MDSI).
LHM_MATRIX = (
    (0.2989, 0.587, 0.114),
    (0.3, 0.04, -0.35),
    (0.34, -0.6, 0.17),
)


def colour_transform(images: Tensor, matrix: tuple[tuple[float, ...], ...]) -> Tensor:
    """``(N, 3, H, W) -> (N, K, H, W)``: ``out_k = sum_c M[k][c] x_c`` for a ``(K, 3)`` matrix.

    One row (a luma) is a weighted sum of the channel planes (measured 1.6x faster than a
    matrix product, forward + backward, and its result pools faster); several rows are one
    matrix product over the pixels, whose result is in channels-last memory order, the order in
    which the CPU convolutions that follow are fastest.
    """
    if len(matrix) == 1:
        r, g, b = matrix[0]
        return r * images[:, 0:1] + g * images[:, 1:2] + b * images[:, 2:3]
    weights = torch.tensor(matrix, dtype=images.dtype, device=images.device)
    return (images.permute(0, 2, 3, 1) @ weights.t()).permute(0, 3, 1, 2)


def safe_sqrt(values: Tensor) -> Tensor:
    """``sqrt(values)`` for ``values >= 0`` with gradient 0 at 0 (``torch.sqrt`` gives inf/NaN).

    The clamp keeps the unselected branch's slope finite (``0 * inf`` would still be NaN).
    """
    tiny = torch.finfo(values.dtype).tiny
    return torch.where(values > 0, values.clamp_min(tiny).sqrt(), 0.0)


def safe_power(values: Tensor, exponent: float) -> Tensor:
    """``values ** exponent`` for ``values >= 0``, ``0 < exponent < 1``, gradient 0 at 0."""
    tiny = torch.finfo(values.dtype).tiny
    return torch.where(values > 0, values.clamp_min(tiny) ** exponent, 0.0)


def magnitude(squared: Tensor) -> Tensor:
    """``sqrt(squared + 1e-12)``: a gradient magnitude whose slope stays finite at 0.

    Cheaper than :func:`safe_sqrt` on whole maps (two passes instead of four); the offset moves a
    zero magnitude to 1e-6, far below the stability constants of the indices (``170 / 255^2``
    for GMSD in ``[0, 1]`` units, 140 for MDSI in ``[0, 255]`` units), and is the same for both
    images, so identical images still give identical maps.
    """
    return (squared + 1e-12).sqrt()


def similarity_map(a: Tensor, b: Tensor, constant: float, alpha: float = 0.0) -> Tensor:
    """``(2ab - alpha ab + c) / (a^2 + b^2 - alpha ab + c)`` elementwise (1 where ``a == b``).

    ``alpha`` is MS-GMSD's masking coefficient (0 for the plain ratio).
    """
    product = a * b
    if alpha:
        return ((2.0 - alpha) * product + constant) / (a * a + b * b - alpha * product + constant)
    return (2.0 * product + constant) / (a * a + b * b + constant)


def prewitt_magnitude(images: Tensor) -> Tensor:
    """Prewitt gradient magnitude ``(N, 1, H, W) -> (N, 1, H, W)`` (zero padding of 1 pixel).

    Horizontal kernel ``[[-1, 0, 1]] * 3 / 3`` (cross-correlation) and its transpose; the
    magnitude is ``sqrt(gx^2 + gy^2)`` (see :func:`magnitude` for the guard at 0).
    """
    row = torch.tensor([-1.0, 0.0, 1.0], dtype=images.dtype, device=images.device) / 3.0
    horizontal = row.view(1, 3).expand(3, 3)
    kernels = torch.stack((horizontal, horizontal.t())).unsqueeze(1)
    gradients = F.conv2d(channels_last(images), kernels, padding=1)
    return magnitude((gradients * gradients).sum(dim=1, keepdim=True))


def halve(images: Tensor) -> Tensor:
    """2 x 2 block mean ``(N, C, H, W) -> (N, C, ceil'(H/2), ceil'(W/2))``.

    If either side is odd, *both* sides first get one zero row/column at the bottom/right (the
    convention of piq's GMSD/HaarPSI; with two odd sides that is the same as zero ceil-padding).
    """
    pad = max(images.shape[-2] % 2, images.shape[-1] % 2)
    if pad:
        images = F.pad(images, (0, pad, 0, pad))
    return F.avg_pool2d(images, kernel_size=2, stride=2)
