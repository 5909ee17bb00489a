"""Standard datasets through torchvision: ``cifar10``, ``stl10``, ``celeba``, ``mnist``.

Files live under ``root`` (default ``~/.cache/losslab/datasets``, in torchvision's own layout).
They are used when present; otherwise they are downloaded when ``download=True`` (default) and
the machine is online. When that fails, :class:`DatasetUnavailableError` names the dataset,
the folder and the files to place there by hand.

Items are ``(3, crop, crop)`` float32 in ``[0, 1]`` (MNIST's grey digits are repeated on the
three channels): train items are random crops (seeded per epoch and index, optional flips),
validation items centre crops of a fixed, seeded subset of the held-out split. ``resize``
first scales the shorter side of every image to that many pixels (antialiased bicubic).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.datasets
from torch import Tensor
from torch.utils.data import Dataset

from losslab.data._common import (
    DatasetPair,
    check_crop_fits,
    check_index,
    check_positive_int,
    item_rng,
    register_dataset,
    suggest_crop_size,
)

DEFAULT_ROOT = Path("~/.cache/losslab/datasets")


class DatasetUnavailableError(RuntimeError):
    """A torchvision dataset is neither on disk nor downloadable; the message says what to do."""


@dataclass(frozen=True)
class TorchvisionSpec:
    """How to open one torchvision dataset: the class name, its split arguments, the manual
    remedy (files and where they go), and the image size (height, width)."""

    class_name: str
    train_args: dict[str, Any]
    val_args: dict[str, Any]
    folder: str
    manual: str
    image_size: tuple[int, int]


SPECS: dict[str, TorchvisionSpec] = {
    "cifar10": TorchvisionSpec(
        "CIFAR10",
        {"train": True},
        {"train": False},
        "cifar-10-batches-py",
        "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it in "
        "{root} (it creates {folder}/ with data_batch_1..5 and test_batch)",
        (32, 32),
    ),
    "stl10": TorchvisionSpec(
        "STL10",
        {"split": "train"},
        {"split": "test"},
        "stl10_binary",
        "download http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz and extract it in "
        "{root} (it creates {folder}/ with train_X.bin and test_X.bin)",
        (96, 96),
    ),
    "celeba": TorchvisionSpec(
        "CelebA",
        {"split": "train", "target_type": "attr"},
        {"split": "valid", "target_type": "attr"},
        "celeba",
        "get img_align_celeba.zip, list_eval_partition.txt, list_attr_celeba.txt, "
        "identity_CelebA.txt, list_bbox_celeba.txt and list_landmarks_align_celeba.txt from "
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, put them in {root}/{folder}/ and "
        "unzip img_align_celeba.zip there",
        (218, 178),
    ),
    "mnist": TorchvisionSpec(
        "MNIST",
        {"train": True},
        {"train": False},
        "MNIST/raw",
        "download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (e.g. from "
        "https://ossci-datasets.s3.amazonaws.com/mnist/) into {root}/{folder}/ and gunzip them",
        (28, 28),
    ),
}


def _torchvision_class(name: str) -> Callable[..., Dataset]:
    return getattr(torchvision.datasets, SPECS[name].class_name)


def open_torchvision(
    name: str, root: Path, split_args: dict[str, Any], *, download: bool
) -> Dataset:
    """Open one split of dataset ``name`` from ``root``, downloading it if allowed.

    Raises:
        DatasetUnavailableError: the files are missing and could not be downloaded.
    """
    spec = SPECS[name]
    factory = _torchvision_class(name)
    try:
        return factory(str(root), download=False, **split_args)
    except Exception as missing:  # torchvision raises RuntimeError "Dataset not found ..."
        cause: BaseException = missing
    if download:
        try:
            root.mkdir(parents=True, exist_ok=True)
            return factory(str(root), download=True, **split_args)
        except Exception as failed:
            cause = failed
    action = "could not be downloaded" if download else "is not there and download=False"
    remedy = spec.manual.format(root=root, folder=spec.folder)
    raise DatasetUnavailableError(
        f"dataset {name!r} was not found in {root / spec.folder} and {action} "
        f"({type(cause).__name__}: {cause}). This machine may be offline. To install it by "
        f"hand, {remedy}; then run again (or pass root=<folder> if the files are elsewhere)."
    ) from cause


def _to_tensor(image: Any) -> Tensor:
    """A PIL image (or array) as ``(3, H, W)`` uint8 RGB."""
    if hasattr(image, "convert"):
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def resize_shorter_side(image: Tensor, side: int) -> Tensor:
    """Resize ``(3, H, W)`` uint8 so its shorter side is ``side`` (antialiased bicubic)."""
    height, width = image.shape[-2:]
    scale = side / min(height, width)
    size = (max(side, round(height * scale)), max(side, round(width * scale)))
    if size == (height, width):
        return image
    resized = F.interpolate(
        image[None].float(), size=size, mode="bicubic", antialias=True, align_corners=False
    )
    return resized[0].round().clamp(0, 255).to(torch.uint8)


class TorchvisionCrops(Dataset):
    """Square crops ``(3, crop, crop)`` float32 in ``[0, 1]`` of a torchvision image dataset.

    Args:
        base: a dataset whose items are ``(image, target)`` with a PIL image.
        crop_size: crop side in pixels.
        indices: the base indices this dataset exposes (item ``i`` is ``base[indices[i]]``);
            ``None`` for all of them.
        random_crop: random crop and flip (train) instead of a centre crop (val).
        seed: base seed of the random crops.
        resize: shorter side in pixels to resize to before cropping, or ``None``.
        flip: random horizontal flips (with ``random_crop`` only).
    """

    def __init__(
        self,
        base: Dataset,
        crop_size: int,
        *,
        indices: np.ndarray | None = None,
        random_crop: bool,
        seed: int = 0,
        resize: int | None = None,
        flip: bool = False,
    ) -> None:
        self.base = base
        self.crop_size = crop_size
        self.indices = np.arange(len(base)) if indices is None else np.asarray(indices)
        self.random_crop = random_crop
        self.seed = seed
        self.resize = resize
        self.flip = flip
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw fresh, still reproducible, crops for ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Tensor:
        index = check_index(index, len(self))
        image = _to_tensor(self.base[int(self.indices[index])][0])
        if self.resize is not None:
            image = resize_shorter_side(image, self.resize)
        height, width = image.shape[-2:]
        check_crop_fits(self.crop_size, height, width, "this dataset's images",
                        "Use a smaller crop_size (or a larger resize).")
        if self.random_crop:
            rng = item_rng(self.seed, "train", index, self.epoch)
            top = int(rng.integers(0, height - self.crop_size + 1))
            left = int(rng.integers(0, width - self.crop_size + 1))
            flipped = self.flip and rng.random() < 0.5
        else:
            top, left = (height - self.crop_size) // 2, (width - self.crop_size) // 2
            flipped = False
        crop = image[:, top : top + self.crop_size, left : left + self.crop_size]
        if flipped:
            crop = crop.flip(-1)
        return crop.float().div_(255.0)


def build_torchvision(
    name: str,
    *,
    crop_size: int,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
    download: bool = True,
    train_size: int | None = None,
    val_size: int | None = 16,
    resize: int | None = None,
    flip: bool = True,
) -> DatasetPair:
    """Build the train/val crop datasets of torchvision dataset ``name`` (see module doc)."""
    spec = SPECS[name]
    crop_size = check_positive_int("crop_size", crop_size)
    if resize is not None:
        resize = check_positive_int("resize", resize)
        height, width = spec.image_size
        scale = resize / min(height, width)
        image_size = (round(height * scale), round(width * scale))
    else:
        image_size = spec.image_size
    check_crop_fits(
        crop_size, *image_size, f"{name} images (after resize={resize})",
        f"Use {suggest_crop_size(min(image_size))}" + ("" if resize else " or pass resize=<pixels>")
        + ".",
    )
    folder = Path(root if root is not None else DEFAULT_ROOT).expanduser()
    train_base = open_torchvision(name, folder, spec.train_args, download=download)
    val_base = open_torchvision(name, folder, spec.val_args, download=download)

    train_indices = None
    if train_size is not None:
        train_size = check_positive_int("train_size", train_size)
        rng = np.random.default_rng(np.random.SeedSequence((seed, 0x7A1)))
        train_indices = rng.choice(len(train_base), size=train_size,
                                   replace=train_size > len(train_base))
    val_indices = None
    if val_size is not None:
        val_size = check_positive_int("val_size", val_size, minimum=0)
        count = min(val_size, len(val_base))
        rng = np.random.default_rng(np.random.SeedSequence((seed, 0x7A2)))
        val_indices = np.sort(rng.choice(len(val_base), size=count, replace=False))
    train = TorchvisionCrops(train_base, crop_size, indices=train_indices, random_crop=True,
                             seed=seed, resize=resize, flip=flip)
    val = TorchvisionCrops(val_base, crop_size, indices=val_indices, random_crop=False,
                           seed=seed, resize=resize)
    return train, val


def _register(name: str, description: str) -> None:
    # The builder is build_torchvision with the name bound: its signature (read by the data
    # registry for option checking) is build_torchvision's keyword options.
    builder = functools.partial(build_torchvision, name)
    builder.__name__ = f"build_{name}"
    builder.__doc__ = (
        f"{description} (torchvision; files under root, downloaded when online).\n\n"
        "Options: root (default ~/.cache/losslab/datasets), download (default True), "
        "train_size (None: the whole train split; an int: that many images drawn per seed), "
        "val_size (fixed seeded subset of the held-out split, None: all), resize (shorter "
        "side before cropping), flip (train flips)."
    )
    register_dataset(name)(builder)


_register("cifar10", "CIFAR-10: 32x32 colour photos of 10 classes")
_register("stl10", "STL-10: 96x96 colour photos of 10 classes")
_register("celeba", "CelebA: aligned 178x218 face photos")
_register("mnist", "MNIST: 28x28 grey handwritten digits, repeated on 3 channels")
