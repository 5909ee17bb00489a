"""Base of the losses built on a published image-quality index (GMSD, MS-GMSD, HaarPSI, MDSI,
NLPD): the colour/spatial view rule, the index-to-loss rule and the reduction, in one place.

Index to loss: a *deviation* index (0 for identical images, larger is worse: GMSD, MS-GMSD,
MDSI, NLPD) is the loss as it is; a *similarity* index (1 for identical images: HaarPSI) becomes
``1 - index``. Either way the loss is 0 for identical images.

Views: with the default ``rgb`` view the index does its own colour handling, as its paper does
(for example GMSD on the Y of YIQ, MDSI in LHM); a view with one output channel (``luma``,
``red``, a ``(1, 3)`` matrix) gives the index's greyscale form; a 3-channel result is treated as
RGB. Other channel counts are refused at construction (or, for ``rgb`` on a non-RGB batch, on
the call), with the fix in the message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal

from torch import Tensor

from losslab.core.validation import Reduction, reduce
from losslab.losses.views import IdentityView, ViewedLoss, ViewLike


class QualityIndexLoss(ViewedLoss):
    """A quality index as a loss: ``index`` for a deviation, ``1 - index`` for a similarity.

    Subclasses implement :meth:`index` on viewed images in ``[0, 1]`` with 1 or 3 channels.
    """

    #: ``"deviation"`` (0 for identical images, used as is) or ``"similarity"`` (1 - index).
    index_kind: ClassVar[Literal["deviation", "similarity"]] = "deviation"
    #: Channel counts :meth:`index` accepts (1 = greyscale form, 3 = RGB); ``None``: any count
    #: (an index computed per channel, such as NLPD).
    accepted_channels: ClassVar[tuple[int, ...] | None] = (1, 3)

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
        accepted = self.accepted_channels
        if (accepted is not None and not isinstance(self.view, IdentityView)
                and self.view.out_channels not in accepted):
            raise ValueError(
                f"{self.registered_name} compares a greyscale or an RGB image; the view "
                f"{self.view.name!r} gives {self.view.out_channels} channels. Use a single-channel "
                f"view such as {self.registered_name}(luma) or {self.registered_name}(red), or rgb."
            )

    def check_shapes(self, prediction: Tensor, target: Tensor) -> None:
        super().check_shapes(prediction, target)
        channels = prediction.shape[1]
        accepted = self.accepted_channels
        if accepted is not None and isinstance(self.view, IdentityView) and channels not in accepted:
            raise ValueError(
                f"{self.registered_name} takes RGB (3 channels) or greyscale (1 channel) images; "
                f"got {channels} channels with shape {tuple(prediction.shape)}."
            )

    def index(self, prediction: Tensor, target: Tensor) -> Tensor:
        """The per-image index ``(N,)`` of two viewed batches ``(N, 1 or 3, H, W)`` in ``[0, 1]``."""
        raise NotImplementedError

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        values = self.index(self.viewed(prediction), self.viewed(target))
        if self.index_kind == "similarity":
            values = 1.0 - values
        return reduce(values, self.reduction)
