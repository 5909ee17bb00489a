"""The input check shared by the metric functions (names are looked up in the metric table,
:data:`losslab.metrics.table.METRICS`, a :class:`~losslab.core.registry.Registry`)."""

from __future__ import annotations

from torch import Tensor

from losslab.core.validation import check_pair


def check_image_pair(outputs: Tensor, targets: Tensor, *, min_size: int | None = None) -> None:
    """Both ``(N, 3, H, W)`` float batches of the same shape, dtype and device."""
    try:
        check_pair(outputs, targets, channels=3, min_size=min_size)
    except ValueError as error:
        message = str(error).replace("prediction", "outputs").replace("target", "targets")
        raise ValueError(message) from None
    except TypeError as error:
        message = str(error).replace("prediction", "outputs").replace("target", "targets")
        raise TypeError(message) from None
