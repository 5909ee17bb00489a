"""sRGB to CIE XYZ and CIE 1976 L*a*b*, differentiable: the conversions behind the colour
differences (CIEDE2000, ΔE*76) and FLIP.

Standards:

- sRGB (IEC 61966-2-1): the transfer function ``c <= 0.04045 ? c / 12.92 :
  ((c + 0.055) / 1.055)^2.4`` and the standard's RGB-to-XYZ matrix, given to four decimals in
  the standard (:data:`SRGB_TO_XYZ`, the matrix colour-science uses);
  :func:`srgb_to_xyz_matrix` also derives it exactly from the primaries and the D65 white point
  (FLIP's convention);
- CIELAB (CIE 15:2004) with the CIE's exact constants ``epsilon = (6/29)^3`` and ``kappa =
  (29/3)^3``, relative to the D65 white of the 2° observer, ``xy = (0.3127, 0.3290)``
  (:data:`D65_WHITE`, ``XYZ = (0.950456, 1, 1.089058)``).

Images are ``(N, 3, H, W)`` RGB in ``[0, 1]``; XYZ has ``Y = 1`` for white; L* is in
``[0, 100]``, a* and b* roughly in ``[-128, 128]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.core.validation import check_image

#: The IEC 61966-2-1 sRGB-to-XYZ matrix (D65), as printed in the standard (four decimals).
SRGB_TO_XYZ: tuple[tuple[float, float, float], ...] = (
    (0.4124, 0.3576, 0.1805),
    (0.2126, 0.7152, 0.0722),
    (0.0193, 0.1192, 0.9505),
)
#: Chromaticities ``(x, y)`` of the sRGB red, green and blue primaries and of D65.
SRGB_PRIMARIES: tuple[tuple[float, float], ...] = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
D65_CHROMATICITY: tuple[float, float] = (0.3127, 0.3290)
#: XYZ of the D65 white (``Y = 1``) from its chromaticity: the reference white of CIELAB here.
D65_WHITE: tuple[float, float, float] = (
    D65_CHROMATICITY[0] / D65_CHROMATICITY[1],
    1.0,
    (1.0 - D65_CHROMATICITY[0] - D65_CHROMATICITY[1]) / D65_CHROMATICITY[1],
)
#: CIELAB's linear-segment threshold ``(6/29)^3`` (CIE's exact value, not 0.008856).
LAB_EPSILON = (6.0 / 29.0) ** 3


def srgb_to_xyz_matrix(exact: bool = False, dtype: torch.dtype = torch.float64) -> Tensor:
    """``(3, 3)`` linear-sRGB-to-XYZ matrix: the standard's four-decimal table, or (``exact``)
    the one derived from the primaries and D65 (rows then sum to :data:`D65_WHITE` exactly)."""
    if not exact:
        return torch.tensor(SRGB_TO_XYZ, dtype=dtype)
    # Columns are the primaries' XYZ (Y = 1) scaled so that RGB (1, 1, 1) maps to the white.
    primaries = torch.tensor([[x / y, 1.0, (1.0 - x - y) / y] for x, y in SRGB_PRIMARIES],
                             dtype=torch.float64).T
    scale = torch.linalg.solve(primaries, torch.tensor(D65_WHITE, dtype=torch.float64))
    return (primaries * scale).to(dtype)


def srgb_to_linear(images: Tensor) -> Tensor:
    """Undo the sRGB transfer function (IEC 61966-2-1), elementwise, ``[0, 1] -> [0, 1]``."""
    # The clamp keeps the power's unselected branch finite (and its slope) below the knee.
    curved = ((images.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(images <= 0.04045, images / 12.92, curved)


def linear_to_srgb(images: Tensor) -> Tensor:
    """The sRGB transfer function (IEC 61966-2-1), elementwise, ``[0, 1] -> [0, 1]``."""
    curved = 1.055 * images.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055
    return torch.where(images <= 0.0031308, images * 12.92, curved)


def apply_matrix(images: Tensor, matrix: Tensor) -> Tensor:
    """``out_k = sum_c M[k, c] x_c`` for ``(N, 3, H, W)`` images and a ``(3, 3)`` matrix."""
    return torch.einsum("kc,nchw->nkhw", matrix.to(images), images)


def linear_rgb_to_xyz(images: Tensor, exact: bool = False) -> Tensor:
    """Linear sRGB ``(N, 3, H, W)`` to CIE XYZ (``Y = 1`` for white); see :func:`srgb_to_xyz_matrix`."""
    return apply_matrix(images, srgb_to_xyz_matrix(exact))


def xyz_to_linear_rgb(xyz: Tensor, exact: bool = False) -> Tensor:
    """Inverse of :func:`linear_rgb_to_xyz` (not clamped)."""
    return apply_matrix(xyz, torch.linalg.inv(srgb_to_xyz_matrix(exact)))


def _lab_f(t: Tensor) -> Tensor:
    # The cube root's slope is unbounded at 0: the clamp keeps the unselected branch finite.
    root = t.clamp_min(LAB_EPSILON) ** (1.0 / 3.0)
    return torch.where(t > LAB_EPSILON, root, t / (3.0 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)


def xyz_to_lab(xyz: Tensor, white: tuple[float, float, float] | Tensor = D65_WHITE) -> Tensor:
    """CIE XYZ ``(N, 3, H, W)`` to CIELAB ``(L*, a*, b*)`` relative to ``white`` (CIE 15)."""
    white_t = torch.as_tensor(white, dtype=xyz.dtype, device=xyz.device).view(1, 3, 1, 1)
    f = _lab_f(xyz / white_t)
    fx, fy, fz = f[:, 0:1], f[:, 1:2], f[:, 2:3]
    return torch.cat([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def srgb_to_lab(images: Tensor, exact: bool = False) -> Tensor:
    """sRGB ``(N, 3, H, W)`` in ``[0, 1]`` to CIELAB (D65): L* in ``[0, 100]``, a*, b* in about
    ``[-128, 128]``; differentiable everywhere (finite slopes at black and at the knees)."""
    check_image(images, "images", channels=3)
    return xyz_to_lab(linear_rgb_to_xyz(srgb_to_linear(images), exact))
