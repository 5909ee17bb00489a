"""The linear filters shared by losses, spatial views and the probe (one copy of each).

- :func:`gaussian_window`: a normalised 1-D Gaussian (SSIM's 11-tap, sigma 1.5 window; the
  probe's blur).
- :func:`separable_filter`: a 1-D window applied along both axes, per channel, either on the
  valid region or with reflect padding (same size).
- :func:`gaussian_blur`: a same-size Gaussian blur (reflect padding, radius ``ceil(3 sigma)``).
- :func:`pyramid_down` / :func:`pyramid_up`: one level of the Burt & Adelson (1983) pyramid with
  the 5-tap binomial kernel ``[1, 4, 6, 4, 1] / 16`` (the discrete Gaussian of variance 1), the
  kernel of the Laplacian pyramid in Laparra et al. (2016) and plenoptic;
  :func:`gaussian_pyramid` and :func:`laplacian_pyramid` build on them.

All functions take ``(N, C, H, W)`` float tensors and treat channels independently; they are
linear (and therefore commute with the linear colour views).
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

#: Largest Gaussian window accepted (SSIM uses 11): an absurd size would otherwise try to
#: allocate gigabytes before any shape check.
MAX_WINDOW_SIZE = 255
#: The 5-tap binomial kernel ``[1, 4, 6, 4, 1] / 16`` of the Burt & Adelson pyramid.
BINOMIAL_5 = (0.0625, 0.25, 0.375, 0.25, 0.0625)


def channels_last(images: Tensor) -> Tensor:
    """The same ``(N, C, H, W)`` values in channels-last memory order, on the CPU.

    Why: oneDNN's CPU convolutions with one input channel per group (depthwise filters, 1-channel
    gradients) are several times slower in the default NCHW order, the backward pass most
    (measured here, ``(16, 1, 128, 128)``, a 3 x 3 filter pair, one thread: forward + backward
    109 ms NCHW, 10 ms channels-last; a 3-channel depthwise 5-tap pair: 104 ms against 17 ms).
    A contiguous 1-channel tensor already has the channels-last layout, so it is only re-viewed
    with channels-last strides (no copy). Other devices are returned unchanged.
    """
    if images.device.type != "cpu":
        return images
    if images.shape[1] == 1 and images.is_contiguous():
        _, _, height, width = images.shape
        return images.as_strided(images.shape, (height * width, 1, width, 1))
    return images.contiguous(memory_format=torch.channels_last)


def gaussian_window(
    window_size: int = 11, sigma: float = 1.5, *, dtype: torch.dtype = torch.float32
) -> Tensor:
    """A normalised 1-D Gaussian ``(window_size,)`` (sums to 1); the 2-D window is its outer product.

    Args:
        window_size: odd number of taps, e.g. 11.
        sigma: standard deviation in pixels, > 0.
    """
    check_window(window_size, sigma)
    return _gaussian_taps(window_size // 2, sigma).to(dtype)


def _gaussian_taps(radius: int, sigma: float) -> Tensor:
    """The normalised Gaussian ``(2 radius + 1,)`` in float64, with no cap on its size."""
    coords = torch.arange(-radius, radius + 1, dtype=torch.float64)
    window = torch.exp(-(coords**2) / (2.0 * sigma * sigma))
    return window / window.sum()


def check_window(window_size: int, sigma: float) -> None:
    """Raise ``ValueError`` unless ``window_size`` is a positive odd int and ``sigma`` > 0."""
    if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1:
        raise ValueError(f"window_size must be a positive odd integer such as 11; got {window_size!r}.")
    if window_size % 2 == 0:
        raise ValueError(f"window_size must be odd (a centred window) such as 11; got {window_size}.")
    if window_size > MAX_WINDOW_SIZE:
        raise ValueError(f"window_size must be at most {MAX_WINDOW_SIZE} (SSIM uses 11; images must "
                         f"be at least as large as the window); got {window_size}.")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number such as 1.5; got {sigma!r}.")


def separable_filter(
    images: Tensor,
    window: Tensor,
    *,
    padding: Literal["valid", "reflect"] = "valid",
    stride: int = 1,
) -> Tensor:
    """Apply the 1-D ``window`` ``(k,)`` along width then height, per channel.

    Args:
        images: ``(N, C, H, W)``.
        window: ``(k,)`` taps (odd ``k``; correlated, which equals convolution for symmetric taps).
        padding: ``"valid"`` (no padding: ``(H - k + 1, W - k + 1)`` out) or ``"reflect"``
            (``k // 2`` mirrored pixels each side: same size out; needs ``H, W > k // 2``).
        stride: sampling step of the output along both axes (2 for a pyramid level).

    Returns:
        ``(N, C, H', W')``; two grouped 1-D convolutions (measured faster on CPU than one 2-D
        pass or than folding channels into the batch).
    """
    channels, size = images.shape[1], window.shape[0]
    window = window.to(dtype=images.dtype, device=images.device)
    if padding == "reflect":
        radius = size // 2
        images = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    images = channels_last(images)
    horizontal = window.view(1, 1, 1, size).expand(channels, 1, 1, size)
    vertical = window.view(1, 1, size, 1).expand(channels, 1, size, 1)
    out = F.conv2d(images, horizontal, groups=channels, stride=(1, stride))
    return F.conv2d(out, vertical, groups=channels, stride=(stride, 1))


def gaussian_blur(images: Tensor, sigma: float = 1.5) -> Tensor:
    """Same-size separable Gaussian blur ``(N, C, H, W) -> (N, C, H, W)``.

    Radius ``ceil(3 sigma)`` (at least 1) and reflect padding, so ``H, W`` must exceed the radius.
    """
    radius = max(1, math.ceil(3 * sigma))
    window = gaussian_window(2 * radius + 1, sigma, dtype=images.dtype)
    return separable_filter(images, window, padding="reflect")


def gaussian_blur_matrix(size: int, sigma: float, *, dtype: torch.dtype = torch.float32,
                         device: torch.device | None = None) -> Tensor:
    """The ``(size, size)`` matrix of :func:`gaussian_blur` along one axis (reflect padding).

    ``gaussian_blur(x, sigma) == B_h @ x @ B_w.T`` with ``B_h = gaussian_blur_matrix(H, sigma)``
    and ``B_w = gaussian_blur_matrix(W, sigma)`` (up to float rounding). For a wide window two
    small matrix products are several times faster than two grouped convolutions with
    ``6 sigma + 1`` taps, which is what a blur that changes every step (a continuation over
    scale) needs. Needs ``size`` to exceed the radius ``ceil(3 sigma)``, as the blur does.
    """
    radius = max(1, math.ceil(3 * sigma))
    if radius >= size:
        raise ValueError(f"a blur of sigma {sigma} px needs more than {radius} pixels along each "
                         f"axis (reflect padding); got {size}. Use a smaller sigma.")
    # Not gaussian_window: its cap on a *local* window (255 taps) is too small for a blur of a
    # third of a 256 px image (511 taps).
    window = _gaussian_taps(radius, sigma)
    # Output pixel i reads input i + t for every tap t, mirrored at the edges as F.pad's
    # "reflect" does (-1 -> 1, size -> size - 2); taps landing on the same input add up.
    sources = torch.arange(size)[:, None] + torch.arange(-radius, radius + 1)[None, :]
    sources = sources.abs()
    sources = torch.where(sources > size - 1, 2 * (size - 1) - sources, sources)
    matrix = torch.zeros(size, size, dtype=torch.float64)
    matrix.scatter_add_(1, sources, window.expand(size, -1).contiguous())
    return matrix.to(dtype=dtype, device=device)


def binomial_window(*, dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
    """The pyramid kernel :data:`BINOMIAL_5` as a ``(5,)`` tensor."""
    return torch.tensor(BINOMIAL_5, dtype=dtype, device=device)


def pyramid_down(images: Tensor, window: Tensor | None = None) -> Tensor:
    """Blur with the binomial kernel (reflect padding) and keep every other pixel.

    ``(N, C, H, W) -> (N, C, ceil(H / 2), ceil(W / 2))``; samples at even positions
    ``0, 2, 4, ...`` of the blurred image. Needs ``H, W >= 3`` (two mirrored pixels each side).
    """
    window = binomial_window(dtype=images.dtype) if window is None else window
    return separable_filter(images, window, padding="reflect", stride=2)


def pyramid_up(images: Tensor, size: tuple[int, int], window: Tensor | None = None) -> Tensor:
    """Expand one pyramid level back to ``size`` (the inverse step of :func:`pyramid_down`).

    The coarse ``(N, C, h, w)`` image is mirrored by one pixel at each side, its samples placed
    at even positions of a zero image (zero insertion) and filtered with twice the binomial
    kernel per axis (so a constant image stays constant); the result is cropped to ``size``
    (``(2h - 1)`` or ``2h`` rows, likewise columns). Needs ``h, w >= 2``.
    """
    window = binomial_window(dtype=images.dtype) if window is None else window
    height, width = size
    padded = F.pad(images, (1, 1, 1, 1), mode="reflect")
    n, c, h, w = padded.shape
    # Coarse pixel j lands on fine position 2 (j + 1); the valid 5-tap filter below then centres
    # fine pixel m on position m + 2, i.e. on the original coordinate m.
    spread = padded.new_zeros(n, c, 2 * h, 2 * w)
    spread[..., ::2, ::2] = padded
    out = separable_filter(spread, 2.0 * window.to(device=images.device, dtype=images.dtype))
    return out[..., :height, :width]


def gaussian_pyramid(images: Tensor, levels: int, window: Tensor | None = None) -> list[Tensor]:
    """``[G_0, G_1, ..., G_levels]`` with ``G_0 = images`` and ``G_{k+1} = pyramid_down(G_k)``."""
    result = [images]
    for _ in range(levels):
        result.append(pyramid_down(result[-1], window))
    return result


def laplacian_pyramid(images: Tensor, levels: int, window: Tensor | None = None) -> list[Tensor]:
    """Band-pass levels ``[L_0, ..., L_{levels-2}]`` and the low-pass residual ``G_{levels-1}``.

    ``L_k = G_k - pyramid_up(G_{k+1})`` (finest first); the list has ``levels`` entries and
    sums back to the image when expanded (Burt & Adelson 1983).
    """
    gaussian = gaussian_pyramid(images, levels - 1, window)
    bands = [
        fine - pyramid_up(coarse, (fine.shape[-2], fine.shape[-1]), window)
        for fine, coarse in itertools.pairwise(gaussian)
    ]
    return [*bands, gaussian[-1]]


def pyramid_min_size(levels: int, smallest: int = 3) -> int:
    """Smallest side whose ``levels``-th Gaussian level still has ``smallest`` pixels.

    Each :func:`pyramid_down` maps ``s`` to ``ceil(s / 2)``, so ``(smallest - 1) * 2^levels + 1``.
    """
    return (smallest - 1) * 2**levels + 1
