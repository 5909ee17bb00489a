"""Colour views: *what* a distance compares. ``l1(luma)`` compares luma only, so any colour
change that keeps luma costs nothing; ``l1(red)`` compares the red channel only.

A view maps an RGB batch ``(N, 3, H, W)`` to ``(N, K, H, W)`` by a fixed linear colour transform
(a registered buffer, so ``.to(device)`` and ``state_dict`` follow the module). Values are in the
units of the input (``[0, 1]`` RGB gives luma in ``[0, 1]`` and chroma in ``[-0.5, 0.5]``).

Standards: luma is ITU-R BT.601 (``Y = 0.299 R + 0.587 G + 0.114 B``) by default, BT.709
(``0.2126, 0.7152, 0.0722``) selectable; chroma is the (Cb, Cr) pair of YCbCr with the same
standard, ``Cb = (B - Y) / (2 (1 - Kb))``, ``Cr = (R - Y) / (2 (1 - Kr))``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from losslab.core.color import LumaStandard, luma_weights, ycbcr_matrix
from losslab.core.registry import Registry, suggest
from losslab.core.validation import (
    Reduction,
    check_choice,
    check_image,
    check_pair,
    check_reduction,
)
from losslab.losses.base import Loss
from losslab.losses.spatial import SpatialView


class ColorView(nn.Module):
    """A linear colour transform ``(N, 3, H, W) -> (N, K, H, W)``: ``out_k = sum_c M[k, c] x_c``.

    Args:
        matrix: ``(K, 3)`` weights (any user-given linear colour transform).
        name: how the view appears in spec strings and logs.
    """

    def __init__(self, matrix: Tensor | Sequence[Sequence[float]], name: str = "linear") -> None:
        super().__init__()
        weights = torch.as_tensor(matrix, dtype=torch.float32)
        if weights.dim() == 1:
            weights = weights.unsqueeze(0)
        if weights.dim() != 2 or weights.shape[1] != 3:
            raise ValueError(
                f"a colour transform must be a (K, 3) matrix (one row of R, G, B weights per output "
                f"channel); got shape {tuple(weights.shape)}."
            )
        self.register_buffer("matrix", weights)
        self.name = name

    @property
    def out_channels(self) -> int:
        return int(self.matrix.shape[0])

    def forward(self, images: Tensor) -> Tensor:
        check_image(images, "images", channels=3)
        matrix = self.matrix.to(images.dtype)
        return torch.einsum("kc,nchw->nkhw", matrix, images)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, out_channels={self.out_channels}"


class IdentityView(ColorView):
    """All channels as they are (``rgb``); works for any channel count."""

    def __init__(self) -> None:
        super().__init__(torch.eye(3), name="rgb")

    def forward(self, images: Tensor) -> Tensor:
        return images


class ChannelView(ColorView):
    """A single RGB channel (``red``, ``green`` or ``blue``): ``(N, 3, H, W) -> (N, 1, H, W)``."""

    CHANNELS = ("red", "green", "blue")

    def __init__(self, channel: Literal["red", "green", "blue"]) -> None:
        check_choice("channel", channel, self.CHANNELS)
        super().__init__(torch.eye(3)[self.CHANNELS.index(channel)], name=channel)
        self.index = self.CHANNELS.index(channel)

    def forward(self, images: Tensor) -> Tensor:
        check_image(images, "images", channels=3)
        return images[:, self.index : self.index + 1]  # a view, no arithmetic: cheaper than einsum


class LumaView(ColorView):
    """Luma (grayscale) ``Y``, BT.601 by default: ``(N, 3, H, W) -> (N, 1, H, W)``."""

    def __init__(self, standard: LumaStandard = "bt601") -> None:
        name = "luma" if standard == "bt601" else f"luma_{standard}"
        super().__init__([luma_weights(standard)], name=name)
        self.standard = standard

    def forward(self, images: Tensor) -> Tensor:
        check_image(images, "images", channels=3)
        kr, kg, kb = luma_weights(self.standard)
        # Scalar weights avoid an einsum launch and match the BT formula term by term.
        return kr * images[:, 0:1] + kg * images[:, 1:2] + kb * images[:, 2:3]


class ChromaView(ColorView):
    """Chroma (Cb, Cr) of YCbCr: ``(N, 3, H, W) -> (N, 2, H, W)``; blind to luma changes."""

    def __init__(self, standard: LumaStandard = "bt601") -> None:
        name = "chroma" if standard == "bt601" else f"chroma_{standard}"
        super().__init__(ycbcr_matrix(standard)[1:], name=name)


#: Colour views by name: each entry builds a fresh view module.
COLOR_VIEWS: Registry[Callable[[], ColorView]] = Registry("colour view")
for _name, _factory in {
    "rgb": IdentityView,
    "luma": lambda: LumaView("bt601"),
    "luma_bt601": lambda: LumaView("bt601"),
    "luma_bt709": lambda: LumaView("bt709"),
    "red": lambda: ChannelView("red"),
    "green": lambda: ChannelView("green"),
    "blue": lambda: ChannelView("blue"),
    "chroma": lambda: ChromaView("bt601"),
    "chroma_bt601": lambda: ChromaView("bt601"),
    "chroma_bt709": lambda: ChromaView("bt709"),
}.items():
    COLOR_VIEWS.register(_name, _factory)


def available_views() -> list[str]:
    """Names accepted wherever a view is expected (``l1(luma)``, ``ssim(view=red)``)."""
    return COLOR_VIEWS.names()


def resolve_view(view: str | ColorView | Tensor | Sequence[Sequence[float]] | None) -> ColorView:
    """Turn a view name, a :class:`ColorView`, or a ``(K, 3)`` matrix into a :class:`ColorView`."""
    if view is None:
        return IdentityView()
    if isinstance(view, ColorView):
        return view
    if isinstance(view, str):
        key = view.lower()
        if key not in COLOR_VIEWS:
            raise ValueError(
                f"unknown colour view {view!r}.{suggest(key, available_views())} "
                f"Known views: {', '.join(available_views())}, or a (K, 3) matrix."
            )
        return COLOR_VIEWS.get(key)()
    return ColorView(view)


ViewLike = str | ColorView | Sequence[Sequence[float]] | None


class ViewedLoss(Loss):
    """Base of every loss that compares a view of both images (pixel, structural, gradient,
    frequency, distributional): holds the colour view, the optional spatial view
    (``lowpass=K`` / ``highpass=K``, applied after the colour view) and the reduction, and names
    the term ``name(view, lowpass=K)``.

    A colour view (anything but ``rgb``) requires 3-channel RGB inputs.
    """

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
        super().__init__(input_range=input_range, check_values=check_values)
        self.view = resolve_view(view)
        self.reduction = check_reduction(reduction)
        self.spatial: SpatialView | None = (
            None if lowpass is None and highpass is None
            else SpatialView(lowpass=lowpass, highpass=highpass)
        )
        if not isinstance(self.view, IdentityView):
            self.required_channels = 3

    def viewed(self, images: Tensor) -> Tensor:
        """The colour view, then the spatial view (if any), of ``(N, C, H, W)`` images."""
        images = self.view(images)
        return images if self.spatial is None else self.spatial(images)

    @property
    def linear_view_is_identity(self) -> bool:
        """True when :meth:`viewed` returns its input unchanged (no colour or spatial view)."""
        return isinstance(self.view, IdentityView) and self.spatial is None

    def check_shapes(self, prediction: Tensor, target: Tensor) -> None:
        minimum = self.min_size
        if self.spatial is not None:
            # The wrapped loss's minimum applies after the pyramid steps.
            minimum = self.spatial.min_input_size(minimum or 1)
        check_pair(prediction, target, channels=self.required_channels, min_size=minimum)

    @property
    def term_name(self) -> str:
        explicit = getattr(self, "_term_name", None)
        if explicit:
            return explicit
        options = [] if isinstance(self.view, IdentityView) else [self.view.name]
        if self.spatial is not None:
            options.append(self.spatial.name)
        return self.registered_name + (f"({', '.join(options)})" if options else "")

    @term_name.setter
    def term_name(self, value: str) -> None:
        self._term_name = value
