"""Images from a folder of your own (searched recursively), as crop datasets.

Accepted files: ``.png``, ``.jpg``, ``.jpeg``, ``.webp``, ``.bmp`` (any letter case), read with
Pillow and converted to RGB (grey, palette and alpha images included; alpha is dropped).
16-bit PNGs (grey, grey + alpha, RGB, RGBA) are read at full depth (value / 65535).

Decisions:

- unreadable or corrupt files are skipped with one ``logging.warning`` line each, and the
  datasets record ``skipped`` (their paths); a folder with no readable image is a
  ``ValueError`` naming the folder and the accepted extensions;
- images smaller than ``crop_size`` on either side are skipped with a warning naming the file,
  its size and the crop; when no image is large enough it is a ``ValueError``;
- split by file: with two or more images a seeded ``val_fraction`` (default 20 %, at least one
  file) of the files is held out for validation; with a single image it is split by region
  like the bundled photos (left train part, right validation strip).

Train items are random crops of the train files (a file picked uniformly); validation items
are ``val_size`` fixed, seeded crops of the validation files. Both skip near-flat crops
(standard deviation below ``min_std``, default 0.02; see :mod:`losslab.data._common`). With ``cache=True`` (default)
every image is decoded once at construction (fully checked, cheap items); with
``cache=False`` only the headers are checked and images are decoded per item.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from losslab.data._common import (
    FLAT_CROP_STD,
    DatasetPair,
    Region,
    check_min_std,
    check_positive_int,
    region_crop_datasets,
    register_dataset,
    split_columns,
    suggest_crop_size,
)

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def find_images(folder: Path) -> list[Path]:
    """Every file under ``folder`` (recursive) with an accepted extension, sorted."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
    )


def read_image(path: Path) -> Tensor:
    """Decode one image file to a ``(3, H, W)`` RGB tensor (raises on a corrupt file).

    8-bit files give ``uint8`` (0..255); 16-bit PNGs give ``float32`` in ``[0, 1]`` at full
    depth (value / 65535), for every colour type: grey, grey + alpha, RGB, RGBA. Grey is repeated
    on the three channels, alpha is dropped, palettes are expanded.
    :func:`~losslab.data._common.to_unit_float` maps both to float ``[0, 1]``.
    """
    if _png_bit_depth(path) == 16:
        return _read_png16(path)
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()


def _png_bit_depth(path: Path) -> int | None:
    """The bit depth in a PNG's IHDR header, or ``None`` for other files."""
    with open(path, "rb") as file:
        header = file.read(26)
    if len(header) < 26 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        return None
    return header[24]


def _read_png16(path: Path) -> Tensor:
    """A 16-bit PNG at full depth, ``(3, H, W)`` float32 in ``[0, 1]``.

    Pillow reads 16-bit RGB, RGBA and grey+alpha PNGs as 8-bit (and 16-bit grey would clip in
    ``convert("RGB")``: 99.6 % of a photo's pixels at 255), so these files are decoded with
    pypng, which keeps all 16 bits.
    """
    import png  # pypng: pure Python, only needed for 16-bit files

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = int(info["planes"])
    pixels = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(
        height, width, planes)
    colour = pixels[..., :3] if planes >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    image = torch.from_numpy(colour.astype(np.float32) / 65535.0)
    return image.permute(2, 0, 1).contiguous()


def _probe_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` from the header; ``verify()`` catches many truncated files."""
    with Image.open(path) as image:
        width, height = image.size
        image.verify()
    return height, width


class _LazyImages:
    """``load(source) -> (3, H, W)`` uint8 tensor, decoding the file on each call."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = tuple(paths)

    def __call__(self, source: int) -> Tensor:
        path = self.paths[source]
        try:
            return read_image(path)
        except Exception as error:
            raise OSError(f"could not decode image {path}: {error}") from error


@register_dataset("folder")
def build_folder(
    *,
    crop_size: int,
    seed: int = 0,
    path: str | os.PathLike[str] | None = None,
    train_size: int = 2048,
    val_size: int = 16,
    val_fraction: float = 0.2,
    flip: bool = True,
    cache: bool = True,
    min_std: float = FLAT_CROP_STD,
) -> DatasetPair:
    """Random crops of the images in a folder (recursive); split by file, or by region for one.

    Args:
        crop_size: side of the square crops in pixels.
        seed: base seed of the file split, crop positions and flips.
        path: the folder (required).
        train_size: crops per training epoch.
        val_size: number of fixed validation crops.
        val_fraction: fraction of files (or of the width, for a single image) held out.
        flip: random horizontal flips of train crops.
        cache: decode every image once up front (default) instead of once per item.
        min_std: train and validation crops whose standard deviation (all pixels and channels,
            ``[0, 1]`` units) is below this are near-flat and redrawn (0 keeps every crop).

    Returns:
        ``(train, val)`` datasets of ``(3, crop_size, crop_size)`` float32 in ``[0, 1]``; both
        have ``paths`` (their files) and ``skipped`` (unreadable or too small files).
    """
    crop_size = check_positive_int("crop_size", crop_size)
    train_size = check_positive_int("train_size", train_size)
    val_size = check_positive_int("val_size", val_size, minimum=0)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), e.g. 0.2; got {val_fraction!r}.")
    min_std = check_min_std(min_std)
    if path is None:
        raise ValueError(
            "dataset 'folder' needs path=<folder of images>, e.g. "
            "build_datasets('folder', crop_size=64, path='photos/')."
        )
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"image folder {str(folder)!r} does not exist or is not a folder.")
    accepted = ", ".join(IMAGE_EXTENSIONS)

    paths: list[Path] = []
    sizes: list[tuple[int, int]] = []
    images: list[Tensor] = []
    skipped: list[Path] = []
    too_small: list[tuple[Path, tuple[int, int]]] = []
    for file in find_images(folder):
        try:
            if cache:
                image = read_image(file)
                size = (int(image.shape[1]), int(image.shape[2]))
            else:
                size = _probe_size(file)
        except Exception as error:
            logger.warning("skipping unreadable image %s: %s", file, error)
            skipped.append(file)
            continue
        if min(size) < crop_size:
            logger.warning(
                "skipping image %s: its size %dx%d is smaller than crop_size=%d",
                file, size[0], size[1], crop_size,
            )
            too_small.append((file, size))
            skipped.append(file)
            continue
        paths.append(file)
        sizes.append(size)
        if cache:
            images.append(image)
    if skipped:
        logger.warning("skipped %d of %d image files in %s", len(skipped),
                       len(skipped) + len(paths), folder)
    if not paths:
        if too_small:
            largest = max(too_small, key=lambda item: min(item[1]))
            raise ValueError(
                f"every image in {str(folder)!r} is smaller than crop_size={crop_size}; the "
                f"largest, {largest[0].name}, is {largest[1][0]}x{largest[1][1]} pixels. Use "
                f"{suggest_crop_size(min(largest[1]))} or larger images."
            )
        raise ValueError(
            f"no readable image in folder {str(folder)!r} (searched recursively for {accepted}; "
            f"{len(skipped)} unreadable file(s) skipped). Put images with one of these "
            "extensions there."
        )

    source_of = images.__getitem__ if cache else _LazyImages(paths)
    names = tuple(str(p.relative_to(folder)) for p in paths)
    if len(paths) == 1:
        height, width = sizes[0]
        try:
            train_region, val_region = split_columns(0, height, width, crop_size, val_fraction)
        except ValueError:
            raise ValueError(
                f"the only image in {str(folder)!r}, {names[0]} ({height}x{width} pixels), is "
                f"split into a train part and a validation strip, each at least "
                f"crop_size={crop_size} wide: use {suggest_crop_size(min(height, width // 2))} "
                "or add more images."
            ) from None
        train_regions, val_regions = [train_region], [val_region]
    else:
        order = np.random.default_rng(np.random.SeedSequence((seed, 0xF01D))).permutation(
            len(paths)
        )
        held_out = max(1, round(val_fraction * len(paths)))
        val_sources = sorted(int(i) for i in order[:held_out])
        train_sources = sorted(int(i) for i in order[held_out:])
        train_regions = [Region(i, 0, 0, *sizes[i]) for i in train_sources]
        val_regions = [Region(i, 0, 0, *sizes[i]) for i in val_sources]

    train, val = region_crop_datasets(
        source_of, train_regions, val_regions, crop_size=crop_size, train_size=train_size,
        val_size=val_size, seed=seed, flip=flip, source_names=names, min_std=min_std,
    )
    for dataset, regions in ((train, train_regions), (val, val_regions)):
        dataset.paths = tuple(paths[r.source] for r in regions)  # type: ignore[attr-defined]
        dataset.skipped = tuple(skipped)  # type: ignore[attr-defined]
    return train, val
