"""Tests of the ``folder`` dataset: recursive discovery, RGB conversion, skips, splits, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from losslab.data import build_datasets


def _save(path: Path, height: int, width: int, mode: str = "RGB", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    array = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path)
    return array


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Two PNGs, a grey JPEG in a subfolder, a corrupt PNG, a text file."""
    _save(tmp_path / "a.png", 60, 80, seed=1)
    _save(tmp_path / "b.PNG", 70, 50, "RGBA", seed=2)
    _save(tmp_path / "nested" / "c.jpg", 64, 64, "L", seed=3)
    (tmp_path / "broken.png").write_bytes(b"this is not an image at all" * 10)
    (tmp_path / "notes.txt").write_text("ignored")
    return tmp_path


def test_finds_images_recursively_skips_corrupt_with_a_warning(
    photo_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="losslab.data.folder"):
        train, val = build_datasets("folder", crop_size=32, path=photo_folder, train_size=12,
                                    val_size=4)
    skip_lines = [r.getMessage() for r in caplog.records if "broken.png" in r.getMessage()]
    assert len(skip_lines) == 1 and "unreadable" in skip_lines[0]
    assert any("skipped 1 of 4 image files" in r.getMessage() for r in caplog.records)
    assert train.skipped == (photo_folder / "broken.png",)
    files = set(train.paths) | set(val.paths)
    assert files == {photo_folder / "a.png", photo_folder / "b.PNG",
                     photo_folder / "nested" / "c.jpg"}
    assert not set(train.paths) & set(val.paths)  # split by file: disjoint
    assert len(val.paths) == 1
    for item in [*(train[i] for i in range(12)), *(val[i] for i in range(4))]:
        assert item.shape == (3, 32, 32) and item.dtype == torch.float32
        assert float(item.min()) >= 0.0 and float(item.max()) <= 1.0


def test_grey_images_become_rgb(tmp_path: Path) -> None:
    grey = torch.from_numpy(_save(tmp_path / "grey.png", 40, 100, "L", seed=4)[..., 0])
    train, _ = build_datasets("folder", crop_size=20, path=tmp_path, train_size=5, flip=False)
    for index in range(5):
        item = train[index]
        _, top, left, _ = train.crop_box(index)
        for channel in range(3):
            assert torch.equal(item[channel], grey[top : top + 20, left : left + 20].float() / 255)


def test_single_image_is_split_by_region_with_exact_pixels(tmp_path: Path) -> None:
    array = _save(tmp_path / "only.png", 48, 100, seed=5)
    reference = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    train, val = build_datasets("folder", crop_size=16, path=tmp_path, train_size=50,
                                val_size=6, flip=False)
    (train_region,) = train.regions
    for region, _, left in val.boxes:
        assert not region.overlaps(train_region)
        assert left >= train_region.width  # validation strip on the right
    for index in range(50):
        region, top, left, _ = train.crop_box(index)
        assert left + 16 <= train_region.width
        assert torch.equal(train[index], reference[:, top : top + 16, left : left + 16])
    for item, (_, top, left) in zip(val, val.boxes, strict=True):
        assert torch.equal(item, reference[:, top : top + 16, left : left + 16])


def test_seeded_split_and_crops_and_lazy_loading_agree(photo_folder: Path) -> None:
    kwargs = {"crop_size": 24, "path": photo_folder, "train_size": 8, "val_size": 3}
    first = build_datasets("folder", seed=7, **kwargs)
    second = build_datasets("folder", seed=7, **kwargs)
    lazy = build_datasets("folder", seed=7, cache=False, **kwargs)
    for split in (0, 1):
        for index in range(len(first[split])):
            assert torch.equal(first[split][index], second[split][index])
            assert torch.equal(first[split][index], lazy[split][index])


def test_small_images_are_skipped_and_all_small_is_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _save(tmp_path / "tiny.png", 10, 12)
    _save(tmp_path / "big.png", 64, 64)
    _save(tmp_path / "big2.png", 64, 64)
    with caplog.at_level(logging.WARNING, logger="losslab.data.folder"):
        train, val = build_datasets("folder", crop_size=32, path=tmp_path)
    assert any("tiny.png" in r.getMessage() and "10x12" in r.getMessage()
               for r in caplog.records)
    assert tmp_path / "tiny.png" not in set(train.paths) | set(val.paths)
    with pytest.raises(ValueError, match=r"smaller than crop_size=100.*64x64.*crop_size <= 64"):
        build_datasets("folder", crop_size=100, path=tmp_path)


def test_empty_or_unreadable_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no readable image in folder .*\.png, \.jpg, \.jpeg"):
        build_datasets("folder", crop_size=16, path=tmp_path)
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match=str(tmp_path)):
        build_datasets("folder", crop_size=16, path=tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        build_datasets("folder", crop_size=16, path=tmp_path / "missing")
    with pytest.raises(ValueError, match="needs path="):
        build_datasets("folder", crop_size=16)


def test_flat_parts_of_folder_images_are_not_cropped(tmp_path: Path) -> None:
    array = _save(tmp_path / "half.png", 32, 96, seed=6)
    array[:, :40] = 200  # the left part is flat: a third of the train crops would be
    Image.fromarray(array, "RGB").save(tmp_path / "half.png")
    train, _ = build_datasets("folder", crop_size=16, path=tmp_path, train_size=60, val_size=4)
    assert all(float(train[i].std(unbiased=False)) >= 0.02 for i in range(60))
    plain, _ = build_datasets("folder", crop_size=16, path=tmp_path, train_size=60, min_std=0)
    assert any(float(plain[i].std(unbiased=False)) < 0.02 for i in range(60))
    with pytest.raises(ValueError, match="min_std"):
        build_datasets("folder", crop_size=16, path=tmp_path, min_std=1.0)
