"""Input checks and name handling shared by the metric functions."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor

from losslab.core.registry import suggest
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


def check_names(kind: str, names: Iterable[str], known: Iterable[str]) -> list[str]:
    """Return ``names`` as a list; an unknown one raises a ``ValueError`` with the closest names."""
    known = list(known)
    result = []
    for name in names:
        if name not in known:
            raise ValueError(
                f"unknown {kind} {name!r}.{suggest(name, known)} Known {kind}s: {', '.join(known)}."
            )
        result.append(name)
    return result
