"""The colour photographs bundled with scikit-image, as crop datasets (no download needed).

Split: each photo is cut into a left train region and a right validation strip of
``max(round(val_fraction * width), crop_size)`` columns (default ``val_fraction=0.2``), so
train and validation crops never share a pixel. Train items are random crops from the train
regions (a region picked uniformly, so every photo is equally likely whatever its size);
validation items are a fixed, seeded set of ``val_size`` crops from the strips, assigned to
the photos in turn. Both skip near-flat crops (standard deviation below ``min_std``, default
0.02; see :mod:`losslab.data._common`), so a black border or a blank sky cannot become a
validation image.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data as skimage_data
from torch import Tensor

from losslab.core.registry import suggest
from losslab.data._common import (
    FLAT_CROP_STD,
    DatasetPair,
    check_min_std,
    check_positive_int,
    region_crop_datasets,
    register_dataset,
    split_columns,
    suggest_crop_size,
)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        return getattr(skimage_data, name)()

    return load


def _motorcycle_left() -> np.ndarray:
    return skimage_data.stereo_motorcycle()[0]


#: Photo name -> loader returning an ``(H, W, 3)`` uint8 array. Every one ships with
#: scikit-image itself (no pooch download); ``colorwheel`` is a synthetic chart.
PHOTO_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "chelsea": _skimage("chelsea"),
    "coffee": _skimage("coffee"),
    "rocket": _skimage("rocket"),
    "immunohistochemistry": _skimage("immunohistochemistry"),
    "hubble_deep_field": _skimage("hubble_deep_field"),
    "motorcycle": _motorcycle_left,
    "retina": _skimage("retina"),
    "colorwheel": _skimage("colorwheel"),
}

#: The photographs used when ``images`` is not given (the synthetic colour wheel is left out).
DEFAULT_PHOTOS: tuple[str, ...] = tuple(name for name in PHOTO_LOADERS if name != "colorwheel")


def available_photos() -> list[str]:
    """Names accepted by the ``images`` option of the ``bundled`` dataset."""
    return list(PHOTO_LOADERS)


@functools.cache
def load_photo(name: str, scale: float = 1.0) -> Tensor:
    """One bundled photo as a ``(3, H, W)`` uint8 tensor, downscaled by ``scale`` if > 1.

    Downscaling is antialiased bicubic to ``(round(H / scale), round(W / scale))``, rounded
    back to uint8. Results are cached per process.
    """
    if name not in PHOTO_LOADERS:
        raise ValueError(
            f"unknown bundled photo {name!r}.{suggest(name, available_photos())} "
            f"Bundled photos: {', '.join(available_photos())}."
        )
    array = PHOTO_LOADERS[name]()
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"bundled photo {name!r} is not an RGB uint8 image: {array.shape}.")
    image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()
    if scale != 1.0:
        height, width = image.shape[-2:]
        size = (max(1, round(height / scale)), max(1, round(width / scale)))
        small = F.interpolate(
            image[None].float(), size=size, mode="bicubic", antialias=True, align_corners=False
        )
        image = small[0].round().clamp(0, 255).to(torch.uint8)
    return image


def _check_names(images: Sequence[str] | str | None) -> tuple[str, ...]:
    if images is None:
        return DEFAULT_PHOTOS
    names = (images,) if isinstance(images, str) else tuple(images)
    if not names:
        raise ValueError(f"images must name at least one photo; choose from {available_photos()}.")
    for name in names:
        if name not in PHOTO_LOADERS:
            raise ValueError(
                f"unknown bundled photo {name!r}.{suggest(name, available_photos())} "
                f"Bundled photos: {', '.join(available_photos())}."
            )
    return names


@register_dataset("bundled")
def build_bundled(
    *,
    crop_size: int,
    seed: int = 0,
    train_size: int = 2048,
    val_size: int = 16,
    images: Sequence[str] | str | None = None,
    scale: float = 1.0,
    flip: bool = True,
    val_fraction: float = 0.2,
    min_std: float = FLAT_CROP_STD,
) -> DatasetPair:
    """scikit-image's colour photos: random train crops, fixed validation crops from disjoint strips.

    Args:
        crop_size: side of the square crops in pixels.
        seed: base seed of every crop position and flip.
        train_size: crops per training epoch.
        val_size: number of fixed validation crops.
        images: subset of :func:`available_photos` (default: every photograph, not the
            synthetic ``colorwheel``).
        scale: downscale factor ``>= 1`` applied to the photos before cropping (so a crop
            covers more of the scene).
        flip: random horizontal flips of train crops.
        val_fraction: width fraction of each photo reserved for validation (right strip).
        min_std: train and validation crops whose standard deviation (all pixels and channels,
            ``[0, 1]`` units) is below this are near-flat and redrawn (0 keeps every crop).

    Returns:
        ``(train, val)`` datasets of ``(3, crop_size, crop_size)`` float32 in ``[0, 1]``.
    """
    crop_size = check_positive_int("crop_size", crop_size)
    train_size = check_positive_int("train_size", train_size)
    val_size = check_positive_int("val_size", val_size, minimum=0)
    if not (isinstance(scale, (int, float)) and scale >= 1.0):
        raise ValueError(f"scale must be a number >= 1 (a downscale factor); got {scale!r}.")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), e.g. 0.2; got {val_fraction!r}.")
    names = _check_names(images)
    photos = [load_photo(name, float(scale)) for name in names]
    train_regions, val_regions = [], []
    for source, (name, photo) in enumerate(zip(names, photos, strict=True)):
        height, width = photo.shape[-2:]
        try:
            train_region, val_region = split_columns(source, height, width, crop_size, val_fraction)
        except ValueError:
            raise ValueError(
                f"crop_size={crop_size} is too large for bundled photo {name!r} of "
                f"{height}x{width} pixels (after scale={scale:g}): it needs a train region and a "
                f"validation strip at least {crop_size} pixels wide each. Use "
                f"{suggest_crop_size(min(height, width // 2))}, a smaller scale, or leave {name!r} out with "
                "images=[...]."
            ) from None
        train_regions.append(train_region)
        val_regions.append(val_region)
    train, val = region_crop_datasets(
        photos.__getitem__, train_regions, val_regions, crop_size=crop_size, train_size=train_size,
        val_size=val_size, seed=seed, flip=flip, source_names=names,
        min_std=check_min_std(min_std),
    )
    return train, val
