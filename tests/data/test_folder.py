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
    with pytest.raises(ValueError, match=r"smaller than crop_size=100.*64x64.*Use crop_size=64"):
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


# -- bit depths and colour types (issue 11: 16-bit PNGs were read as 8-bit and clipped) ---------
def _write_png(path: Path, samples: np.ndarray, colour_type: int, bit_depth: int,
               palette: np.ndarray | None = None) -> None:
    """A PNG written by hand (zlib + chunks), independent of Pillow and pypng.

    ``samples``: ``(H, W, planes)`` integers (palette indices for colour type 3).
    """
    import struct
    import zlib

    height, width = samples.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\x00" + samples[y].astype(dtype).tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    body = chunk(b"IHDR", header)
    if palette is not None:
        body += chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    body += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


#: colour type -> (planes, which planes are colour)
_COLOUR_TYPES = {"grey": (0, 1), "grey+alpha": (4, 2), "rgb": (2, 3), "rgba": (6, 4)}


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("kind", list(_COLOUR_TYPES))
def test_png_of_every_colour_type_is_read_at_full_depth(tmp_path: Path, kind: str,
                                                        bits: int) -> None:
    from losslab.data._common import to_unit_float
    from losslab.data.folder import read_image

    colour_type, planes = _COLOUR_TYPES[kind]
    top = 2**bits - 1
    samples = np.random.default_rng(bits).integers(0, top + 1, size=(5, 7, planes))
    _write_png(tmp_path / "image.png", samples, colour_type, bits)
    image = to_unit_float(read_image(tmp_path / "image.png"))
    colour = samples[..., :3] if planes >= 3 else np.repeat(samples[..., :1], 3, axis=2)
    expected = torch.from_numpy(colour / top).permute(2, 0, 1).float()  # alpha dropped
    assert image.shape == (3, 5, 7) and image.dtype == torch.float32
    # full depth: 16-bit values are distinguished to 1/65535, not rounded to 1/255
    torch.testing.assert_close(image, expected, rtol=0, atol=0.5 / top)


def test_palette_png_is_expanded(tmp_path: Path) -> None:
    from losslab.data.folder import read_image

    palette = np.array([[255, 0, 0], [0, 128, 255], [10, 20, 30]])
    indices = np.array([[[0], [1], [2]], [[2], [1], [0]]])
    _write_png(tmp_path / "p.png", indices, 3, 8, palette=palette)
    image = read_image(tmp_path / "p.png")
    assert image.dtype == torch.uint8
    assert torch.equal(image.permute(1, 2, 0), torch.from_numpy(palette[indices[..., 0]]).to(torch.uint8))


def test_bright_16_bit_grey_photo_is_not_clipped_to_white(tmp_path: Path) -> None:
    """The reported case: 16-bit grey read as 8-bit had 99.6 % of its pixels at 255."""
    ramp = np.repeat(np.linspace(0, 65535, 64).round().reshape(64, 1, 1), 128, axis=1)
    _write_png(tmp_path / "grey16.png", ramp, 0, 16)  # dark at the top, white at the bottom
    train, val = build_datasets("folder", crop_size=48, path=tmp_path, train_size=1, val_size=1,
                                val_fraction=0.5, flip=False)
    del train
    crop = val[0]
    assert float((crop >= 1.0).float().mean()) < 0.01
    assert 0.3 < float(crop.mean()) < 0.7 and float(crop.std()) > 0.1
