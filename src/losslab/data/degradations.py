"""Degradations that turn a clean image into a task's input: downscaling, grey, noise.

All functions take float image batches ``(N, C, H, W)`` in ``[0, 1]`` and return the same
range (results are clamped), so their outputs can be fed to any loss or model directly.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.color import to_luma  # noqa: F401  (part of the data API: luma inputs)
from losslab.core.validation import check_choice, check_image

DownscaleMethod = Literal["bicubic", "area"]


def downscale(images: Tensor, factor: int, method: DownscaleMethod = "bicubic") -> Tensor:
    """Downscale by an integer ``factor``: ``(N, C, H, W) -> (N, C, H / factor, W / factor)``.

    ``'bicubic'`` is bicubic interpolation with antialiasing (``F.interpolate(...,
    antialias=True)``, like PIL's resize), clamped to ``[0, 1]`` to remove the overshoot of the
    cubic kernel; ``'area'`` averages each ``factor x factor`` block (no overshoot).

    Args:
        images: ``(N, C, H, W)`` float in ``[0, 1]``; ``H`` and ``W`` divisible by ``factor``.
        factor: integer downscaling factor ``>= 1`` (1 returns a copy).
        method: ``'bicubic'`` or ``'area'``.

    Returns:
        ``(N, C, H // factor, W // factor)`` float in ``[0, 1]``.
    """
    check_image(images, "images")
    check_choice("method", method, ("bicubic", "area"))
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be an int >= 1 such as 2 or 4; got {factor!r}.")
    height, width = images.shape[-2:]
    if height % factor or width % factor:
        raise ValueError(
            f"image size {height}x{width} is not divisible by factor={factor}; crop the images "
            f"to {height - height % factor}x{width - width % factor} first (or choose a "
            f"crop_size divisible by {factor})."
        )
    if factor == 1:
        return images.clone()
    if method == "area":
        return F.avg_pool2d(images, kernel_size=factor)
    small = F.interpolate(
        images,
        size=(height // factor, width // factor),
        mode="bicubic",
        align_corners=False,
        antialias=True,
    )
    return small.clamp(0.0, 1.0)


def add_noise(
    images: Tensor, sigma: float, *, generator: torch.Generator | None = None
) -> Tensor:
    """Add white Gaussian noise of standard deviation ``sigma`` (``[0, 1]`` units), clamped.

    Args:
        images: ``(N, C, H, W)`` float in ``[0, 1]``.
        sigma: noise standard deviation ``>= 0`` (e.g. ``25 / 255``).
        generator: optional ``torch.Generator`` on the images' device, for reproducible noise.

    Returns:
        ``(N, C, H, W)`` float in ``[0, 1]``.
    """
    check_image(images, "images")
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0 (in [0, 1] units, e.g. 25/255); got {sigma!r}.")
    noise = torch.randn(
        images.shape, generator=generator, dtype=images.dtype, device=images.device
    )
    return (images + sigma * noise).clamp(0.0, 1.0)
