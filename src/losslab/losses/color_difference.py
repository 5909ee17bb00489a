"""Colour differences in CIELAB: CIEDE2000 (``ciede2000``) and CIE 1976 ΔE*ab (``delta_e76``).

Both compare two sRGB images pixel by pixel in CIELAB (:mod:`losslab.core.cielab`: IEC
61966-2-1 sRGB, its four-decimal matrix, D65 white ``xy = (0.3127, 0.3290)``, CIE 15 constants),
so a difference of 1 is about one just-noticeable colour step whatever the channel. ΔE*76 is
the Euclidean distance ``sqrt(dL^2 + da^2 + db^2)``; CIEDE2000 (CIE 142-2001) re-weights
lightness, chroma and hue (``S_L``, ``S_C``, ``S_H``), adds the blue-region rotation ``R_T`` and
rescales a* near the neutral axis (``G``), following the formulas as Sharma, Wu and Dalal (2005)
state them (their note on the mean hue and the hue difference when a chroma is 0 included).

The gradient is finite everywhere, identical images included: every square root and
``atan2`` is taken in a safe form (``safe_sqrt``: value exact, gradient 0 at 0; ``atan2`` at
``a = b = 0`` is taken as hue 0, as the standard does, without a gradient there).

One function per measure: :func:`ciede2000_map` is the loss and the metric ``err_deltae``
(:mod:`losslab.metrics.color`).

References:
    CIE 142-2001, "Improvement to industrial colour-difference evaluation".
    G. Sharma, W. Wu, E. N. Dalal, "The CIEDE2000 color-difference formula: implementation
    notes, supplementary test data, and mathematical observations", Color Res. Appl. 30(1), 2005.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from losslab.core.cielab import srgb_to_lab
from losslab.core.validation import Reduction, check_number, reduce
from losslab.losses._similarity import safe_sqrt
from losslab.losses.registry import register_loss
from losslab.losses.views import IdentityView, ViewedLoss, ViewLike

_TWENTY_FIVE_TO_SEVENTH = 25.0**7


def _chroma(a: Tensor, b: Tensor) -> Tensor:
    return safe_sqrt(a * a + b * b)


def _hue_degrees(a: Tensor, b: Tensor) -> Tensor:
    """Hue angle in ``[0, 360)`` degrees; 0 (and no gradient) where ``a = b = 0``."""
    grey = (a == 0) & (b == 0)
    # atan2's slope is 0/0 at the origin: feed it (1, 0) there so both branches stay finite.
    angle = torch.atan2(torch.where(grey, 0.0, b), torch.where(grey, 1.0, a))
    return torch.remainder(torch.rad2deg(angle), 360.0)


def _seventh_ratio(chroma: Tensor) -> Tensor:
    """``sqrt(C^7 / (C^7 + 25^7))``, gradient 0 at ``C = 0``."""
    seventh = chroma**7
    return safe_sqrt(seventh / (seventh + _TWENTY_FIVE_TO_SEVENTH))


def ciede2000_lab(lab1: Tensor, lab2: Tensor, k_l: float = 1.0, k_c: float = 1.0,
                  k_h: float = 1.0) -> Tensor:
    """CIEDE2000 ΔE00 between two CIELAB tensors ``(N, 3, ...)`` (channel 1 = L*, a*, b*).

    Returns ``(N, ...)`` (the channel dimension removed), >= 0, 0 where the colours are equal.
    ``k_l``, ``k_c``, ``k_h``: the parametric factors (1 for the reference conditions).
    """
    l1, a1, b1 = lab1.unbind(dim=1)
    l2, a2, b2 = lab2.unbind(dim=1)
    mean_chroma = 0.5 * (_chroma(a1, b1) + _chroma(a2, b2))
    g = 0.5 * (1.0 - _seventh_ratio(mean_chroma))
    a1, a2 = (1.0 + g) * a1, (1.0 + g) * a2
    c1, c2 = _chroma(a1, b1), _chroma(a2, b2)
    h1, h2 = _hue_degrees(a1, b1), _hue_degrees(a2, b2)
    chroma_product = c1 * c2
    achromatic = chroma_product == 0

    delta_l = l2 - l1
    delta_c = c2 - c1
    delta_h = h2 - h1
    delta_h = torch.where(delta_h > 180.0, delta_h - 360.0,
                          torch.where(delta_h < -180.0, delta_h + 360.0, delta_h))
    delta_h = torch.where(achromatic, 0.0, delta_h)
    delta_big_h = 2.0 * safe_sqrt(chroma_product) * torch.sin(torch.deg2rad(0.5 * delta_h))

    mean_l = 0.5 * (l1 + l2)
    mean_c = 0.5 * (c1 + c2)
    hue_sum = h1 + h2
    far = (h1 - h2).abs() > 180.0
    mean_h = torch.where(far, torch.where(hue_sum < 360.0, hue_sum + 360.0, hue_sum - 360.0),
                         hue_sum) * 0.5
    mean_h = torch.where(achromatic, hue_sum, mean_h)

    t = (1.0 - 0.17 * torch.cos(torch.deg2rad(mean_h - 30.0))
         + 0.24 * torch.cos(torch.deg2rad(2.0 * mean_h))
         + 0.32 * torch.cos(torch.deg2rad(3.0 * mean_h + 6.0))
         - 0.20 * torch.cos(torch.deg2rad(4.0 * mean_h - 63.0)))
    rotation_angle = 30.0 * torch.exp(-(((mean_h - 275.0) / 25.0) ** 2))
    r_c = 2.0 * _seventh_ratio(mean_c)
    offset = (mean_l - 50.0) ** 2
    s_l = 1.0 + 0.015 * offset / torch.sqrt(20.0 + offset)
    s_c = 1.0 + 0.045 * mean_c
    s_h = 1.0 + 0.015 * mean_c * t
    r_t = -torch.sin(torch.deg2rad(2.0 * rotation_angle)) * r_c

    lightness = delta_l / (k_l * s_l)
    chroma = delta_c / (k_c * s_c)
    hue = delta_big_h / (k_h * s_h)
    # |R_T| <= 2 keeps the quadratic form >= 0; safe_sqrt gives 0 (gradient 0) at equality.
    return safe_sqrt(lightness * lightness + chroma * chroma + hue * hue + r_t * chroma * hue)


def delta_e76_lab(lab1: Tensor, lab2: Tensor) -> Tensor:
    """CIE 1976 ΔE*ab ``sqrt(dL^2 + da^2 + db^2)`` of CIELAB ``(N, 3, ...)`` -> ``(N, ...)``."""
    difference = lab1 - lab2
    return safe_sqrt((difference * difference).sum(dim=1))


def ciede2000_map(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-pixel CIEDE2000 ``(N, H, W)`` of sRGB images ``(N, 3, H, W)`` in ``[0, 1]``.

    The function behind the ``ciede2000`` loss and the ``err_deltae`` metric.
    """
    return ciede2000_lab(srgb_to_lab(prediction), srgb_to_lab(target))


def delta_e76_map(prediction: Tensor, target: Tensor) -> Tensor:
    """Per-pixel CIE 1976 ΔE*ab ``(N, H, W)`` of sRGB images ``(N, 3, H, W)`` in ``[0, 1]``."""
    return delta_e76_lab(srgb_to_lab(prediction), srgb_to_lab(target))


class RGBImageLoss(ViewedLoss):
    """Base of the losses defined on colours (CIELAB differences, FLIP): the compared images
    must be RGB, so a view must give 3 channels (``rgb`` or a ``(3, 3)`` colour matrix) and
    only the Gaussian spatial view (``lowpass=K``, still an image) is allowed; a Laplacian band
    (``highpass=K``) has no colours."""

    required_channels = 3

    def __init__(
        self,
        view: ViewLike = "rgb",
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
        name = self.registered_name
        if self.view.out_channels != 3:
            raise ValueError(
                f"{name} compares colours and needs an RGB image; the view {self.view.name!r} "
                f"gives {self.view.out_channels} channel(s). Use {name} on rgb (the default), or "
                f"a pixel loss such as l1({self.view.name}) for a single channel."
            )
        if highpass is not None:
            raise ValueError(
                f"{name} compares colours; a Laplacian band (highpass={highpass}) is not an "
                f"image with colours. Use lowpass=K, or no spatial view."
            )
        self.required_channels = 3

    def viewed(self, images: Tensor) -> Tensor:
        if isinstance(self.view, IdentityView) and self.spatial is None:
            return images
        # A colour matrix or a blur may leave [0, 1] slightly; colours are defined inside it.
        return super().viewed(images).clamp(0.0, 1.0)


class _CIELABDifferenceLoss(RGBImageLoss):
    """Shared construction of ``ciede2000`` and ``delta_e76``: view, then a per-pixel map."""

    def pixel_map(self, prediction: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        values = self.pixel_map(self.viewed(prediction), self.viewed(target))
        return reduce(values.unsqueeze(1), self.reduction)


@register_loss("ciede2000", positional=("view",), aliases=("delta_e2000", "deltae2000"))
class CIEDE2000Loss(_CIELABDifferenceLoss):
    """CIEDE2000 colour difference ΔE00 in CIELAB (CIE 142-2001), mean over pixels.

    sRGB (IEC 61966-2-1) -> linear -> XYZ -> CIELAB (D65) for both images, then ΔE00 per pixel
    (Sharma, Wu & Dalal 2005); about 1 per just-noticeable difference, 0 when equal, with a
    finite gradient there. See :mod:`losslab.losses.color_difference`.

    Args:
        view: ``rgb`` (default) or a 3-channel colour matrix; a 1-channel view is refused.
        k_l, k_c, k_h: parametric factors for lightness, chroma and hue (1 = reference
            conditions; textiles use ``k_l=2``).
        reduction: ``'mean'`` / ``'sum'`` over pixels and images, or ``'none'`` for the map.
        lowpass: optional Gaussian pyramid level of both images before the comparison.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` in ``input_range``.
        - output: scalar, or ``(N, 1, H, W)`` ΔE00 values for ``reduction='none'``.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> float(CIEDE2000Loss()(x, x))
        0.0
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        k_l: float = 1.0,
        k_c: float = 1.0,
        k_h: float = 1.0,
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
        self.k_l, self.k_c, self.k_h = (
            check_number(f"ciede2000 {name}", value, low=0.0, low_open=True, example="1")
            for name, value in (("k_l", k_l), ("k_c", k_c), ("k_h", k_h))
        )

    def pixel_map(self, prediction: Tensor, target: Tensor) -> Tensor:
        if (self.k_l, self.k_c, self.k_h) == (1.0, 1.0, 1.0):
            return ciede2000_map(prediction, target)
        return ciede2000_lab(srgb_to_lab(prediction), srgb_to_lab(target),
                             self.k_l, self.k_c, self.k_h)


@register_loss("delta_e76", positional=("view",), aliases=("cie76", "deltae76"))
class DeltaE76Loss(_CIELABDifferenceLoss):
    """CIE 1976 colour difference ΔE*ab: Euclidean distance in CIELAB, mean over pixels.

    sRGB (IEC 61966-2-1) -> linear -> XYZ -> CIELAB (D65), then ``sqrt(dL^2 + da^2 + db^2)``
    per pixel (CIE 15:2004); 0 when equal, finite gradient there. Simpler and less uniform than
    CIEDE2000 (it over-weights saturated colours).

    Args:
        view: ``rgb`` (default) or a 3-channel colour matrix; a 1-channel view is refused.
        reduction: ``'mean'`` / ``'sum'`` over pixels and images, or ``'none'`` for the map.
        lowpass: optional Gaussian pyramid level of both images before the comparison.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` in ``input_range``.
        - output: scalar, or ``(N, 1, H, W)`` ΔE*ab values for ``reduction='none'``.
    """

    def pixel_map(self, prediction: Tensor, target: Tensor) -> Tensor:
        return delta_e76_map(prediction, target)


__all__ = [
    "CIEDE2000Loss",
    "DeltaE76Loss",
    "RGBImageLoss",
    "ciede2000_lab",
    "ciede2000_map",
    "delta_e76_lab",
    "delta_e76_map",
]
