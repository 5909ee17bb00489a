"""Images to synthesise from: a target by name or path, and the start images of a metamer.

- :func:`load_image`: a bundled photo (``"astronaut"``) or an image file, centre-cropped to a
  square and resized to ``size`` px. Grey files stay grey (1 channel), so a colour loss on a
  grey image gets its clear error instead of a silent RGB copy.
- :func:`make_start`: ``"noise"`` (uniform, seeded), ``"blur"`` (Gaussian blur of the target,
  sigma = side / 32, at least 1 px), ``"photo"`` / ``"photo:NAME"`` (another bundled photo at
  the target's size, grey for a grey target).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2.functional import gaussian_blur

from losslab.data.bundled import available_photos, load_photo
from losslab.losses.views import LumaView
from losslab.synthesis._common import InputRange, from_unit, to_unit

#: Start names accepted by :func:`make_start` (``photo:NAME`` picks the photo).
START_KINDS: tuple[str, ...] = ("noise", "blur", "photo")
#: The photo used for a ``photo`` start unless one is named.
DEFAULT_START_PHOTO = "chelsea"
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


def square_resize(image: Tensor, size: int) -> Tensor:
    """Centre-crop ``(C, H, W)`` to a square and resize (bicubic, antialiased) to ``size``.

    Returns ``(C, size, size)`` float in ``[0, 1]`` (values clipped after resampling).
    """
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = image[:, top : top + side, left : left + side].float()
    if side != size:
        crop = F.interpolate(crop[None], size=(size, size), mode="bicubic", antialias=True,
                             align_corners=False)[0]
    return crop.clamp(0.0, 1.0)


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive number of pixels (e.g. 128); got {size!r}.")
    return size


def load_image(source: str | Path, size: int = 128) -> Tensor:
    """A target image: a bundled photo name or an image file, as ``(1, C, size, size)`` in [0, 1].

    ``C`` is 3, or 1 for a grey file (PIL modes ``L``, ``I``, ``F``, ...). A name that is not a
    file is looked up among the bundled photos (:func:`losslab.data.available_photos`).

    Raises:
        FileNotFoundError: a path-like name (with ``/``, ``\\`` or a suffix) that does not exist.
        ValueError: an unknown photo name (with the closest names) or an unreadable file.
    """
    size = _check_size(size)
    path = Path(source)
    if path.is_file():
        try:
            with Image.open(path) as image:
                grey = image.mode in _GREY_MODES
                converted = image.convert("F" if grey else "RGB")
                array = np.asarray(converted, dtype=np.float32).copy()
        except OSError as error:
            raise ValueError(f"could not read image {str(path)!r}: {error}") from None
        if grey:
            scale = 255.0 if image.mode in ("1", "L", "LA") or array.max() <= 255 else 65535.0
            tensor = torch.from_numpy(array)[None] / scale
        else:
            tensor = torch.from_numpy(array).permute(2, 0, 1) / 255.0
        return square_resize(tensor, size)[None]
    text = str(source)
    if any(mark in text for mark in ("/", "\\")) or path.suffix:
        raise FileNotFoundError(
            f"image {text!r} does not exist. Give an image file, or a bundled photo name: "
            f"{', '.join(available_photos())}."
        )
    return square_resize(load_photo(text).float() / 255.0, size)[None]


def blur_sigma(height: int, width: int) -> float:
    """Sigma in pixels of the ``blur`` start: a 32nd of the shorter side, at least 1 px."""
    return max(1.0, min(height, width) / 32.0)


def make_start(kind: str, target: Tensor, input_range: InputRange, *,
               generator: torch.Generator) -> Tensor:
    """A start image for ``target`` ``(1, C, H, W)`` in ``input_range``; same shape and range.

    Args:
        kind: ``"noise"`` (i.i.d. uniform over the range), ``"blur"`` (the target blurred with
            sigma :func:`blur_sigma`, reflect padding), ``"photo"`` or ``"photo:NAME"`` (a bundled
            photo, centre crop, resized; luma BT.601 for a grey target).
        generator: CPU generator for the noise (the same seed gives the same start on any device).

    Raises:
        ValueError: an unknown kind or photo name (with the choices).
    """
    _, channels, height, width = target.shape
    name, _, photo = kind.partition(":")
    if name == "noise":
        unit = torch.rand((1, channels, height, width), generator=generator)
    elif name == "blur":
        sigma = blur_sigma(height, width)
        radius = min(math.ceil(3 * sigma), (min(height, width) - 1) // 2)
        unit = gaussian_blur(to_unit(target.detach().float().cpu(), input_range),
                             kernel_size=[2 * radius + 1] * 2, sigma=[sigma, sigma])
    elif name == "photo":
        picture = photo or DEFAULT_START_PHOTO
        image = square_resize(load_photo(picture).float() / 255.0, max(height, width))
        image = image[:, :height, :width][None]
        unit = LumaView()(image) if channels == 1 else image
    else:
        raise ValueError(
            f"unknown start {kind!r}; starts are {', '.join(START_KINDS)} (photo:NAME for a "
            f"chosen bundled photo: {', '.join(available_photos())}) or image tensors."
        )
    return from_unit(unit.clamp(0.0, 1.0), input_range).to(target.device, target.dtype)
