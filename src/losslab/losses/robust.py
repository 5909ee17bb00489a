"""Barron's general and adaptive robust loss (CVPR 2019): ``robust(alpha, scale)``.

The general loss of a difference ``x`` with shape ``alpha`` and scale ``c > 0`` is

    rho(x, alpha, c) = |alpha - 2| / alpha * (((x / c)^2 / |alpha - 2| + 1)^(alpha / 2) - 1)

with its limits: ``alpha = 2`` is L2 ``0.5 (x/c)^2``; ``alpha = 1`` the pseudo-Huber /
Charbonnier ``sqrt((x/c)^2 + 1) - 1`` (L1-like for ``|x| >> c``); ``alpha = 0`` Cauchy /
Lorentzian ``log(0.5 (x/c)^2 + 1)``; ``alpha = -2`` Geman-McClure ``2 (x/c)^2 / ((x/c)^2 + 4)``;
``alpha -> -inf`` Welsch / Leclerc ``1 - exp(-0.5 (x/c)^2)``. Lower ``alpha`` gives outliers less
weight (bounded for ``alpha < 0``). Near ``alpha = 0`` and ``2`` the formula is evaluated in a
stable form (``expm1`` / ``log1p``, ``alpha`` and ``|alpha - 2|`` kept at least ``1e-6`` away from
0); the exact limits are used at ``0``, ``2`` and ``-inf``.

Adaptive loss (``learn_alpha=true`` and/or ``learn_scale=true``): the shape and/or the scale are
``nn.Parameter``s of this module, one per channel of the viewed difference (so they are in the
checkpoint's ``state_dict`` under ``loss.…``, and the trainer optimises them with the model). A
learned parameter needs the *likelihood*: minimising ``rho`` alone would drive ``alpha`` to its
lowest value and ``c`` to infinity. The loss is then the negative log-likelihood of the
distribution ``p(x | alpha, c) = exp(-rho(x, alpha, c)) / (c Z(alpha))``:

    nll = rho(x, alpha, c) + log(c) + log Z(alpha),  Z(alpha) = integral of exp(-rho(x, alpha, 1)) dx

which is normalisable for ``alpha >= 0`` only, so a learned ``alpha`` lives in ``alpha_range``
(default ``(0.001, 1.999)``, through a sigmoid), a learned scale is ``1e-5 + softplus(latent)``.
``log Z(alpha)`` has no closed form; :func:`log_partition_table` integrates it numerically once
(on first use, then cached): the trapezoidal rule in ``u = log|x|`` over ``u in [-20, 30]``
(8001 nodes; the part below ``e^-20`` is added as ``e^-20``, the tail above ``e^30`` is below
``1e-12``) at 1025 equally spaced ``alpha`` in ``[0, 2]``; between nodes it is interpolated
linearly (gradient with respect to ``alpha`` included). Checked against the closed forms
``log(pi sqrt 2)`` (``alpha = 0``), ``log(sqrt(2 pi))`` (``alpha = 2``) and ``log(2 e K_1(1))``
(``alpha = 1``) in the tests. The NLL may be negative (``log c`` for small ``c``).

Units: ``x`` is the difference in ``[0, 1]`` pixel units (after the colour and spatial views),
``scale`` too (default ``0.05``: differences above 5 % of the range count as large).

Reference:
    J. T. Barron, "A General and Adaptive Robust Loss Function", CVPR 2019.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losslab.core.validation import Reduction, check_flag, reduce
from losslab.losses.pixel import PixelLoss
from losslab.losses.registry import register_loss
from losslab.losses.views import IdentityView, ViewLike

#: How far ``alpha`` and ``|alpha - 2|`` are kept from 0 in the general formula.
_ALPHA_EPS = 1e-6
#: Smallest learned scale (``scale = SCALE_FLOOR + softplus(latent)``).
SCALE_FLOOR = 1e-5
#: Nodes of the ``log Z(alpha)`` table on ``[0, 2]``.
PARTITION_NODES = 1025


def general_loss(difference: Tensor, alpha: Tensor | float, scale: Tensor | float) -> Tensor:
    """Barron's ``rho(x, alpha, c)`` elementwise (see the module docstring), >= 0, 0 at ``x = 0``.

    Args:
        difference: ``x``, any shape.
        alpha: shape parameter, broadcastable to ``difference`` (``-inf`` allowed).
        scale: ``c > 0``, broadcastable to ``difference``.
    """
    alpha = torch.as_tensor(alpha, dtype=difference.dtype, device=difference.device)
    squared = (difference / scale) ** 2
    # Stable general form: b/d * expm1(d/2 * log1p(z/b)) with b = |alpha-2|, d = alpha, both
    # kept away from 0 (their limits are taken exactly below); -inf is replaced by a finite
    # value here (its branch is the Welsch loss), so no inf * 0 reaches the gradient.
    finite = torch.where(torch.isinf(alpha), -1.0, alpha)
    b = (finite - 2.0).abs().clamp_min(_ALPHA_EPS)
    d = torch.where(finite >= 0, finite.clamp_min(_ALPHA_EPS), finite.clamp_max(-_ALPHA_EPS))
    general = (b / d) * torch.expm1(0.5 * d * torch.log1p(squared / b))
    result = torch.where(alpha == 2.0, 0.5 * squared, general)
    result = torch.where(alpha == 0.0, torch.log1p(0.5 * squared), result)
    return torch.where(torch.isneginf(alpha), -torch.expm1(-0.5 * squared), result)


def general_loss_fixed(difference: Tensor, alpha: float, scale: float) -> Tensor:
    """:func:`general_loss` for one fixed ``alpha`` and ``scale`` (Python numbers): the closed
    form of the special cases, else the stable general form with scalar coefficients (a few
    elementwise operations instead of the broadcast selections)."""
    squared = (difference * (1.0 / scale)).square()
    if alpha == 2.0:
        return 0.5 * squared
    if alpha == 1.0:
        return torch.sqrt(squared + 1.0) - 1.0
    if alpha == 0.0:
        return torch.log1p(0.5 * squared)
    if alpha == -2.0:
        return 2.0 * squared / (squared + 4.0)
    if alpha == -math.inf:
        return -torch.expm1(-0.5 * squared)
    b = max(abs(alpha - 2.0), _ALPHA_EPS)
    d = max(alpha, _ALPHA_EPS) if alpha >= 0 else min(alpha, -_ALPHA_EPS)
    return (b / d) * torch.expm1((0.5 * d) * torch.log1p(squared * (1.0 / b)))


@lru_cache(maxsize=1)
def log_partition_table() -> Tensor:
    """``log Z(alpha)`` at :data:`PARTITION_NODES` equally spaced ``alpha`` in ``[0, 2]``,
    float64 (numerical quadrature, see the module docstring; computed once, about 0.5 s)."""
    alphas = torch.linspace(0.0, 2.0, PARTITION_NODES, dtype=torch.float64)
    u = torch.linspace(-20.0, 30.0, 8001, dtype=torch.float64)
    x = torch.exp(u)
    values = []
    for chunk in alphas.split(128):  # bounded memory: 128 x 8001 doubles at a time
        integrand = torch.exp(-general_loss(x.unsqueeze(0), chunk.unsqueeze(1), 1.0)) * x
        half = torch.trapezoid(integrand, u, dim=1) + math.exp(-20.0)  # + the part below e^-20
        values.append(torch.log(2.0 * half))  # the integrand is even in x
    return torch.cat(values)


def log_partition(alpha: Tensor) -> Tensor:
    """``log Z(alpha)`` for ``alpha`` in ``[0, 2]`` (linear interpolation of the table),
    differentiable with respect to ``alpha``."""
    table = log_partition_table().to(device=alpha.device, dtype=alpha.dtype)
    position = alpha.clamp(0.0, 2.0) * ((PARTITION_NODES - 1) / 2.0)
    index = position.detach().floor().clamp(0, PARTITION_NODES - 2).long()
    weight = position - index.to(position.dtype)
    return table[index] * (1.0 - weight) + table[index + 1] * weight


def _per_channel(name: str, value: float | Sequence[float]) -> tuple[float, ...]:
    values = [value] if isinstance(value, (int, float)) else list(value)
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        raise ValueError(f"robust {name} must be a number or one number per channel; got "
                         f"{value!r}. Example: {name}=1 or {name}=1,1,0.5.")
    return tuple(float(v) for v in values)


@register_loss("robust", positional=("alpha", "scale"), aliases=("barron",))
class RobustLoss(PixelLoss):
    """Barron's general robust loss ``rho(x, alpha, c)``, adaptive when alpha/scale are learned.

    ``alpha = 2``: L2 ``0.5 (x/c)^2``; ``1``: pseudo-Huber ``sqrt((x/c)^2+1) - 1``; ``0``:
    Cauchy; ``-2``: Geman-McClure; ``-inf``: Welsch. With ``learn_alpha`` / ``learn_scale`` the
    parameters are learned per channel and the loss is the negative log-likelihood
    ``rho + log c + log Z(alpha)`` (Barron, CVPR 2019; see :mod:`losslab.losses.robust`).

    Args:
        alpha: shape, a number or one per channel (``-inf`` allowed when fixed, from Python;
            in a spec ``-1e3`` is Welsch within 1e-3); with ``learn_alpha`` the initial value,
            inside ``alpha_range``.
        scale: ``c > 0`` in ``[0, 1]`` pixel units, a number or one per channel (the initial
            value when learned).
        view: colour view of the difference (``rgb``, ``luma``, ...), as the pixel losses.
        learn_alpha, learn_scale: make the shape / scale ``nn.Parameter``s (one per channel).
        alpha_range: ``(low, high)`` of a learned alpha, within ``[0, 2]`` (default
            ``(0.001, 1.999)``).
        channels: channels of the viewed difference when a parameter is learned (default: the
            view's, 3 for ``rgb``).
        reduction: ``'mean'`` / ``'sum'`` over elements, or ``'none'`` for ``(N, K, H, W)``.
        lowpass, highpass: optional spatial view of the difference.

    Shape:
        - prediction, target: ``(N, C, H, W)`` (``(N, 3, H, W)`` for a colour view).
        - output: scalar, or ``(N, K, H, W)`` for ``reduction='none'``.

    Example:
        >>> x, y = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.1)
        >>> float(RobustLoss(alpha=2, scale=0.1)(x, y))  # 0.5 (0.1 / 0.1)^2
        0.5
    """

    def __init__(
        self,
        alpha: float | Sequence[float] = 1.0,
        scale: float | Sequence[float] = 0.05,
        view: ViewLike = "rgb",
        learn_alpha: bool = False,
        learn_scale: bool = False,
        alpha_range: Sequence[float] = (0.001, 1.999),
        channels: int | None = None,
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
        self.learn_alpha = bool(check_flag("robust learn_alpha", learn_alpha))
        self.learn_scale = bool(check_flag("robust learn_scale", learn_scale))
        alphas, scales = _per_channel("alpha", alpha), _per_channel("scale", scale)
        if any(math.isnan(a) or a == math.inf for a in alphas):
            raise ValueError(f"robust alpha must be a finite number or -inf; got {alpha!r}.")
        if any(not (s > 0 and math.isfinite(s)) for s in scales):
            raise ValueError(f"robust scale must be positive (in [0, 1] pixel units); got "
                             f"{scale!r}. Example: scale=0.05.")
        learned = self.learn_alpha or self.learn_scale
        count = max(len(alphas), len(scales))
        if learned:
            count = channels if channels is not None else (
                3 if isinstance(self.view, IdentityView) else self.view.out_channels)
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ValueError(f"robust channels must be a positive integer; got {channels!r}.")
        for name, values in (("alpha", alphas), ("scale", scales)):
            if len(values) not in (1, count):
                raise ValueError(f"robust {name} has {len(values)} values; give one, or one per "
                                 f"channel ({count}).")
        low, high = (float(v) for v in alpha_range)
        if not 0.0 <= low < high <= 2.0:
            raise ValueError(f"robust alpha_range must satisfy 0 <= low < high <= 2 (the "
                             f"likelihood exists for alpha >= 0); got {tuple(alpha_range)!r}.")
        self.alpha_range = (low, high)
        if learned and any(not 0.0 <= a <= 2.0 for a in alphas):
            raise ValueError(
                f"a learned robust loss is a likelihood, which exists for 0 <= alpha <= 2; got "
                f"alpha={alpha!r}. Use alpha in [0, 2] (e.g. 1), or learn nothing.")
        self.channels = count if learned else None
        alpha_t = torch.tensor(alphas, dtype=torch.float32).expand(count if learned else len(alphas))
        scale_t = torch.tensor(scales, dtype=torch.float32).expand(count if learned else len(scales))
        if self.learn_alpha:
            if any(not low < a < high for a in alphas):
                raise ValueError(f"robust alpha={alpha!r} must lie inside alpha_range "
                                 f"{self.alpha_range} when learned.")
            fraction = (alpha_t - low) / (high - low)
            self.alpha_latent = nn.Parameter(torch.logit(fraction).clone())
        else:
            self.register_buffer("fixed_alpha", alpha_t.clone())
        if self.learn_scale:
            # inverse softplus of (scale - floor): log(expm1(v))
            self.scale_latent = nn.Parameter(torch.log(torch.expm1(scale_t - SCALE_FLOOR)).clone())
        else:
            self.register_buffer("fixed_scale", scale_t.clone())
        self._fixed_scalars = ((alphas[0], scales[0]) if not learned and len(set(alphas)) == 1
                               and len(set(scales)) == 1 else None)

    @property
    def adaptive(self) -> bool:
        """True when a parameter is learned (the loss is then the negative log-likelihood)."""
        return self.learn_alpha or self.learn_scale

    def alpha(self) -> Tensor:
        """The shape parameter(s), ``(K,)`` (``(1,)`` when one fixed value)."""
        if self.learn_alpha:
            low, high = self.alpha_range
            return low + (high - low) * torch.sigmoid(self.alpha_latent)
        return self.fixed_alpha

    def scale(self) -> Tensor:
        """The scale(s) ``c``, ``(K,)`` (``(1,)`` when one fixed value)."""
        if self.learn_scale:
            return SCALE_FLOOR + F.softplus(self.scale_latent)
        return self.fixed_scale

    def difference_distance(self, difference: Tensor) -> Tensor:
        if self._fixed_scalars is not None:  # one fixed alpha and scale: the cheap path
            return reduce(general_loss_fixed(difference, *self._fixed_scalars), self.reduction)
        alpha, scale = self.alpha(), self.scale()
        channels = difference.shape[1]
        if max(alpha.numel(), scale.numel()) not in (1, channels):
            raise ValueError(
                f"robust has {max(alpha.numel(), scale.numel())} per-channel parameters but the "
                f"viewed difference has {channels} channels; set channels={channels} (or one "
                "value per channel).")
        shape = (1, -1) + (1,) * (difference.dim() - 2)
        alpha = alpha.to(difference.dtype).view(shape)
        scale = scale.to(difference.dtype).view(shape)
        values = general_loss(difference, alpha, scale)
        if self.adaptive:
            values = values + torch.log(scale) + log_partition(alpha)
        return reduce(values, self.reduction)


__all__ = ["RobustLoss", "general_loss", "general_loss_fixed", "log_partition",
           "log_partition_table"]
