"""FLIP (LDR-FLIP), NVIDIA's difference evaluator for alternating images (Andersson et al.
2020), and ``ms_flip``, FLIP at several viewing distances.

FLIP predicts, per pixel, how visible the difference is when a viewer flips between the two
images at a given viewing condition, expressed as *pixels per degree* of visual angle
(``pixels_per_degree``; the paper's default 67.02 is a 0.7 m wide 4K monitor seen from 0.7 m:
``0.7 * 3840 / 0.7 * pi / 180``). It is weight-free. The map is in ``[0, 1]``; the loss is its
mean. Pipeline, as the paper describes it:

1. Both sRGB images -> linear RGB -> XYZ (D65, the matrix derived from the sRGB primaries) ->
   YCxCz (``Y_y = 116 Y/Y_n - 16``, ``C_x = 500 (X/X_n - Y/Y_n)``, ``C_z = 200 (Y/Y_n - Z/Z_n)``).
2. **Colour pipeline.** Each YCxCz channel is filtered with its contrast-sensitivity filter, a
   sum of Gaussians in visual degrees ``a_1 sqrt(pi/b_1) exp(-pi^2 r^2/b_1) + a_2 sqrt(pi/b_2)
   exp(-pi^2 r^2/b_2)`` (achromatic ``(1, 0.0047, 0, 1e-5)``, red-green ``(1, 0.0053, 0, 1e-5)``,
   blue-yellow ``(34.1, 0.04, 13.5, 0.025)``), normalised to sum 1, radius
   ``ceil(3 sqrt(0.04 / (2 pi^2)) ppd)`` pixels; back to linear RGB, clamped to ``[0, 1]``, to
   CIELAB, Hunt-adjusted (``a*, b* <- 0.01 L* a*, 0.01 L* b*``); the HyAB distance ``|dL| +
   sqrt(da^2 + db^2)`` raised to ``q_c = 0.7``, and remapped with ``p_c = 0.4``, ``p_t = 0.95``
   against the largest such difference (Hunt-adjusted green against blue), ``c_max``: linear to
   ``p_t`` at ``p_c c_max``, then linear to 1 at ``c_max``.
3. **Feature pipeline.** On the normalised achromatic channel ``(Y_y + 16) / 116`` of the
   unfiltered images: edges (first derivative of a Gaussian) and points (second derivative),
   ``sigma = 0.5 * 0.082 * ppd`` pixels, radius ``ceil(3 sigma)``, positive and negative weights
   each normalised to sum +1 / -1, in x and y; the feature difference ``((1/sqrt 2) max(|
   |e_r| - |e_t| |, | |p_r| - |p_t| |))^{q_f}``, ``q_f = 0.5``.
4. **Combination.** ``FLIP = colour_difference ^ (1 - feature_difference)``.

Filters use replicated borders. Every root, power and ``|.|`` is taken in a safe form (value
exact, gradient 0 at 0), so the gradient is finite for identical images.

``ms_flip``: there is no published multi-scale FLIP. Here it is defined as the mean of FLIP over
a set of viewing conditions, ``pixels_per_degree * (1, 1/2, 1/4)`` by default: the same screen
seen from 1, 1/2 and 1/4 of the distance, where the CSF and feature filters are 1, 1/2 and 1/4
as wide in pixels, so finer differences count too (:class:`MSFLIPLoss`). Evaluating at every
viewing distance of interest is what the paper recommends when one is not known; the equal
weights are ours.

Reference:
    P. Andersson, J. Nilsson, T. Akenine-Möller, M. Oskarsson, K. Åström, M. D. Fairchild,
    "FLIP: A Difference Evaluator for Alternating Images", Proc. ACM Comput. Graph. Interact.
    Tech. 3(2), 2020 (HPG 2020).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.cielab import (
    D65_WHITE,
    apply_matrix,
    srgb_to_linear,
    srgb_to_xyz_matrix,
    xyz_to_lab,
)
from losslab.core.filters import channels_last
from losslab.core.validation import Reduction, check_number, reduce
from losslab.losses._similarity import safe_power, safe_sqrt
from losslab.losses.color_difference import RGBImageLoss
from losslab.losses.registry import register_loss
from losslab.losses.views import ViewLike

#: The paper's viewing condition: 0.7 m from a 0.7 m wide 3840-pixel monitor.
DEFAULT_PIXELS_PER_DEGREE = 0.7 * (3840 / 0.7) * math.pi / 180.0
#: Contrast sensitivity filters ``(a1, b1, a2, b2)`` of Y_y, C_x, C_z.
CSF_PARAMETERS: tuple[tuple[float, float, float, float], ...] = (
    (1.0, 0.0047, 0.0, 1e-5),
    (1.0, 0.0053, 0.0, 1e-5),
    (34.1, 0.04, 13.5, 0.025),
)
#: Colour pipeline exponent and remapping break points.
COLOUR_EXPONENT, COLOUR_BREAK, COLOUR_BREAK_VALUE = 0.7, 0.4, 0.95
#: Feature pipeline exponent and the feature width in degrees.
FEATURE_EXPONENT, FEATURE_WIDTH = 0.5, 0.082


def _depthwise_separable(images: Tensor, horizontal: Tensor, vertical: Tensor) -> Tensor:
    """Per-channel separable filter with replicated borders, same size; taps ``(C, 2r + 1)``.

    One padding for both passes (replicating rows commutes with filtering along rows), and
    channels-last memory order on the CPU (:func:`~losslab.core.filters.channels_last`: depthwise
    convolutions are several times faster there).
    """
    channels, radius = images.shape[1], horizontal.shape[-1] // 2
    padded = channels_last(F.pad(images, (radius, radius, radius, radius), mode="replicate"))
    out = F.conv2d(padded, horizontal.view(channels, 1, 1, -1), groups=channels)
    return F.conv2d(out, vertical.view(channels, 1, -1, 1), groups=channels)


def csf_filters(pixels_per_degree: float) -> tuple[Tensor, Tensor]:
    """The three CSF filters as weighted separable Gaussians: ``(weights (2, 3), taps (2, 3, 2r+1))``,
    float64 (cached per viewing condition).

    Channel ``c``'s 2-D kernel (normalised to sum 1) is ``sum_k weights[k, c] taps[k, c] (x)
    taps[k, c]`` (each 1-D ``taps[k, c]`` sums to 1).
    """
    largest = max(max(b1, b2) for _, b1, _, b2 in CSF_PARAMETERS)
    radius = math.ceil(3.0 * math.sqrt(largest / (2.0 * math.pi**2)) * pixels_per_degree)
    degrees = torch.arange(-radius, radius + 1, dtype=torch.float64) / pixels_per_degree
    weights, taps = torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 3, 2 * radius + 1,
                                                                         dtype=torch.float64)
    for channel, (a1, b1, a2, b2) in enumerate(CSF_PARAMETERS):
        for k, (a, b) in enumerate(((a1, b1), (a2, b2))):
            gaussian = torch.exp(-(math.pi**2) * degrees**2 / b)
            total = float(gaussian.sum())
            # 2-D sum of a sqrt(pi/b) exp(-pi^2 (x^2+y^2)/b) is a sqrt(pi/b) total^2.
            weights[k, channel] = a * math.sqrt(math.pi / b) * total * total
            taps[k, channel] = gaussian / total
    return weights / weights.sum(dim=0, keepdim=True), taps


@lru_cache(maxsize=16)
def feature_filters(pixels_per_degree: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(gaussian, edge, point)`` 1-D taps of the feature detectors (the 2-D kernels are
    ``edge (x) gaussian`` and ``point (x) gaussian``, normalised as the paper says: positive
    weights sum to 1, negative ones to -1)."""
    sigma = 0.5 * FEATURE_WIDTH * pixels_per_degree
    radius = math.ceil(3.0 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    gaussian = torch.exp(-(x * x) / (2.0 * sigma * sigma))

    def signed_normalised(values: Tensor) -> Tensor:
        positive, negative = values.clamp_min(0), values.clamp_max(0)
        return positive / positive.sum() - negative / negative.sum()

    edge = signed_normalised(-x * gaussian)
    point = signed_normalised((x * x / (sigma * sigma) - 1.0) * gaussian)
    return gaussian / gaussian.sum(), edge, point


def _ycxcz(linear_rgb: Tensor, matrix: Tensor, white: Tensor) -> Tensor:
    relative = apply_matrix(linear_rgb, matrix) / white
    x, y, z = relative.unbind(dim=1)
    return torch.stack([116.0 * y - 16.0, 500.0 * (x - y), 200.0 * (y - z)], dim=1)


def _hunt_lab(ycxcz: Tensor, matrix: Tensor, white: Tensor) -> Tensor:
    """Filtered YCxCz -> linear RGB (clamped) -> CIELAB, Hunt-adjusted."""
    luminance = (ycxcz[:, 0] + 16.0) / 116.0
    relative = torch.stack([ycxcz[:, 1] / 500.0 + luminance, luminance,
                            luminance - ycxcz[:, 2] / 200.0], dim=1)
    rgb = apply_matrix(relative * white, torch.linalg.inv(matrix)).clamp(0.0, 1.0)
    lab = xyz_to_lab(apply_matrix(rgb, matrix), D65_WHITE)
    lightness = lab[:, :1]
    return torch.cat([lightness, 0.01 * lightness * lab[:, 1:]], dim=1)


def _hyab(first: Tensor, second: Tensor) -> Tensor:
    difference = first - second
    return difference[:, 0].abs() + safe_sqrt(difference[:, 1] ** 2 + difference[:, 2] ** 2)


@lru_cache(maxsize=1)
def largest_colour_difference() -> float:
    """``c_max``: HyAB of Hunt-adjusted green and blue, raised to ``q_c`` (41.28)."""
    matrix = srgb_to_xyz_matrix(exact=True)
    white = torch.tensor(D65_WHITE, dtype=torch.float64).view(1, 3, 1, 1)
    primaries = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    ycxcz = _ycxcz(primaries.view(1, 3, 1, 2), matrix, white)
    lab = _hunt_lab(ycxcz, matrix, white)
    return float(_hyab(lab[..., :1], lab[..., 1:]).squeeze() ** COLOUR_EXPONENT)


def flip_map(prediction: Tensor, target: Tensor,
             pixels_per_degree: float = DEFAULT_PIXELS_PER_DEGREE) -> Tensor:
    """Per-pixel LDR-FLIP ``(N, H, W)`` in ``[0, 1]`` of sRGB images ``(N, 3, H, W)`` in ``[0, 1]``.

    0 where nothing differs; symmetric in its two arguments. See the module docstring.
    """
    dtype = prediction.dtype
    matrix = srgb_to_xyz_matrix(exact=True).to(prediction)
    white = torch.tensor(D65_WHITE, dtype=dtype, device=prediction.device).view(1, 3, 1, 1)
    count = prediction.shape[0]
    both = torch.cat([prediction, target], dim=0)  # one filter pass for the two images
    ycxcz = _ycxcz(srgb_to_linear(both), matrix, white)

    # Colour pipeline: Y_y, C_x, C_z (first Gaussian) and C_z (second) in one depthwise pass
    weights, taps = (t.to(prediction) for t in csf_filters(pixels_per_degree))
    channel_taps = torch.cat([taps[0], taps[1, 2:]])
    spread = _depthwise_separable(torch.cat([ycxcz, ycxcz[:, 2:]], dim=1), channel_taps,
                                  channel_taps)
    filtered = torch.cat([spread[:, :2], weights[0, 2] * spread[:, 2:3]
                          + weights[1, 2] * spread[:, 3:]], dim=1)
    lab = _hunt_lab(filtered, matrix, white)
    colour = safe_power(_hyab(lab[:count], lab[count:]), COLOUR_EXPONENT)
    c_max = largest_colour_difference()
    knee = COLOUR_BREAK * c_max
    colour = torch.where(colour < knee, colour * (COLOUR_BREAK_VALUE / knee),
                         COLOUR_BREAK_VALUE + (colour - knee) / (c_max - knee)
                         * (1.0 - COLOUR_BREAK_VALUE))

    # Feature pipeline on the normalised achromatic channel of the unfiltered images
    luminance = ((ycxcz[:, :1] + 16.0) / 116.0)
    gaussian, edge, point = (t.to(prediction) for t in feature_filters(pixels_per_degree))
    radius = gaussian.shape[0] // 2
    padded = channels_last(F.pad(luminance, (radius, radius, radius, radius), mode="replicate"))
    # along x: edge, point, Gaussian; along y: Gaussian, Gaussian, edge, point
    along_x = F.conv2d(padded, torch.stack([edge, point, gaussian]).view(3, 1, 1, -1))
    along_x = torch.cat([along_x, along_x[:, 2:]], dim=1)
    stacked = F.conv2d(along_x, torch.stack([gaussian, gaussian, edge, point]).view(4, 1, -1, 1),
                       groups=4)  # edge_x, point_x, edge_y, point_y
    stacked = stacked[:, [0, 2, 1, 3]]
    squared = stacked * stacked
    edges = safe_sqrt(squared[:, 0] + squared[:, 1])
    points = safe_sqrt(squared[:, 2] + squared[:, 3])
    feature = torch.maximum((edges[:count] - edges[count:]).abs(),
                            (points[:count] - points[count:]).abs())
    feature = safe_power(feature / math.sqrt(2.0), FEATURE_EXPONENT)

    # colour ^ (1 - feature): 0 stays 0 (with gradient 0), any positive colour difference is
    # raised towards 1 where features differ.
    tiny = torch.finfo(dtype).tiny
    return torch.where(colour > 0, colour.clamp_min(tiny) ** (1.0 - feature), 0.0)


@register_loss("flip", positional=("view",), aliases=("ldr_flip",))
class FLIPLoss(RGBImageLoss):
    """FLIP (LDR), NVIDIA's perceptual difference evaluator for alternating images (Andersson
    et al. 2020): mean of its per-pixel map in ``[0, 1]``.

    Colour (CSF-filtered YCxCz, Hunt-adjusted HyAB) and feature (edges, points) differences
    at a viewing condition in pixels per degree; weight-free, 0 when equal. See
    :mod:`losslab.losses.flip`.

    Args:
        view: ``rgb`` (default) or a 3-channel colour matrix; a 1-channel view is refused.
        pixels_per_degree: viewing condition (default 67.02: 0.7 m from a 0.7 m wide 4K screen);
            more pixels per degree (further away) hides finer differences.
        reduction: ``'mean'`` / ``'sum'`` over pixels and images, or ``'none'`` for the map.
        lowpass: optional Gaussian pyramid level of both images before the comparison.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` in ``input_range``.
        - output: scalar in ``[0, 1]`` (mean), or ``(N, 1, H, W)`` for ``reduction='none'``.
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        pixels_per_degree: float = DEFAULT_PIXELS_PER_DEGREE,
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
        self.pixels_per_degree = check_number(
            "flip pixels_per_degree", pixels_per_degree, low=1.0, high=1000.0, example="67.02")

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        values = flip_map(self.viewed(prediction), self.viewed(target), self.pixels_per_degree)
        return reduce(values.unsqueeze(1), self.reduction)


@register_loss("ms_flip", positional=("view",), aliases=("msflip",))
class MSFLIPLoss(RGBImageLoss):
    """Multi-distance FLIP (losslab's definition): the mean of FLIP at several viewing
    conditions, ``pixels_per_degree * factors`` (default factors 1, 1/2, 1/4).

    No multi-scale FLIP is published; this one averages FLIP (Andersson et al. 2020) over the
    same screen seen from 1, 1/2 and 1/4 of the distance, so differences visible up close and
    those visible from afar both count, instead of one assumed viewing distance.

    Args:
        view: ``rgb`` (default) or a 3-channel colour matrix; a 1-channel view is refused.
        pixels_per_degree: the farthest viewing condition (default 67.02).
        factors: multipliers of ``pixels_per_degree``, one FLIP each, equally weighted.
        reduction: ``'mean'`` / ``'sum'`` over pixels and images, or ``'none'`` for the map
            (the mean of the FLIP maps).
        lowpass: optional Gaussian pyramid level of both images before the comparison.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` in ``input_range``.
        - output: scalar in ``[0, 1]``, or ``(N, 1, H, W)`` for ``reduction='none'``.
    """

    def __init__(
        self,
        view: ViewLike = "rgb",
        pixels_per_degree: float = DEFAULT_PIXELS_PER_DEGREE,
        factors: Sequence[float] = (1.0, 0.5, 0.25),
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
        self.pixels_per_degree = check_number(
            "ms_flip pixels_per_degree", pixels_per_degree, low=1.0, high=1000.0, example="67.02")
        values = [factors] if isinstance(factors, (int, float)) else list(factors)
        if not values or len(values) > 8 or any(
                isinstance(f, bool) or not isinstance(f, (int, float))
                or not 1.0 <= f * self.pixels_per_degree <= 1000.0 for f in values):
            raise ValueError(
                f"ms_flip factors must be 1 to 8 positive numbers with pixels_per_degree * factor "
                f"in [1, 1000]; got {factors!r}. Example: factors=1,0.5,0.25.")
        self.factors = tuple(float(f) for f in values)

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        prediction, target = self.viewed(prediction), self.viewed(target)
        maps = [flip_map(prediction, target, self.pixels_per_degree * f) for f in self.factors]
        return reduce((sum(maps) / len(maps)).unsqueeze(1), self.reduction)  # type: ignore[union-attr]


__all__ = ["DEFAULT_PIXELS_PER_DEGREE", "FLIPLoss", "MSFLIPLoss", "csf_filters",
           "feature_filters", "flip_map", "largest_colour_difference"]
