"""Structural similarity: SSIM (Wang et al. 2004) and MS-SSIM (Wang et al. 2003) as losses.

SSIM compares local means (luminance), standard deviations (contrast) and correlation
(structure) under a Gaussian window; it is blind to changes that keep those local statistics.
MS-SSIM repeats the contrast-structure comparison over dyadic scales.

Conventions (those of the reference implementations, scikit-image and ``pytorch_msssim``):

- Gaussian window ``11 x 11``, ``sigma = 1.5`` (normalised to sum 1), applied as two 1-D passes.
- ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2`` with ``K1 = 0.01``, ``K2 = 0.03`` and data range ``L = 1``
  (losses map their inputs to ``[0, 1]`` first).
- Valid region only: no padding, so an ``H x W`` image yields an ``(H - 10) x (W - 10)`` SSIM map,
  averaged per channel, then over channels: one index per sample.
- Population (biased) covariances, as ``use_sample_covariance=False`` in scikit-image.

MS-SSIM: at scales ``0 .. S-2`` the mean contrast-structure term ``cs``, at scale ``S-1`` the full
SSIM; each clipped at 0 (ReLU, as ``pytorch_msssim``, so negative values cannot produce NaN) and
combined as ``prod_s value_s ** w_s`` with the weights ``(0.0448, 0.2856, 0.3001, 0.2363,
0.1333)`` (the first ``S`` renormalised to sum 1 when ``scales < 5``). Between scales the
image is averaged over ``2 x 2`` blocks; an odd side keeps its last row/column as a block of
one (ceil mode, never a zero pad). The coarsest scale must still hold one full window, so the
smallest side must be at least ``(window_size - 1) * 2^(S - 1) + 1`` pixels: 161 for 5 scales
and an 11-pixel window, 41 for 3 scales.

One implementation for every use: the functional forms :func:`ssim` and :func:`ms_ssim` return
the per-sample *index* ``(N,)``; the losses :class:`SSIMLoss` and :class:`MSSSIMLoss` return
``1 - index`` through the same code, and the metrics ``ssim`` / ``ms_ssim``
(:mod:`losslab.metrics.fidelity`, ``metrics.json``) are the batch means of these functions. The one
size rule is :func:`ms_ssim_min_size`; :func:`ms_ssim_scales` inverts it (how many scales an image
holds), and the one scale-weight table is :data:`MS_SSIM_WEIGHTS` with :func:`ms_ssim_weights`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.filters import MAX_WINDOW_SIZE, gaussian_window, separable_filter  # noqa: F401  (re-exported)
from losslab.core.validation import Reduction, check_pair, reduce
from losslab.losses.registry import register_loss
from losslab.losses.views import ViewedLoss, ViewLike

K1 = 0.01
K2 = 0.03
#: The Gaussian window of Wang et al. (2004): the losses' and the metrics' default.
WINDOW_SIZE = 11
SIGMA = 1.5
#: MS-SSIM scale weights of Wang et al. (2003), finest scale first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _check_scales(scales: int) -> int:
    if isinstance(scales, bool) or not isinstance(scales, int) or not 1 <= scales <= len(MS_SSIM_WEIGHTS):
        raise ValueError(
            f"scales must be an integer from 1 to {len(MS_SSIM_WEIGHTS)}; got {scales!r}."
        )
    return scales


def ms_ssim_min_size(scales: int = 5, window_size: int = WINDOW_SIZE) -> int:
    """Smallest image side MS-SSIM accepts: ``(window_size - 1) * 2^(scales - 1) + 1``.

    After ``scales - 1`` ceil-mode halvings a side ``s`` becomes ``ceil(s / 2^(scales - 1))``,
    which must be at least ``window_size`` for one valid window at the coarsest scale.
    """
    return (window_size - 1) * 2 ** (_check_scales(scales) - 1) + 1


def ms_ssim_scales(height: int, width: int, window_size: int = WINDOW_SIZE) -> int:
    """How many MS-SSIM scales (at most 5) an ``height x width`` image holds; 0 when not even one.

    The largest ``S`` with ``min(height, width) >= ms_ssim_min_size(S, window_size)``: 5 from
    161 px, 4 from 81 px, 3 from 41 px, 2 from 21 px, 1 from 11 px (an 11-px window).

    Example:
        >>> ms_ssim_scales(96, 128)
        4
    """
    size = min(height, width)
    for scales in range(len(MS_SSIM_WEIGHTS), 0, -1):
        if size >= ms_ssim_min_size(scales, window_size):
            return scales
    return 0


def ms_ssim_weights(scales: int = 5) -> tuple[float, ...]:
    """The first ``scales`` MS-SSIM weights, renormalised to sum 1 (the standard 5 unchanged)."""
    chosen = MS_SSIM_WEIGHTS[: _check_scales(scales)]
    if scales == len(MS_SSIM_WEIGHTS):
        return chosen
    total = sum(chosen)
    return tuple(w / total for w in chosen)


def _too_small_message(size: tuple[int, ...], minimum: int, scales: int, window_size: int) -> str:
    text = (
        f"MS-SSIM with {scales} scales needs images of at least {minimum}x{minimum} pixels "
        f"(one full {window_size}-px window at the coarsest scale, no padding); "
        f"got {size[0]}x{size[1]}."
    )
    if scales > 1:
        options = ", ".join(
            f"ms_ssim(scales={s}) needs {ms_ssim_min_size(s, window_size)} px"
            for s in range(scales - 1, 0, -1)
        )
        text += f" Use larger crops or fewer scales: {options}."
    return text


def _ssim_and_cs(
    prediction: Tensor, target: Tensor, window: Tensor, c1: float, c2: float
) -> tuple[Tensor, Tensor]:
    """Per-channel mean SSIM and contrast-structure ``(N, C)`` each, valid region only."""
    channels = prediction.shape[1]
    # One filter call for the five local moments (fewer kernel launches than five calls).
    stack = torch.cat(
        (prediction, target, prediction * prediction, target * target, prediction * target), dim=1
    )
    moments = separable_filter(stack, window)
    mu_p, mu_t, e_pp, e_tt, e_pt = moments.split(channels, dim=1)
    mu_pp, mu_tt, mu_pt = mu_p * mu_p, mu_t * mu_t, mu_p * mu_t
    var_p, var_t, cov = e_pp - mu_pp, e_tt - mu_tt, e_pt - mu_pt
    cs_map = (2.0 * cov + c2) / (var_p + var_t + c2)
    luminance = (2.0 * mu_pt + c1) / (mu_pp + mu_tt + c1)
    return (luminance * cs_map).mean(dim=(2, 3)), cs_map.mean(dim=(2, 3))


def _ssim_per_sample(
    prediction: Tensor, target: Tensor, window: Tensor, data_range: float
) -> Tensor:
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    return _ssim_and_cs(prediction, target, window, c1, c2)[0].mean(dim=1)


def _ms_ssim_per_sample(
    prediction: Tensor,
    target: Tensor,
    window: Tensor,
    weights: Sequence[float],
    data_range: float,
) -> Tensor:
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    values = []
    for scale in range(len(weights)):
        if scale > 0:
            prediction = F.avg_pool2d(prediction, kernel_size=2, stride=2, ceil_mode=True)
            target = F.avg_pool2d(target, kernel_size=2, stride=2, ceil_mode=True)
        ssim_value, cs = _ssim_and_cs(prediction, target, window, c1, c2)
        values.append(cs if scale < len(weights) - 1 else ssim_value)
    stacked = torch.relu(torch.stack(values))  # (S, N, C)
    exponents = torch.tensor(weights, dtype=stacked.dtype, device=stacked.device).view(-1, 1, 1)
    # x ** w has an infinite slope at x = 0; route zeros around the power so no NaN reaches
    # the gradient (their gradient is exactly 0, as the ReLU's).
    positive = stacked > 0
    safe = torch.where(positive, stacked, torch.ones_like(stacked))
    powered = torch.where(positive, safe**exponents, torch.zeros_like(stacked))
    return powered.prod(dim=0).mean(dim=1)


def _check_functional_inputs(prediction: Tensor, target: Tensor, minimum: int) -> None:
    check_pair(prediction, target)
    if min(prediction.shape[-2:]) < minimum:
        raise ValueError(
            f"SSIM with a {minimum}-pixel window needs images of at least {minimum}x{minimum} "
            f"pixels (valid region, no padding); got {prediction.shape[-2]}x{prediction.shape[-1]}."
        )


def ssim(
    prediction: Tensor,
    target: Tensor,
    *,
    data_range: float = 1.0,
    window_size: int = WINDOW_SIZE,
    sigma: float = SIGMA,
) -> Tensor:
    """Per-sample SSIM index (Gaussian window, valid region, per channel then averaged).

    Args:
        prediction, target: ``(N, C, H, W)`` images, ``H, W >= window_size``.
        data_range: the span of the value range (``1`` for ``[0, 1]`` images, ``255`` for bytes).
        window_size, sigma: the Gaussian window (odd size, in pixels).

    Returns:
        ``(N,)`` indices in ``[-1, 1]``; 1 for identical images.

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> ssim(x, x)
        tensor([1., 1.])
    """
    window = gaussian_window(window_size, sigma, dtype=prediction.dtype)
    _check_functional_inputs(prediction, target, window_size)
    return _ssim_per_sample(prediction, target, window.to(prediction.device), float(data_range))


def ms_ssim(
    prediction: Tensor,
    target: Tensor,
    *,
    scales: int = 5,
    data_range: float = 1.0,
    window_size: int = WINDOW_SIZE,
    sigma: float = SIGMA,
) -> Tensor:
    """Per-sample MS-SSIM index (see the module docstring for the exact convention).

    Args:
        prediction, target: ``(N, C, H, W)`` images whose smaller side is at least
            :func:`ms_ssim_min_size` (161 px for 5 scales, 41 px for 3).
        scales: number of scales, 1 to 5 (the first ``scales`` weights, renormalised).
        data_range, window_size, sigma: as for :func:`ssim`.

    Returns:
        ``(N,)`` indices in ``[0, 1]``; 1 for identical images.
    """
    weights = ms_ssim_weights(scales)
    window = gaussian_window(window_size, sigma, dtype=prediction.dtype)
    check_pair(prediction, target)
    minimum = ms_ssim_min_size(scales, window_size)
    if min(prediction.shape[-2:]) < minimum:
        raise ValueError(
            _too_small_message(tuple(prediction.shape[-2:]), minimum, scales, window_size)
        )
    return _ms_ssim_per_sample(
        prediction, target, window.to(prediction.device), weights, float(data_range)
    )


class _StructuralLoss(ViewedLoss):
    """Shared parts: colour view, Gaussian window buffer, reduction, naming."""

    def __init__(
        self,
        view: ViewLike,
        window_size: int,
        sigma: float,
        reduction: Reduction,
        *,
        lowpass: int | None,
        highpass: int | None,
        input_range: Iterable[float],
        check_values: bool | None,
    ) -> None:
        super().__init__(
            view, reduction, lowpass=lowpass, highpass=highpass, input_range=input_range,
            check_values=check_values,
        )
        self.window_size = window_size
        self.sigma = float(sigma)
        self.register_buffer("window", gaussian_window(window_size, sigma))

    def index(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Per-sample similarity index ``(N,)`` of two viewed images in ``[0, 1]``."""
        raise NotImplementedError

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        return reduce(1.0 - self.index(self.viewed(prediction), self.viewed(target)), self.reduction)


@register_loss("ssim", positional=("view",))
class SSIMLoss(_StructuralLoss):
    """Structural dissimilarity ``1 - SSIM``: local means, contrasts and correlation must match.

    Gaussian window (11 px, sigma 1.5), ``K1 = 0.01``, ``K2 = 0.03``, data range 1 (inputs mapped
    to ``[0, 1]``), valid region only, per channel of the view then averaged.

    Args:
        view: colour view compared (``rgb``, ``luma``, ``red``, ... or a ``(K, 3)`` matrix).
        window_size, sigma: the Gaussian window (odd size in pixels; the image must be at least
            ``window_size`` pixels on each side).
        reduction: ``'mean'`` / ``'sum'`` over samples, or ``'none'`` for ``(N,)``.

    Shape:
        - prediction, target: ``(N, C, H, W)`` (``C = 3`` for a colour view), ``H, W >= 11``.
        - output: scalar, or ``(N,)`` for ``reduction='none'``; values in ``[0, 2]``, 0 when equal.

    Example:
        >>> loss = SSIMLoss("luma")
        >>> x = torch.rand(2, 3, 32, 32)
        >>> float(loss(x, x))
        0.0
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        window_size: int = WINDOW_SIZE,
        sigma: float = SIGMA,
        reduction: Reduction = "mean",
        *,
        lowpass: int | None = None,
        highpass: int | None = None,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(
            view, window_size, sigma, reduction, lowpass=lowpass, highpass=highpass,
            input_range=input_range, check_values=check_values,
        )
        self.min_size = window_size

    def index(self, prediction: Tensor, target: Tensor) -> Tensor:
        return _ssim_per_sample(prediction, target, self.window, 1.0)


@register_loss("ms_ssim", positional=("view",), aliases=("msssim",))
class MSSSIMLoss(_StructuralLoss):
    """Multi-scale structural dissimilarity ``1 - MS-SSIM`` (5 dyadic scales by default).

    Same window and constants as ``ssim``; contrast-structure at the finer scales, full SSIM at
    the coarsest, weights ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``.

    Args:
        view: colour view compared (``rgb``, ``luma``, ...).
        scales: 1 to 5; fewer scales accept smaller images (first weights renormalised).
        window_size, sigma: the Gaussian window.
        reduction: ``'mean'`` / ``'sum'`` over samples, or ``'none'`` for ``(N,)``.

    Shape:
        - prediction, target: ``(N, C, H, W)`` with ``min(H, W) >= (window_size - 1) *
          2^(scales - 1) + 1``: 161 px for 5 scales, 81 for 4, 41 for 3.
        - output: scalar, or ``(N,)`` for ``reduction='none'``; values in ``[0, 1]``.
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        scales: int = 5,
        window_size: int = WINDOW_SIZE,
        sigma: float = SIGMA,
        reduction: Reduction = "mean",
        *,
        lowpass: int | None = None,
        highpass: int | None = None,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(
            view, window_size, sigma, reduction, lowpass=lowpass, highpass=highpass,
            input_range=input_range, check_values=check_values,
        )
        self.scales = _check_scales(scales)
        self.weights = ms_ssim_weights(scales)
        self.min_size = ms_ssim_min_size(scales, window_size)

    def check_shapes(self, prediction: Tensor, target: Tensor) -> None:
        # Same check as the base (which runs next), with a message that suggests fewer scales.
        minimum = self.min_size or 0
        if isinstance(prediction, Tensor) and prediction.dim() == 4:
            size = tuple(prediction.shape[-2:])
            if min(size) < minimum:
                raise ValueError(_too_small_message(size, minimum, self.scales, self.window_size))
        super().check_shapes(prediction, target)

    def index(self, prediction: Tensor, target: Tensor) -> Tensor:
        return _ms_ssim_per_sample(prediction, target, self.window, self.weights, 1.0)
