"""Normalised Laplacian pyramid distance, NLPD (Laparra et al. 2016), as a loss.

NLPD models two early stages of vision: a Laplacian pyramid removes the local mean luminance at
six scales, then each band coefficient is divided by a weighted sum of its neighbours' absolute
values plus a constant (divisive normalisation, a local gain control). Two images are compared
per band by the root mean squared difference of the normalised coefficients, and the six band
distances are averaged. Coarse bands have few coefficients, so each coarse coefficient weighs
more. It is a *deviation*: 0 for identical images, larger is worse; the loss is the distance.

Conventions (those of plenoptic 2.1's ``nlpd``, which copies the parameters of the authors'
MATLAB code ``NLP_dist.m``):

- computed per channel of the view (the default view is ``luma``, BT.601: NLPD is defined on
  greyscale images; ``rgb`` gives the mean of the per-channel distances, as plenoptic treats
  channels like batch entries);
- a 6-level Laplacian pyramid with the binomial kernel ``[1, 4, 6, 4, 1] / 16`` and reflect
  padding (:mod:`losslab.core.filters`): five band-pass levels and the low-pass residual;
- band ``k`` is divided by ``sigma_k + (|band| * P_k)`` with the 5 x 5 pooling filters ``P_k``
  (zero padding) and constants ``sigma_k`` below;
- ``NLPD = mean_k sqrt(mean_pixels((y_p - y_t)^2) + eps) - sqrt(eps)``, ``eps = 1e-10``.

Difference from plenoptic: plenoptic returns ``mean_k sqrt(... + eps)`` (``sqrt(eps) = 1e-5``
for identical images); this loss subtracts ``sqrt(eps)`` so identical images cost exactly 0.
``eps`` keeps the gradient finite where the two images agree.

Reference:
    V. Laparra, J. Ballé, A. Berardino, E. P. Simoncelli, "Perceptual image quality assessment
    using a normalized Laplacian pyramid", Human Vision and Electronic Imaging, Electronic
    Imaging 2016(16), pp. 1-6.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

from losslab.core.filters import channels_last, laplacian_pyramid, pyramid_min_size
from losslab.core.validation import Reduction, check_pair
from losslab.losses._index import QualityIndexLoss
from losslab.losses.registry import register_loss
from losslab.losses.views import ViewLike

#: Pyramid levels of NLPD (five bands and the low-pass residual).
NLPD_LEVELS = 6
#: Divisive-normalisation constants ``sigma_k``, finest level first (Laparra et al. 2016).
NLPD_SIGMAS = (0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)
#: Non-zero taps ``{(row, column): weight}`` of the 5 x 5 pooling filters, finest level first
#: (Laparra et al. 2016; the centre is 0: a coefficient is normalised by its neighbours).
NLPD_POOLING_TAPS: tuple[dict[tuple[int, int], float], ...] = (
    {(1, 2): 0.1011, (2, 1): 0.1493, (2, 3): 0.1460, (2, 4): 0.0072, (3, 2): 0.1015},
    {(1, 2): 0.0757, (2, 1): 0.1986, (2, 3): 0.1846, (3, 2): 0.0837},
    {(1, 2): 0.0477, (2, 1): 0.2138, (2, 3): 0.2243, (3, 2): 0.0467},
    {(2, 1): 0.2503, (2, 3): 0.2616},
    {(2, 1): 0.2598, (2, 3): 0.2552},
    {(2, 1): 0.2215, (2, 3): 0.0717},
)
#: Smallest image side: the fifth Gaussian level must still have 3 pixels (33 px).
NLPD_MIN_SIZE = pyramid_min_size(NLPD_LEVELS - 2)


def pooling_filters(*, dtype: torch.dtype = torch.float32) -> Tensor:
    """The six 5 x 5 pooling filters as one ``(6, 5, 5)`` tensor."""
    filters = torch.zeros(NLPD_LEVELS, 5, 5, dtype=dtype)
    for level, taps in enumerate(NLPD_POOLING_TAPS):
        for (row, column), weight in taps.items():
            filters[level, row, column] = weight
    return filters


def normalised_laplacian_pyramid(images: Tensor, filters: Tensor | None = None) -> list[Tensor]:
    """The six divisively normalised Laplacian levels of ``(N, C, H, W)`` images, finest first.

    Channels are independent. Level ``k`` has the size of the ``k``-th Gaussian level.
    """
    filters = pooling_filters(dtype=images.dtype) if filters is None else filters
    filters = filters.to(dtype=images.dtype, device=images.device)
    channels = images.shape[1]
    result = []
    for level, band in enumerate(laplacian_pyramid(images, NLPD_LEVELS)):
        kernel = filters[level].view(1, 1, 5, 5).expand(channels, 1, 5, 5)
        pooled = F.conv2d(channels_last(band.abs()), kernel, padding=2, groups=channels)
        result.append(band / (NLPD_SIGMAS[level] + pooled))
    return result


def nlpd(
    prediction: Tensor, target: Tensor, *, eps: float = 1e-10, filters: Tensor | None = None
) -> Tensor:
    """Per-image NLPD ``(N,)``: the mean over channels of the per-channel distance; 0 when equal.

    Args:
        prediction, target: ``(N, C, H, W)`` in ``[0, 1]`` (greyscale by design),
            ``H, W >= 33``.
        eps: added under each band's root (gradient safety); ``sqrt(eps)`` is subtracted again.

    Returns:
        ``(N,)`` distances >= 0 (plenoptic's ``nlpd(...).mean(channels) - sqrt(eps)``).
    """
    check_pair(prediction, target, min_size=NLPD_MIN_SIZE)
    total: Tensor | None = None
    for band_p, band_t in zip(
        normalised_laplacian_pyramid(prediction, filters),
        normalised_laplacian_pyramid(target, filters),
        strict=True,
    ):
        difference = band_p - band_t
        distance = torch.sqrt((difference * difference).mean(dim=(2, 3)) + eps)
        total = distance if total is None else total + distance
    return (total / NLPD_LEVELS - math.sqrt(eps)).mean(dim=1)  # type: ignore[operator]


@register_loss("nlpd", positional=("view",))
class NLPDLoss(QualityIndexLoss):
    """Normalised Laplacian pyramid distance (Laparra et al. 2016), a deviation: 0 when equal.

    Six Laplacian bands, each divided by a local weighted sum of neighbouring magnitudes (a gain
    control), compared by RMSE per band and averaged. Used as it is (a distance). Computed on
    ``luma`` by default (NLPD is a greyscale model); other views give the mean over their
    channels. See :mod:`losslab.losses.nlpd` for the exact convention (plenoptic's, minus
    ``sqrt(eps)``).

    Args:
        view: colour view (default ``luma``); any channel count.
        reduction: ``'mean'`` / ``'sum'`` over images, or ``'none'`` for ``(N,)``.
        lowpass, highpass: optional spatial view (pyramid level), after the colour view.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` (``(N, C, H, W)`` with ``rgb``), ``H, W >= 33``.
        - output: scalar, or ``(N,)`` for ``reduction='none'``; >= 0, 0 when equal.
    """

    accepted_channels = None
    min_size = NLPD_MIN_SIZE

    def __init__(
        self,
        view: ViewLike = "luma",
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
        self.register_buffer("filters", pooling_filters(), persistent=False)

    @property
    def term_name(self) -> str:
        explicit = getattr(self, "_term_name", None)
        if explicit:
            return explicit
        # luma is the default here, so it is left out of the name and rgb is spelled out.
        options = [] if self.view.name == "luma" else [self.view.name]
        if self.spatial is not None:
            options.append(self.spatial.name)
        return self.registered_name + (f"({', '.join(options)})" if options else "")

    @term_name.setter
    def term_name(self, value: str) -> None:
        self._term_name = value

    def index(self, prediction: Tensor, target: Tensor) -> Tensor:
        return nlpd(prediction, target, filters=self.filters)
