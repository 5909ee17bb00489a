"""Datasets for losslab's tasks: bundled photos, generated images and video, folders, torchvision.

:func:`build_datasets` returns ``(train, val)`` ``torch.utils.data.Dataset`` objects. Image
datasets yield ``(3, crop, crop)`` float32 tensors in ``[0, 1]``; the video dataset
``moving_shapes`` yields clips ``(T, 3, crop, crop)``. Every item is a pure function of the seed
and its index (train datasets with random crops also take ``set_epoch``), so runs are
reproducible in any worker layout. :func:`available_datasets` lists the names;
:mod:`losslab.data.degradations` turns clean images into task inputs.

Example:
    >>> train, val = build_datasets("dead_leaves", crop_size=32, seed=0, train_size=8)
    >>> train[0].shape
    torch.Size([3, 32, 32])
"""

from __future__ import annotations

from typing import Any

from losslab.data import bundled, dead_leaves, folder, moving_shapes, torchvision_sets
from losslab.data._common import DatasetPair, check_options, dataset_names, get_dataset_entry
from losslab.data.bundled import available_photos
from losslab.data.dead_leaves import DeadLeavesDataset
from losslab.data.degradations import add_noise, downscale, to_luma
from losslab.data.moving_shapes import MovingShapesDataset
from losslab.data.torchvision_sets import DatasetUnavailableError

del bundled, dead_leaves, folder, moving_shapes, torchvision_sets  # imported to register


def available_datasets() -> list[str]:
    """Every dataset name :func:`build_datasets` accepts, sorted."""
    return dataset_names()


def describe_datasets() -> dict[str, str]:
    """Dataset name -> one-line description."""
    return {name: get_dataset_entry(name).description for name in dataset_names()}


def build_datasets(name: str, *, crop_size: int, seed: int = 0, **options: Any) -> DatasetPair:
    """Build the ``(train, val)`` datasets registered as ``name``.

    Args:
        name: one of :func:`available_datasets` (an unknown name raises ``ValueError`` with
            the closest names).
        crop_size: side in pixels of the square items (frames for video).
        seed: base seed; the same seed gives identical items.
        **options: dataset-specific options (e.g. ``train_size``, ``val_size``, ``path`` for
            ``folder``); an unknown option raises ``ValueError`` listing the valid ones.

    Returns:
        ``(train, val)``: datasets of ``(3, crop, crop)`` float32 in ``[0, 1]`` (video:
        ``(T, 3, crop, crop)``). Train and validation never share pixels (disjoint regions or
        files) or generated items (different seed streams).
    """
    entry = get_dataset_entry(name)
    check_options(name, options)
    return entry.builder(crop_size=crop_size, seed=seed, **options)


__all__ = [
    "DatasetUnavailableError",
    "DeadLeavesDataset",
    "MovingShapesDataset",
    "add_noise",
    "available_datasets",
    "available_photos",
    "build_datasets",
    "describe_datasets",
    "downscale",
    "to_luma",
]
