"""Colour decomposition of an error: per RGB channel, luma and chroma, and colourfulness.

These separate *where* the error sits: a loss on luma only (``l1(luma)``) leaves ``err_chroma``
free; a loss on red only leaves ``err_green`` and ``err_blue`` free; an MSE-trained model that
averages plausible colours shows ``chroma_ratio < 1`` (desaturation).

All errors are mean absolute differences in ``[0, 1]`` units, averaged over the batch and pixels.
Luma and chroma use BT.601 YCbCr (:class:`losslab.losses.views.LumaView` and
:class:`~losslab.losses.views.ChromaView`, chroma without the 0.5 offset, in ``[-0.5, 0.5]``).

``err_deltae`` is in CIELAB units instead: the mean CIEDE2000 colour difference over every pixel
of every image (:func:`losslab.losses.color_difference.ciede2000_map`, the function of the
``ciede2000`` loss; about 1 per just-noticeable difference).
"""

from __future__ import annotations

import torch
from torch import Tensor

from losslab.losses.color_difference import ciede2000_map
from losslab.losses.views import ChromaView, LumaView
from losslab.metrics._common import check_image_pair

COLOR_KEYS = ("err_red", "err_green", "err_blue", "err_luma", "err_chroma", "chroma_ratio")
_EPS = 1e-12


def color_errors(outputs: Tensor, targets: Tensor) -> dict[str, float]:
    """Mean absolute error per channel, of luma and of chroma, and the chroma ratio.

    Returns a dict with keys ``err_red``, ``err_green``, ``err_blue`` (per RGB channel),
    ``err_luma`` (``|Y_out - Y_target|``), ``err_chroma`` (mean over Cb and Cr of
    ``|C_out - C_target|``) and ``chroma_ratio`` (see :func:`chroma_ratio`).

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``.
    """
    check_image_pair(outputs, targets)
    outputs, targets = outputs.float(), targets.float()
    per_channel = (outputs - targets).abs().mean(dim=(0, 2, 3))
    luma, chroma = LumaView().to(outputs.device), ChromaView().to(outputs.device)
    return {
        "err_red": float(per_channel[0]),
        "err_green": float(per_channel[1]),
        "err_blue": float(per_channel[2]),
        "err_luma": float((luma(outputs) - luma(targets)).abs().mean()),
        "err_chroma": float((chroma(outputs) - chroma(targets)).abs().mean()),
        "chroma_ratio": chroma_ratio(outputs, targets),
    }


def deltae_error(outputs: Tensor, targets: Tensor) -> float:
    """Mean CIEDE2000 ΔE00 over all pixels of all images (sRGB D65 in, CIELAB units out).

    Computed in float64 with :func:`~losslab.losses.color_difference.ciede2000_map`, the
    function of the ``ciede2000`` loss (the loss with its default ``mean`` reduction gives the
    same number up to float32 rounding).

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``.
    """
    check_image_pair(outputs, targets)
    with torch.no_grad():
        return float(ciede2000_map(outputs.double().clamp(0, 1), targets.double().clamp(0, 1)).mean())


def chroma_magnitude(images: Tensor) -> Tensor:
    """Per-pixel chroma magnitude ``sqrt(Cb^2 + Cr^2)`` (BT.601), ``(N, 3, H, W) -> (N, H, W)``."""
    chroma = ChromaView().to(images.device)(images.float())
    return torch.sqrt(chroma.square().sum(dim=1))


def chroma_ratio(outputs: Tensor, targets: Tensor) -> float:
    """Colourfulness of outputs relative to targets: ``mean |C_out| / mean |C_target|``.

    ``|C| = sqrt(Cb^2 + Cr^2)`` averaged over all pixels of the batch (a ratio of batch means).
    1 when the outputs are as colourful as the targets, < 1 for desaturated outputs, > 1 for
    over-saturated ones. For grey targets (no chroma at all) the ratio is ``inf`` unless the
    outputs are grey too (then 1).

    Shape:
        - outputs, targets: ``(N, 3, H, W)`` in ``[0, 1]``.
    """
    check_image_pair(outputs, targets)
    out_mag = float(chroma_magnitude(outputs).mean())
    tgt_mag = float(chroma_magnitude(targets).mean())
    if tgt_mag < _EPS:
        return 1.0 if out_mag < _EPS else float("inf")
    return out_mag / tgt_mag
