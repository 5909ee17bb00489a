"""Frequency-domain distance: compare 2-D Fourier spectra instead of pixels.

``D = fft2(p - t)`` per channel with the orthonormal norm (``torch.fft.fft2(..., norm="ortho")``),
which equals ``fft2(p) - fft2(t)`` by linearity. Then

- ``distance="l1"``: ``mean_f w_f |D_f|`` (complex modulus; default),
- ``distance="mse"``: ``mean_f w_f |D_f|^2``; with ``w = 1`` this equals the pixel MSE exactly
  (Parseval's theorem for the orthonormal transform),

where the mean runs over every frequency of every channel. ``focal = alpha > 0`` gives the focal
frequency loss of Jiang et al. (2021): ``w_f = |D_f|^alpha / max_f' |D_f'|^alpha``, normalised to
``[0, 1]`` per image (over all its channels and frequencies) and detached, so the frequencies
that are currently worst reconstructed get the weight. ``focal = 0`` (default) weighs all
frequencies equally.

The spectrum of a real image is Hermitian (``|D[u, v]| = |D[-u, -v]|``), so the loss is computed
on the half spectrum of ``torch.fft.rfft2`` with the mirrored columns counted twice; the value
is identical to the full ``fft2`` formula at about half the cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
from torch import Tensor

from losslab.core.validation import Reduction, check_choice, check_pair, reduce
from losslab.losses.registry import register_loss
from losslab.losses.views import ViewedLoss, ViewLike

SpectrumDistance = Literal["l1", "mse"]
_DISTANCES = ("l1", "mse")


#: Largest focal exponent: ``|D|^alpha`` overflows float32 (then NaN weights) for large alpha;
#: with ``|D|`` up to ~256 (an orthonormal FFT of a 256x256 image) alpha = 16 already does.
MAX_FOCAL = 10.0


def _check_focal(focal: float) -> float:
    if isinstance(focal, bool) or not isinstance(focal, (int, float)) or not math.isfinite(focal):
        raise ValueError(f"focal must be a finite number >= 0 such as 0 or 1; got {focal!r}.")
    if focal < 0:
        raise ValueError(
            f"focal must be >= 0 (0: uniform weights, 1: the focal frequency loss); got {focal}."
        )
    if focal > MAX_FOCAL:
        raise ValueError(
            f"focal must be <= {MAX_FOCAL:g} (|D|^focal overflows float32 and the loss becomes "
            f"NaN); got {focal}. The focal frequency loss uses focal=1."
        )
    return float(focal)


def spectrum_distance(
    prediction: Tensor,
    target: Tensor,
    distance: SpectrumDistance = "l1",
    focal: float = 0.0,
) -> Tensor:
    """Per-sample spectrum distance ``(N,)`` (see the module docstring).

    Args:
        prediction, target: ``(N, C, H, W)`` images.
        distance: ``"l1"`` (mean complex modulus) or ``"mse"`` (mean squared modulus).
        focal: focal exponent ``alpha >= 0``; 0 weighs every frequency equally.

    Returns:
        ``(N,)`` non-negative values in the images' units (squared for ``"mse"``).
    """
    check_pair(prediction, target)
    return _spectrum_distance(
        prediction, target, check_choice("distance", distance, _DISTANCES), _check_focal(focal)
    )


def _spectrum_distance(prediction: Tensor, target: Tensor, distance: str, focal: float) -> Tensor:
    height, width = prediction.shape[-2:]
    spectrum = torch.fft.rfft2(prediction - target, norm="ortho")  # (N, C, H, W // 2 + 1)
    if distance == "mse":
        values = spectrum.real.square() + spectrum.imag.square()
    else:
        values = spectrum.abs()
    if focal > 0.0:
        with torch.no_grad():
            magnitude = values.sqrt() if distance == "mse" else values
            weights = magnitude.pow(focal)
            peak = weights.amax(dim=(1, 2, 3), keepdim=True)
            weights = weights / torch.where(peak > 0, peak, torch.ones_like(peak))
        values = values * weights
    # Columns 1 .. ceil(W/2) - 1 stand for themselves and their mirror image; column 0 and, for
    # an even width, column W/2 are their own mirror.
    total = 2.0 * values.sum(dim=(1, 2, 3)) - values[..., 0].sum(dim=(1, 2))
    if width % 2 == 0 and width > 1:
        total = total - values[..., -1].sum(dim=(1, 2))
    return total / (prediction.shape[1] * height * width)


@register_loss("frequency", positional=("view",), aliases=("fft", "focal_frequency"))
class FrequencyLoss(ViewedLoss):
    """Distance between 2-D Fourier spectra (orthonormal FFT), optionally focal (Jiang et al. 2021).

    ``mean_f w_f |fft2(p - t)_f|`` (``distance="l1"``) or ``mean_f w_f |.|^2`` (``"mse"``, which
    equals pixel MSE when ``focal=0``). ``focal=alpha > 0`` weighs each frequency by its error
    magnitude to the power ``alpha``, normalised to ``[0, 1]`` per image and detached.

    Args:
        view: colour view compared (``rgb``, ``luma``, ``red``, ... or a ``(K, 3)`` matrix).
        distance: ``"l1"`` (default) or ``"mse"``.
        focal: focal exponent ``alpha >= 0`` (0 = uniform weights; 1 = the paper's default).
        reduction: ``'mean'`` / ``'sum'`` over samples, or ``'none'`` for per-sample ``(N,)``.

    Shape:
        - prediction, target: ``(N, C, H, W)`` (``C = 3`` for a colour view).
        - output: scalar, or ``(N,)`` for ``reduction='none'``.

    Example:
        >>> loss = FrequencyLoss(distance="mse")
        >>> p, t = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
        >>> torch.allclose(loss(p, t), ((p - t) ** 2).mean())
        True
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        distance: SpectrumDistance = "l1",
        focal: float = 0.0,
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
        self.distance = check_choice("distance", distance, _DISTANCES)
        self.focal = _check_focal(focal)

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        dtype = prediction.dtype
        if dtype in (torch.float16, torch.bfloat16):
            # torch's CPU FFT has no half kernels (and CUDA's only power-of-2 sizes): compute the
            # spectra in float32 and return the value in the inputs' dtype.
            prediction, target = prediction.float(), target.float()
        values = _spectrum_distance(
            self.viewed(prediction), self.viewed(target), self.distance, self.focal
        )
        return reduce(values, self.reduction).to(dtype)
