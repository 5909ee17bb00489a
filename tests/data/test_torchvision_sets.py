"""Tests of the torchvision datasets without downloading: offline errors and item conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image

from losslab.data import DatasetUnavailableError, build_datasets
from losslab.data import torchvision_sets as tv_sets


def _offline(*args: Any, **kwargs: Any) -> None:
    raise URLError("[Errno -3] Temporary failure in name resolution")


@pytest.mark.parametrize(
    ("name", "module", "remedy"),
    [
        ("cifar10", "torchvision.datasets.cifar", "cifar-10-python.tar.gz"),
        ("stl10", "torchvision.datasets.stl10", "stl10_binary.tar.gz"),
        ("mnist", "torchvision.datasets.mnist", "train-images-idx3-ubyte.gz"),
    ],
)
def test_offline_download_names_dataset_folder_and_manual_steps(
    name: str, module: str, remedy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real torchvision class runs; only its network call is replaced by a failure.
    monkeypatch.setattr(f"{module}.download_and_extract_archive", _offline)
    with pytest.raises(DatasetUnavailableError) as error:
        build_datasets(name, crop_size=16, root=tmp_path)
    message = str(error.value)
    assert f"dataset {name!r}" in message
    assert str(tmp_path / tv_sets.SPECS[name].folder) in message
    assert "could not be downloaded" in message and "offline" in message
    assert remedy in message and str(tmp_path) in message


def test_celeba_offline_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("torchvision.datasets.celeba.download_file_from_google_drive", _offline)
    with pytest.raises(DatasetUnavailableError,
                       match=r"'celeba'.*img_align_celeba\.zip.*list_eval_partition\.txt"):
        build_datasets("celeba", crop_size=64, root=tmp_path)


def test_download_false_does_not_touch_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("download attempted")

    monkeypatch.setattr("torchvision.datasets.cifar.download_and_extract_archive", forbidden)
    with pytest.raises(DatasetUnavailableError, match="download=False"):
        build_datasets("cifar10", crop_size=16, root=tmp_path, download=False)


class _FakeImages(torch.utils.data.Dataset):
    """Stands in for a torchvision class: ``(PIL image, label)`` items of a fixed size."""

    mode = "RGB"
    size = (32, 32)
    length = 20

    def __init__(self, root: str, download: bool = False, **split: Any) -> None:
        self.split = split

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        rng = np.random.default_rng(index + (1000 if self.split in ({"train": False},
                                                                   {"split": "test"}) else 0))
        height, width = self.size
        shape = (height, width) if self.mode == "L" else (height, width, 3)
        return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), self.mode), 0


def test_items_are_crops_of_the_images(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tv_sets, "_torchvision_class", lambda name: _FakeImages)
    train, val = build_datasets("cifar10", crop_size=24, seed=1, root=tmp_path, val_size=5)
    assert (len(train), len(val)) == (20, 5)
    item = train[3]
    assert item.shape == (3, 24, 24) and item.dtype == torch.float32
    full = torch.from_numpy(np.array(_FakeImages(".", train=True)[3][0])).permute(2, 0, 1)
    full = full.float() / 255
    # The crop (maybe mirrored) appears somewhere in the full image.
    matches = [
        torch.equal(candidate, full[:, top : top + 24, left : left + 24])
        for top in range(9) for left in range(9) for candidate in (item, item.flip(-1))
    ]
    assert any(matches)
    # Validation items are centre crops.
    index = int(val.indices[0])
    reference = torch.from_numpy(np.array(_FakeImages(".", train=False)[index][0]))
    assert torch.equal(val[0], reference.permute(2, 0, 1)[:, 4:28, 4:28].float() / 255)
    again, _ = build_datasets("cifar10", crop_size=24, seed=1, root=tmp_path, val_size=5)
    assert torch.equal(again[3], train[3])


def test_mnist_is_repeated_on_three_channels_and_resize(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class GreyDigits(_FakeImages):
        mode = "L"
        size = (28, 28)

    monkeypatch.setattr(tv_sets, "_torchvision_class", lambda name: GreyDigits)
    train, _ = build_datasets("mnist", crop_size=28, root=tmp_path, train_size=7)
    assert len(train) == 7
    item = train[0]
    assert item.shape == (3, 28, 28)
    assert torch.equal(item[0], item[1]) and torch.equal(item[0], item[2])
    resized, _ = build_datasets("mnist", crop_size=56, root=tmp_path, resize=56)
    assert resized[0].shape == (3, 56, 56)


def test_crop_larger_than_the_images_fails_before_any_download(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"crop_size=64 does not fit in cifar10 images.*32x32"):
        build_datasets("cifar10", crop_size=64, root=tmp_path)
    assert not any(tmp_path.iterdir())
