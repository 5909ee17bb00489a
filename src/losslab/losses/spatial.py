"""Spatial views: *which frequencies* a distance compares (``lowpass=K`` / ``highpass=K``).

A spatial view is applied after the colour view, so the two compose:
``l1(chroma, lowpass=2)`` compares chroma at a quarter of the resolution only (colour kept right
at low frequencies, the colour-drift cure of SR trainers), ``swd(highpass=1)`` compares the
distributions of the finest detail only.

Levels follow the Burt & Adelson (1983) pyramid with the binomial kernel ``[1, 4, 6, 4, 1]/16``
(see :mod:`losslab.core.filters`), counted from the image:

- ``lowpass=K`` (K >= 1): the Gaussian level ``G_K`` (K blur-and-halve steps), an image of
  ``ceil(H / 2^K) x ceil(W / 2^K)`` pixels;
- ``highpass=K`` (K >= 1): the Laplacian band ``G_{K-1} - expand(G_K)`` at the resolution of
  ``G_{K-1}``; ``highpass=1`` is the finest detail (what a blur removes).

The image is the sum of ``highpass=1 .. K`` (each expanded back) and ``lowpass=K``. Both views
are linear, so they commute with the colour views and with subtraction.
"""

from __future__ import annotations

from torch import Tensor, nn

from losslab.core.filters import binomial_window, pyramid_down, pyramid_min_size, pyramid_up

#: Deepest level accepted (a 2^12 = 4096-fold reduction is already far beyond any image here).
MAX_LEVEL = 12


def check_level(name: str, level: object) -> int | None:
    """Validate a ``lowpass``/``highpass`` level: ``None`` (off) or an int in ``1 .. MAX_LEVEL``."""
    if level is None:
        return None
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= MAX_LEVEL:
        raise ValueError(
            f"{name} must be a pyramid level from 1 to {MAX_LEVEL} (1 = half resolution for "
            f"lowpass, the finest band for highpass), or none; got {level!r}. "
            f"Example: l1(chroma, {name}=2)."
        )
    return level


class SpatialView(nn.Module):
    """A pyramid level of an image batch: ``lowpass=K`` or ``highpass=K`` (exactly one).

    Args:
        lowpass: Gaussian pyramid level ``K >= 1`` (``(N, C, H, W) -> (N, C, ceil(H/2^K),
            ceil(W/2^K))``).
        highpass: Laplacian band ``K >= 1`` (``(N, C, H, W) -> (N, C, ceil(H/2^(K-1)), ...)``).

    Shape:
        - input: ``(N, C, H, W)`` with ``min(H, W) >=`` :meth:`min_input_size`.
        - output: ``(N, C, H', W')`` in the units of the input (a band is centred on 0).
    """

    def __init__(self, lowpass: int | None = None, highpass: int | None = None) -> None:
        super().__init__()
        self.lowpass = check_level("lowpass", lowpass)
        self.highpass = check_level("highpass", highpass)
        if (self.lowpass is None) == (self.highpass is None):
            raise ValueError(
                "a spatial view takes exactly one of lowpass=K or highpass=K; got "
                f"lowpass={lowpass!r}, highpass={highpass!r}. To compare both bands, add two "
                "terms: l1(lowpass=2) + l1(highpass=1)."
            )
        # The kernel is a buffer so that .to(device) and .double() move it with the loss.
        self.register_buffer("window", binomial_window(), persistent=False)

    @property
    def level(self) -> int:
        return int(self.lowpass if self.lowpass is not None else self.highpass)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        """``lowpass=K`` or ``highpass=K``, as in a spec."""
        return f"lowpass={self.lowpass}" if self.lowpass is not None else f"highpass={self.highpass}"

    def output_size(self, size: int) -> int:
        """Side of the output for an input side ``size``."""
        halvings = self.level if self.lowpass is not None else self.level - 1
        for _ in range(halvings):
            size = (size + 1) // 2
        return size

    def min_input_size(self, output_min: int = 1) -> int:
        """Smallest input side: every blur-and-halve step needs >= 3 pixels, and the output
        must keep at least ``output_min`` pixels (the wrapped loss's own minimum)."""
        # The last blur-and-halve step reads G_{K-1}, which needs >= 3 pixels (reflect padding).
        floor = pyramid_min_size(self.level - 1)
        halvings = self.level if self.lowpass is not None else self.level - 1
        needed = (max(1, output_min) - 1) * 2**halvings + 1
        return max(floor, needed)

    def forward(self, images: Tensor) -> Tensor:
        window = self.window.to(images.dtype)
        if self.lowpass is not None:
            for _ in range(self.lowpass):
                images = pyramid_down(images, window)
            return images
        for _ in range(self.level - 1):
            images = pyramid_down(images, window)
        coarse = pyramid_down(images, window)
        return images - pyramid_up(coarse, (images.shape[-2], images.shape[-1]), window)

    def extra_repr(self) -> str:
        return self.name
