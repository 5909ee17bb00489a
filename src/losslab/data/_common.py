"""Shared machinery of the data package: the dataset table, seeding, crop regions, crop datasets.

Seeding
-------
Every random draw of an item comes from a NumPy generator seeded by
``SeedSequence((seed, split, epoch, index))``, so an item depends only on those numbers: the
same seed gives identical crops in any process, with any number of DataLoader workers and in
any order of access. Train datasets expose ``set_epoch(epoch)`` to draw new crops each epoch.

Crop regions
------------
A :class:`Region` is a rectangle of one source image (``top``, ``left``, ``height``, ``width`` in
pixels). Train crops are drawn from train regions and validation crops from validation regions;
the two sets of rectangles never overlap, so no validation pixel is ever seen in training.

Near-flat crops
---------------
Photos have flat areas (black borders, overexposed sky). A flat crop says nothing about a loss
(every model reproduces it almost exactly) yet a per-image average of PSNR lets it dominate: a
crop with standard deviation 0.003 gets a bicubic PSNR of 180 dB. Crop datasets of photos
therefore skip near-flat crops: with ``min_std > 0`` a crop whose standard deviation (over all
its pixels and channels, values in ``[0, 1]``) is below ``min_std`` is redrawn from the same
item generator, up to :data:`FLAT_CROP_ATTEMPTS` times; if every attempt is flat the most
varied one is kept (so an all-flat image cannot hang training). The photo and folder datasets
use :data:`FLAT_CROP_STD` = 0.02 (on the bundled photos at 48 px this drops the 1.5 % of crops
below 0.005 and keeps everything from 0.026 up); generated data sets draw no photos and are
unaffected.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from losslab.core.registry import Registry, suggest

#: Integer codes of the splits, mixed into every seed so train and val draws never coincide.
SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1}

#: Default ``min_std`` of the photo and folder datasets: crops with a standard deviation below
#: this (values in ``[0, 1]``, over all pixels and channels) are near-flat and redrawn.
FLAT_CROP_STD = 0.02
#: How many draws an item gets to find a crop that is not near-flat.
FLAT_CROP_ATTEMPTS = 32

DatasetPair = tuple[Dataset, Dataset]
Builder = Callable[..., DatasetPair]


@dataclass(frozen=True)
class DatasetEntry:
    """A row of the dataset table: name, builder, one-line description."""

    name: str
    builder: Builder
    description: str

    def option_names(self) -> tuple[str, ...]:
        """The keyword options the builder accepts besides ``crop_size`` and ``seed``."""
        params = inspect.signature(self.builder).parameters
        return tuple(p for p in params if p not in ("crop_size", "seed"))




#: Filled by ``@register_dataset``; ``losslab/data/__init__.py`` imports every data module.
DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register_dataset(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder(*, crop_size, seed, **options) -> (train, val)`` as ``name``."""

    def decorator(builder: Builder) -> Builder:
        if name in DATASETS and DATASETS.get(name).builder is not builder:
            raise ValueError(f"dataset name {name!r} is already registered.")
        doc = inspect.getdoc(builder) or name
        DATASETS.register(name, DatasetEntry(name, builder, doc.strip().splitlines()[0]))
        return builder

    return decorator


def dataset_names() -> list[str]:
    """Registered dataset names, sorted."""
    return DATASETS.names()


def get_dataset_entry(name: str) -> DatasetEntry:
    """Look a dataset up; an unknown name raises a ``ValueError`` with the closest names."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str; got {type(name).__name__}.")
    return DATASETS.get(name)


def check_options(name: str, options: dict[str, Any]) -> None:
    """Reject options the builder of ``name`` does not take, naming the closest valid ones."""
    valid = get_dataset_entry(name).option_names()
    for key in options:
        if key not in valid:
            raise ValueError(
                f"dataset {name!r} has no option {key!r}.{suggest(key, valid)} "
                f"Options of {name!r}: {', '.join(valid) or 'none'}."
            )


# ----------------------------------------------------------------------------------- checks


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer ``>= minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}; got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)


def check_crop_fits(crop_size: int, height: int, width: int, what: str, fix: str) -> None:
    """Raise a ``ValueError`` when a ``crop_size`` square does not fit in ``height x width``."""
    if crop_size > height or crop_size > width:
        raise ValueError(
            f"crop_size={crop_size} does not fit in {what} of {height}x{width} pixels "
            f"(height x width). {fix}"
        )


#: Image sides losslab's default models accept: the autoencoder and U-Net halve the image
#: ``depth = 3`` times, so sides must be multiples of ``2**3``.
CROP_MULTIPLE = 8


def suggest_crop_size(limit: int) -> str:
    """``"crop_size=40"`` for a limit of 45: the largest crop up to ``limit`` that the default
    models accept (a multiple of :data:`CROP_MULTIPLE`), so following the advice works."""
    if limit >= CROP_MULTIPLE:
        return (f"crop_size={limit - limit % CROP_MULTIPLE} (the largest multiple of "
                f"{CROP_MULTIPLE} up to {limit}, as the default models need)")
    return f"crop_size={limit} (then a model with depth 0..{max(0, limit.bit_length() - 1)})"


def item_rng(seed: int, split: str, index: int, epoch: int = 0) -> np.random.Generator:
    """The NumPy generator of one item: a pure function of ``(seed, split, epoch, index)``."""
    sequence = np.random.SeedSequence((int(seed) & 0xFFFFFFFF, SPLIT_CODES[split], epoch, index))
    return np.random.default_rng(sequence)


def check_index(index: int, length: int) -> int:
    """Normalise a (possibly negative) index into ``[0, length)`` or raise ``IndexError``."""
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} is out of range for a dataset of {length} items.")
    return index


def check_min_std(value: Any) -> float:
    """Return ``min_std`` as a float in ``[0, 0.5)`` (0 switches flat-crop skipping off), else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 0.5:
        raise ValueError(
            f"min_std must be a number in [0, 0.5) (the standard deviation below which a crop "
            f"counts as flat, in [0, 1] units; 0 keeps every crop); got {value!r}."
        )
    return float(value)


def crop_std(crop: Tensor) -> float:
    """Standard deviation of a ``(C, h, w)`` crop over all its values, in ``[0, 1]`` units."""
    values = crop.float()
    if crop.dtype == torch.uint8:
        values = values / 255.0
    return float(values.std(unbiased=False))


def draw_textured_crop(
    rng: np.random.Generator,
    pick_region: Callable[[np.random.Generator], Region],
    image_of: Callable[[int], Tensor],
    crop_size: int,
    min_std: float,
) -> tuple[Region, int, int, Tensor]:
    """Draw ``(region, top, left, crop)`` with ``rng``, redrawing near-flat crops.

    Each attempt picks a region with ``pick_region(rng)`` and a uniform position inside it; a
    crop with :func:`crop_std` ``>= min_std`` is returned at once. After
    :data:`FLAT_CROP_ATTEMPTS` flat attempts the most varied one is returned. ``min_std = 0``
    returns the first draw (the behaviour without skipping).
    """
    best: tuple[float, Region, int, int, Tensor] | None = None
    for _ in range(FLAT_CROP_ATTEMPTS if min_std > 0 else 1):
        region = pick_region(rng)
        top, left = random_crop_box(rng, region, crop_size)
        crop = image_of(region.source)[:, top : top + crop_size, left : left + crop_size]
        if min_std <= 0:
            return region, top, left, crop
        spread = crop_std(crop)
        if spread >= min_std:
            return region, top, left, crop
        if best is None or spread > best[0]:
            best = (spread, region, top, left, crop)
    if best is None:  # unreachable: at least one attempt is made
        raise RuntimeError("no crop was drawn.")
    return best[1], best[2], best[3], best[4]


def to_unit_float(image: Tensor) -> Tensor:
    """A ``uint8`` (or float) ``(C, H, W)`` tensor as contiguous float32 in ``[0, 1]``."""
    if image.dtype == torch.uint8:
        return image.float().div_(255.0)
    return image.float().clamp(0.0, 1.0).contiguous()


# ----------------------------------------------------------------------------------- regions


@dataclass(frozen=True)
class Region:
    """A rectangle ``[top, top + height) x [left, left + width)`` of source image ``source``."""

    source: int
    top: int
    left: int
    height: int
    width: int

    def overlaps(self, other: Region) -> bool:
        """Whether two regions of the same source share at least one pixel."""
        if self.source != other.source:
            return False
        rows = self.top < other.top + other.height and other.top < self.top + self.height
        cols = self.left < other.left + other.width and other.left < self.left + self.width
        return rows and cols


def split_columns(
    source: int, height: int, width: int, crop_size: int, val_fraction: float
) -> tuple[Region, Region]:
    """Split an image into a left train region and a right validation strip, disjoint.

    The strip is ``max(round(val_fraction * width), crop_size)`` pixels wide so that it holds
    at least one crop; the train region is the remaining ``width - strip`` columns and must
    also hold one crop, else a ``ValueError`` says so.
    """
    strip = max(round(val_fraction * width), crop_size)
    train_width = width - strip
    if crop_size > height or train_width < crop_size:
        raise ValueError(
            f"crop_size={crop_size} is too large for image {source} of {height}x{width} pixels: "
            f"a train region and a validation strip of width >= {crop_size} each are needed "
            f"(at most crop_size={min(height, width // 2)}). Use a smaller crop_size."
        )
    return (
        Region(source, 0, 0, height, train_width),
        Region(source, 0, train_width, height, strip),
    )


def random_crop_box(
    rng: np.random.Generator, region: Region, crop_size: int
) -> tuple[int, int]:
    """A uniformly random ``(top, left)`` of a ``crop_size`` square inside ``region``."""
    top = region.top + int(rng.integers(0, region.height - crop_size + 1))
    left = region.left + int(rng.integers(0, region.width - crop_size + 1))
    return top, left


class RandomCropDataset(Dataset):
    """Random square crops of source images, drawn inside given regions; ``(3, crop, crop)``.

    Item ``i`` of epoch ``e`` picks a region uniformly, then a uniformly random crop inside it
    (and a horizontal flip with probability 1/2 when ``flip``), all from
    ``item_rng(seed, "train", i, e)``; items are float32 in ``[0, 1]``.

    Args:
        images: source images, ``(3, H, W)`` uint8 or float tensors, or a callable
            ``load(source) -> tensor`` for lazy loading.
        regions: the rectangles crops may come from (each at least ``crop_size`` square).
        crop_size: side of the square crops in pixels.
        length: number of crops per epoch.
        seed: base seed.
        flip: random horizontal flips.
        split: ``'train'`` or ``'val'``, mixed into the seed.
        source_names: optional name of each source image (for messages and inspection).
        min_std: redraw crops whose standard deviation is below this (see "Near-flat crops"
            in the module docstring; 0 keeps every crop).
    """

    def __init__(
        self,
        images: Sequence[Tensor] | Callable[[int], Tensor],
        regions: Sequence[Region],
        *,
        crop_size: int,
        length: int,
        seed: int = 0,
        flip: bool = False,
        split: str = "train",
        source_names: Sequence[str] = (),
        min_std: float = 0.0,
    ) -> None:
        if not regions:
            raise ValueError("RandomCropDataset needs at least one region.")
        for region in regions:
            check_crop_fits(crop_size, region.height, region.width, f"region {region}",
                            "Use a smaller crop_size.")
        self._images = images
        self.regions = tuple(regions)
        self.crop_size = crop_size
        self.length = length
        self.seed = seed
        self.flip = flip
        self.split = split
        self.source_names = tuple(source_names)
        self.min_std = check_min_std(min_std)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw a fresh, still reproducible, set of crops for ``epoch``."""
        self.epoch = int(epoch)

    def _image(self, source: int) -> Tensor:
        if callable(self._images):
            return self._images(source)
        return self._images[source]

    def _pick_region(self, rng: np.random.Generator) -> Region:
        return self.regions[int(rng.integers(0, len(self.regions)))]

    def _draw(self, index: int) -> tuple[Region, int, int, bool, Tensor]:
        index = check_index(index, self.length)
        rng = item_rng(self.seed, self.split, index, self.epoch)
        region, top, left, crop = draw_textured_crop(rng, self._pick_region, self._image,
                                                     self.crop_size, self.min_std)
        flipped = bool(self.flip and rng.random() < 0.5)
        return region, top, left, flipped, crop

    def crop_box(self, index: int) -> tuple[Region, int, int, bool]:
        """``(region, top, left, flipped)`` of item ``index`` in the current epoch."""
        region, top, left, flipped, _ = self._draw(index)
        return region, top, left, flipped

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tensor:
        _, _, _, flipped, crop = self._draw(index)
        if flipped:
            crop = crop.flip(-1)
        return to_unit_float(crop)


class TensorDataset(Dataset):
    """A fixed stack of items (e.g. validation crops): ``(N, ...)`` float32, item ``i`` is row i."""

    def __init__(
        self,
        items: Tensor,
        boxes: Sequence[tuple[Region, int, int]] = (),
        source_names: Sequence[str] = (),
    ) -> None:
        self.items = items
        #: ``(region, top, left)`` of each crop when the items are crops of images.
        self.boxes = tuple(boxes)
        self.source_names = tuple(source_names)

    def __len__(self) -> int:
        return int(self.items.shape[0])

    def __getitem__(self, index: int) -> Tensor:
        return self.items[check_index(index, len(self))]


def fixed_crops(
    image_of: Callable[[int], Tensor],
    regions: Sequence[Region],
    *,
    crop_size: int,
    count: int,
    seed: int,
    source_names: Sequence[str] = (),
    min_std: float = 0.0,
) -> TensorDataset:
    """``count`` seeded crops from ``regions``, assigned round-robin so every region is used;
    near-flat crops (standard deviation below ``min_std``) are redrawn in the same region."""
    min_std = check_min_std(min_std)
    items, boxes = [], []
    for index in range(count):
        rng = item_rng(seed, "val", index)
        region = regions[index % len(regions)]
        region, top, left, crop = draw_textured_crop(rng, lambda _rng, r=region: r, image_of,
                                                     crop_size, min_std)
        items.append(to_unit_float(crop))
        boxes.append((region, top, left))
    stacked = torch.stack(items) if items else torch.empty(0, 3, crop_size, crop_size)
    return TensorDataset(stacked, boxes, source_names)


def region_crop_datasets(
    image_of: Callable[[int], Tensor],
    train_regions: Sequence[Region],
    val_regions: Sequence[Region],
    *,
    crop_size: int,
    train_size: int,
    val_size: int,
    seed: int,
    flip: bool,
    source_names: Sequence[str] = (),
    min_std: float = FLAT_CROP_STD,
) -> tuple[RandomCropDataset, TensorDataset]:
    """The usual pair: fresh random crops of ``train_regions`` for training, a fixed seeded set
    of ``val_size`` crops of ``val_regions`` for validation (``(3, crop, crop)`` in ``[0, 1]``).

    Both skip near-flat crops (standard deviation below ``min_std``, default
    :data:`FLAT_CROP_STD`; see the module docstring)."""
    train = RandomCropDataset(
        image_of,
        train_regions,
        crop_size=crop_size,
        length=train_size,
        seed=seed,
        flip=flip,
        source_names=source_names,
        min_std=min_std,
    )
    val = fixed_crops(
        image_of, val_regions, crop_size=crop_size, count=val_size, seed=seed,
        source_names=source_names, min_std=min_std,
    )
    return train, val
