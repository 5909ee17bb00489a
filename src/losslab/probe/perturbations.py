"""The probe's perturbation battery and matched-strength scaling.

Every *matched* perturbation ``p`` gives a direction ``d = p(x) - x`` per image; the probe then
moves each image along its direction until the pixel RMSE of the change is exactly ``rmse``
(over all pixels and the three channels, in ``[0, 1]`` units)::

    perturbed = clip(x + s * d),   s chosen per image so that RMSE(perturbed - x) = rmse

Without clipping ``s = rmse / RMSE(d)``. Clipping to ``[0, 1]`` would break the match, so ``s``
is found by bisection on the *clipped* result (the clipped RMSE grows monotonically with ``s``
for a plain clip). The two chroma perturbations (``hue``, ``saturation``) are clipped
differently, by pulling an out-of-gamut pixel's chroma towards grey at the same luma, so they
keep luma exactly (see :func:`clip_keep_luma`). A target RMSE that a direction cannot reach
inside ``[0, 1]`` raises ``ValueError``.

Matched perturbations (directions; the natural strength is irrelevant, only the direction):

=================  =====================================================================
``hue``            rotate the (Cb, Cr) vector of YCbCr BT.601 by 90 degrees (luma kept)
``saturation``     scale (Cb, Cr) by 1.5 (luma kept)
``brightness``     add the same constant to R, G and B
``channel_red``    add a constant to R only (likewise ``channel_green``, ``channel_blue``)
``blur``           Gaussian blur, sigma 1.5 px, reflect padding
``noise``          i.i.d. Gaussian noise (seeded)
``jpeg``           JPEG round trip at quality 10 (Pillow)
``contrast``       scale luma-mean-removed values by 1.5 about each image's mean luma
=================  =====================================================================

Natural-strength changes (not matched): ``shift`` (the image shifted by one pixel horizontally, a
sharp and plausible alternative), ``mean_of_two`` (the average of the copies shifted by +1 and
-1 px: a blur) and ``mean_of_two_noise`` (that average plus Gaussian noise whose per-pixel
variance is the two copies' spread, ``((a - b) / 2)^2`` for the shifted copies ``a`` and ``b``: the
cheapest sample a generator can learn that has the right per-pixel variance but commits to
neither answer). All are compared with the unshifted image on the common interior (one pixel
column cropped at each side), so no border wraps around. A sample-based loss (energy score,
CRPS) sees ``mean_of_two_noise`` as independent draws, which is where its blind spot shows: the
spread term pays the noise back.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from losslab.core.color import luma_weights, rgb_to_ycbcr, ycbcr_to_rgb
from losslab.core.filters import gaussian_blur
from losslab.core.registry import suggest

Perturbation = Callable[[Tensor, torch.Generator], Tensor]

#: Matched perturbations, in table order.
MATCHED_PERTURBATIONS: tuple[str, ...] = (
    "hue", "saturation", "brightness", "channel_red", "channel_green", "channel_blue",
    "blur", "noise", "jpeg", "contrast",
)
#: The natural-strength changes (the shift/blur pair and the blur with matched noise).
NATURAL_PERTURBATIONS: tuple[str, ...] = ("shift", "mean_of_two", "mean_of_two_noise")
#: Every perturbation name, in table order.
PERTURBATIONS: tuple[str, ...] = MATCHED_PERTURBATIONS + NATURAL_PERTURBATIONS
#: Perturbations whose change is pure chroma (clipped towards grey at constant luma).
CHROMA_PERTURBATIONS: frozenset[str] = frozenset({"hue", "saturation"})


def _hue(images: Tensor, generator: torch.Generator, angle: float = math.pi / 2) -> Tensor:
    ycc = rgb_to_ycbcr(images)
    cb, cr = ycc[:, 1], ycc[:, 2]
    cos, sin = math.cos(angle), math.sin(angle)
    rotated = torch.stack([ycc[:, 0], cos * cb - sin * cr, sin * cb + cos * cr], dim=1)
    return ycbcr_to_rgb(rotated)


def _saturation(images: Tensor, generator: torch.Generator, factor: float = 1.5) -> Tensor:
    ycc = rgb_to_ycbcr(images)
    return ycbcr_to_rgb(torch.cat([ycc[:, :1], ycc[:, 1:] * factor], dim=1))


def _brightness(images: Tensor, generator: torch.Generator) -> Tensor:
    return images + 0.1


def _channel(index: int) -> Perturbation:
    def change(images: Tensor, generator: torch.Generator) -> Tensor:
        out = images.clone()
        out[:, index] += 0.1
        return out

    return change


def _blur(images: Tensor, generator: torch.Generator) -> Tensor:
    return gaussian_blur(images, 1.5)


def _noise(images: Tensor, generator: torch.Generator) -> Tensor:
    return images + torch.randn(images.shape, generator=generator).to(images) * 0.05


def jpeg_round_trip(images: Tensor, quality: int = 10) -> Tensor:
    """Encode and decode every image as JPEG at ``quality`` (Pillow, 4:2:0), in ``[0, 1]``."""
    as_bytes = (images.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    decoded = []
    for image in as_bytes:
        buffer = io.BytesIO()
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as jpeg:
            decoded.append(torch.from_numpy(np.asarray(jpeg.convert("RGB")).copy()))
    stacked = torch.stack(decoded).permute(0, 3, 1, 2)
    return stacked.to(images.device, images.dtype) / 255.0


def _jpeg(images: Tensor, generator: torch.Generator) -> Tensor:
    return jpeg_round_trip(images, 10)


def _contrast(images: Tensor, generator: torch.Generator) -> Tensor:
    kr, kg, kb = luma_weights()
    luma = kr * images[:, 0:1] + kg * images[:, 1:2] + kb * images[:, 2:3]
    mean = luma.mean(dim=(-2, -1), keepdim=True)
    return mean + (images - mean) * 1.5


_DIRECTIONS: dict[str, Perturbation] = {
    "hue": _hue,
    "saturation": _saturation,
    "brightness": _brightness,
    "channel_red": _channel(0),
    "channel_green": _channel(1),
    "channel_blue": _channel(2),
    "blur": _blur,
    "noise": _noise,
    "jpeg": _jpeg,
    "contrast": _contrast,
}


def clip_keep_luma(images: Tensor, luma: Tensor) -> Tensor:
    """Bring RGB pixels into ``[0, 1]`` by scaling their chroma towards grey at luma ``luma``.

    ``images (N, 3, H, W)`` whose BT.601 luma equals ``luma (N, 1, H, W)`` (in ``[0, 1]``);
    each pixel becomes ``luma + t (rgb - luma)`` with the largest ``t`` in ``[0, 1]`` that stays
    in gamut, so luma is unchanged (exactly, up to rounding) while hue is kept.
    """
    offset = images - luma
    room_up = torch.where(offset > 0, (1 - luma) / offset.clamp_min(1e-12), torch.ones_like(offset))
    room_down = torch.where(offset < 0, luma / (-offset).clamp_min(1e-12), torch.ones_like(offset))
    scale = torch.minimum(room_up, room_down).amin(dim=1, keepdim=True).clamp(0, 1)
    return luma + offset * scale


def _rmse(change: Tensor) -> Tensor:
    return change.square().mean(dim=(1, 2, 3)).sqrt()


def _apply(images: Tensor, direction: Tensor, scale: Tensor, keep_luma: bool, luma: Tensor) -> Tensor:
    moved = images + direction * scale.view(-1, 1, 1, 1)
    if keep_luma:
        return clip_keep_luma(moved, luma)
    return moved.clamp(0, 1)


def match_strength(
    images: Tensor,
    direction: Tensor,
    rmse: float,
    *,
    keep_luma: bool = False,
    iterations: int = 60,
    name: str = "perturbation",
) -> Tensor:
    """Move each image along ``direction`` until the clipped change has pixel RMSE ``rmse``.

    Args:
        images: ``(N, 3, H, W)`` in ``[0, 1]``.
        direction: ``(N, 3, H, W)``, the unscaled change ``p(x) - x``.
        rmse: target RMSE of ``perturbed - images`` per image, in ``[0, 1]`` units.
        keep_luma: clip by :func:`clip_keep_luma` (chroma-only directions) instead of clamping.
        iterations: bisection steps on the scale (relative precision ``~2^-iterations``).

    Returns:
        ``(N, 3, H, W)`` in ``[0, 1]`` with ``RMSE(result - images) == rmse`` per image (to
        about 1e-6 relative).

    Raises:
        ValueError: if a direction is zero or cannot reach ``rmse`` inside ``[0, 1]``.
    """
    images = images.double()
    direction = direction.double()
    luma = None
    if keep_luma:
        kr, kg, kb = luma_weights()
        luma = kr * images[:, 0:1] + kg * images[:, 1:2] + kb * images[:, 2:3]
    size = _rmse(direction)
    if bool((size <= 1e-12).any()):
        bad = torch.nonzero(size <= 1e-12).flatten().tolist()
        raise ValueError(
            f"{name} does not change image(s) {bad}; cannot scale it to RMSE {rmse}. Grey "
            "images have no hue or saturation, and flat or saturated images may not change "
            "under other perturbations: use colour photos with texture (or leave this "
            "perturbation out: losslab probe --perturbations, or perturbations=[...])."
        )
    low = torch.zeros_like(size)
    high = rmse / size
    for _ in range(40):  # grow the bracket until the clipped change reaches the target
        reached = _rmse(_apply(images, direction, high, keep_luma, luma) - images)
        short = reached < rmse
        if not bool(short.any()):
            break
        high = torch.where(short, high * 2, high)
    else:
        bad = torch.nonzero(short).flatten().tolist()
        raise ValueError(
            f"{name} cannot reach pixel RMSE {rmse} inside [0, 1] for image(s) {bad} "
            f"(clipping saturates); use a smaller rmse."
        )
    for _ in range(iterations):
        middle = (low + high) / 2
        reached = _rmse(_apply(images, direction, middle, keep_luma, luma) - images)
        low = torch.where(reached < rmse, middle, low)
        high = torch.where(reached < rmse, high, middle)
    return _apply(images, direction, (low + high) / 2, keep_luma, luma)


def perturb(name: str, images: Tensor, rmse: float, *, seed: int = 0) -> Tensor:
    """One matched perturbation of ``images`` at pixel RMSE ``rmse`` (see the module docstring).

    Shape:
        - images: ``(N, 3, H, W)`` in ``[0, 1]``; output the same shape, dtype and device.
    """
    if name not in _DIRECTIONS:

        raise ValueError(
            f"unknown matched perturbation {name!r}.{suggest(name, list(_DIRECTIONS))} "
            f"Matched perturbations: {', '.join(MATCHED_PERTURBATIONS)}."
        )
    generator = torch.Generator().manual_seed(seed)
    direction = _DIRECTIONS[name](images.double(), generator) - images.double()
    result = match_strength(
        images, direction, rmse, keep_luma=name in CHROMA_PERTURBATIONS, name=name
    )
    return result.to(images.dtype)


def shifted_pair(images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(original, shift, mean_of_two)`` on the common interior ``(N, 3, H, W - 2)``.

    ``shift`` is the image moved one pixel to the left (``x[..., j + 1]``), ``mean_of_two`` the
    average of the copies moved by +1 and -1 px; both are cropped like the original, so no
    border wraps.
    """
    if images.shape[-1] < 3:
        raise ValueError(f"shift needs images at least 3 px wide; got {images.shape[-1]}.")
    original = images[..., 1:-1]
    shift = images[..., 2:]
    mean_of_two = (images[..., 2:] + images[..., :-2]) / 2
    return original, shift, mean_of_two


def mean_of_two_noise(images: Tensor, generator: torch.Generator, draws: int | None = None) -> Tensor:
    """The mean of the +1 and -1 px shifts plus noise of their per-pixel spread, on the interior.

    For the shifted copies ``a = x[..., j + 1]`` and ``b = x[..., j - 1]``: ``(a + b) / 2 +
    |a - b| / 2 * z`` with ``z ~ N(0, 1)`` i.i.d. per pixel and channel (from ``generator``), so
    every pixel has the mean and the variance of the two-answer distribution ``{a, b}`` (not
    clipped to ``[0, 1]``: clipping would change the variance).

    Shape:
        - images: ``(N, C, H, W)``, ``W >= 3``.
        - output: ``(N, C, H, W - 2)``, or ``(N, draws, C, H, W - 2)`` (independent noise per
          draw) when ``draws`` is given.
    """
    if images.shape[-1] < 3:
        raise ValueError(f"mean_of_two_noise needs images at least 3 px wide; got {images.shape[-1]}.")
    right, left = images[..., 2:], images[..., :-2]
    mean = (right + left) / 2
    spread = (right - left).abs() / 2
    shape = mean.shape if draws is None else (mean.shape[0], draws, *mean.shape[1:])
    noise = torch.randn(shape, generator=generator, dtype=torch.float64).to(images)
    return mean + spread * noise if draws is None else mean.unsqueeze(1) + spread.unsqueeze(1) * noise
