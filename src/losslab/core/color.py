"""Colour conversions shared by losses (colour views), data (luma inputs), the probe (hue and
saturation changes) and metrics: one definition of luma and YCbCr for the whole package.

Luma is ITU-R BT.601 (``Y = 0.299 R + 0.587 G + 0.114 B``) by default, BT.709
(``0.2126, 0.7152, 0.0722``) selectable; chroma is the (Cb, Cr) pair of YCbCr with the same
standard, ``Cb = (B - Y) / (2 (1 - Kb))``, ``Cr = (R - Y) / (2 (1 - Kr))``, without the 0.5 offset
(so ``[0, 1]`` RGB gives luma in ``[0, 1]`` and chroma in ``[-0.5, 0.5]``).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from losslab.core.validation import check_choice, check_image

LumaStandard = Literal["bt601", "bt709"]

#: (Kr, Kb) of each standard; Kg = 1 - Kr - Kb.
LUMA_COEFFICIENTS: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
}


def luma_weights(standard: LumaStandard = "bt601") -> tuple[float, float, float]:
    """The (R, G, B) weights of luma for ``standard`` (they sum to 1)."""
    kr, kb = LUMA_COEFFICIENTS[check_choice("standard", standard, LUMA_COEFFICIENTS)]
    return (kr, 1.0 - kr - kb, kb)


def ycbcr_matrix(standard: LumaStandard = "bt601") -> Tensor:
    """``(3, 3)`` float64 matrix mapping RGB to (Y, Cb, Cr), without the 0.5 chroma offset."""
    kr, kg, kb = luma_weights(standard)
    luma = torch.tensor([kr, kg, kb], dtype=torch.float64)
    cb = (torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) - luma) / (2 * (1 - kb))
    cr = (torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64) - luma) / (2 * (1 - kr))
    return torch.stack([luma, cb, cr])


def to_luma(images: Tensor, standard: LumaStandard = "bt601") -> Tensor:
    """Luma of RGB images, ``(N, 3, H, W) -> (N, 1, H, W)``, in the units of the input
    (``[0, 1]`` in, ``[0, 1]`` out); the same weights as the ``luma`` colour view."""
    check_image(images, "images", channels=3)
    weights = torch.tensor(luma_weights(standard), dtype=images.dtype, device=images.device)
    return (images * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def rgb_to_ycbcr(images: Tensor, standard: LumaStandard = "bt601") -> Tensor:
    """RGB ``(N, 3, H, W)`` in ``[0, 1]`` to (Y, Cb, Cr) ``(N, 3, H, W)``: Y in ``[0, 1]``,
    Cb and Cr in ``[-0.5, 0.5]`` (no offset)."""
    matrix = ycbcr_matrix(standard).to(images)
    return torch.einsum("kc,nchw->nkhw", matrix, images)


def ycbcr_to_rgb(ycc: Tensor, standard: LumaStandard = "bt601") -> Tensor:
    """Inverse of :func:`rgb_to_ycbcr`: ``(N, 3, H, W)`` (Y, Cb, Cr) to RGB, not clamped."""
    inverse = torch.linalg.inv(ycbcr_matrix(standard)).to(ycc)
    return torch.einsum("ck,nkhw->nchw", inverse, ycc)
