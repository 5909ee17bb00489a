"""Checks and small building blocks shared by the losslab models."""

from __future__ import annotations

from typing import Literal, get_args

from torch import Tensor, nn

#: How a model maps its last layer to the image: ``sigmoid`` gives ``(0, 1)``, ``linear`` leaves it.
OutputActivation = Literal["sigmoid", "linear"]


def check_option(name: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``; else raise a ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")
    return value


def check_count(name: str, value: int, minimum: int = 1) -> int:
    """Return ``value`` if it is an ``int`` ``>= minimum``; else raise naming both."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}; got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return value


def output_activation(kind: str) -> nn.Module:
    """The final activation for ``output=kind``: ``nn.Sigmoid`` or ``nn.Identity``."""
    check_option("output", kind, get_args(OutputActivation))
    return nn.Sigmoid() if kind == "sigmoid" else nn.Identity()


def check_model_input(
    images: Tensor, model: str, *, channels: int, multiple: int = 1, name: str = "input"
) -> None:
    """Check that ``images`` is ``(N, channels, H, W)`` float with ``H, W`` divisible by ``multiple``.

    Never synchronises with the device. ``model`` and ``name`` appear in the error messages.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"{model} {name} must be a torch.Tensor; got {type(images).__name__}.")
    if images.dim() != 4:
        raise ValueError(
            f"{model} {name} must be a 4-D tensor (N, C, H, W); got shape {tuple(images.shape)}. "
            "Add a batch dimension with tensor.unsqueeze(0) for one image."
        )
    if not images.is_floating_point():
        raise TypeError(
            f"{model} {name} must be floating point; got {images.dtype}. Convert with .float()."
        )
    if images.shape[1] != channels:
        raise ValueError(
            f"{model} {name} must have {channels} channels; got {images.shape[1]} "
            f"(shape {tuple(images.shape)}). Build the model with matching channels."
        )
    height, width = images.shape[-2:]
    if height % multiple or width % multiple:
        raise ValueError(
            f"{model} {name} height and width must be divisible by {multiple}; got "
            f"{height}x{width}. Crop or pad to a multiple of {multiple} (e.g. "
            f"{height - height % multiple or multiple}x{width - width % multiple or multiple}), "
            "or build the model with a smaller depth."
        )
