"""Tests of the ``bundled`` dataset: offline photos, disjoint train/val regions, determinism."""

from __future__ import annotations

import pytest
import torch

from losslab.data import build_datasets
from losslab.data.bundled import DEFAULT_PHOTOS, available_photos, load_photo
from losslab.train.config import DataConfig, TrainConfig

SMALL = ("astronaut", "chelsea", "coffee")


@pytest.mark.parametrize("name", available_photos())
def test_every_photo_loads_offline_as_colour(name: str) -> None:
    photo = load_photo(name)
    assert photo.dtype == torch.uint8 and photo.dim() == 3 and photo.shape[0] == 3
    assert min(photo.shape[1:]) >= 256
    # A colour image, not grey stored on three channels.
    assert float((photo[0].float() - photo[1].float()).abs().mean()) > 1.0


def test_scale_downscales_the_photos() -> None:
    assert tuple(load_photo("coffee").shape) == (3, 400, 600)
    assert tuple(load_photo("coffee", 2.0).shape) == (3, 200, 300)
    assert tuple(load_photo("coffee", 3.0).shape) == (3, 133, 200)


def test_items_shapes_range_and_default_subset() -> None:
    train, val = build_datasets("bundled", crop_size=48, seed=0, train_size=10, val_size=5)
    assert (len(train), len(val)) == (10, 5)
    assert train.source_names == DEFAULT_PHOTOS and "colorwheel" not in DEFAULT_PHOTOS
    for item in [*(train[i] for i in range(10)), *(val[i] for i in range(5))]:
        assert item.shape == (3, 48, 48) and item.dtype == torch.float32
        assert float(item.min()) >= 0.0 and float(item.max()) <= 1.0
    with pytest.raises(IndexError):
        train[10]


def test_same_seed_same_crops_other_seed_or_epoch_different() -> None:
    first, first_val = build_datasets("bundled", crop_size=32, seed=3, train_size=8, images=SMALL)
    second, second_val = build_datasets("bundled", crop_size=32, seed=3, train_size=8,
                                        images=SMALL)
    other, other_val = build_datasets("bundled", crop_size=32, seed=4, train_size=8, images=SMALL)
    stack = lambda dataset: torch.stack([dataset[i] for i in range(len(dataset))])  # noqa: E731
    assert torch.equal(stack(first), stack(second))
    assert torch.equal(stack(first_val), stack(second_val))
    assert not torch.equal(stack(first), stack(other))
    assert not torch.equal(stack(first_val), stack(other_val))
    epoch0 = stack(first)
    first.set_epoch(1)
    assert not torch.equal(stack(first), epoch0)
    first.set_epoch(0)
    assert torch.equal(stack(first), epoch0)
    # Access order does not matter: item 5 alone equals item 5 of the full pass.
    assert torch.equal(second[5], epoch0[5])


def test_train_and_val_regions_are_disjoint_and_crops_stay_inside() -> None:
    crop = 40
    train, val = build_datasets("bundled", crop_size=crop, seed=1, train_size=300, val_size=12)
    for a in train.regions:
        for b in {box[0] for box in val.boxes}:
            assert not a.overlaps(b)
    val_boxes = [(region.source, top, left) for region, top, left in val.boxes]
    for index in range(len(train)):
        region, top, left, _ = train.crop_box(index)
        assert region.top <= top and top + crop <= region.top + region.height
        assert region.left <= left and left + crop <= region.left + region.width
        for source, _, vleft in val_boxes:
            if source == region.source:
                # The train crop ends left of every validation crop of the same photo.
                assert left + crop <= vleft
    # Validation strips are the right 20 % (at least crop wide) of each photo.
    for region in {box[0] for box in val.boxes}:
        width = load_photo(DEFAULT_PHOTOS[region.source]).shape[-1]
        assert region.left + region.width == width
        assert region.width == max(round(0.2 * width), crop)


def test_items_are_the_photo_pixels_at_their_boxes() -> None:
    train, val = build_datasets("bundled", crop_size=24, seed=2, train_size=20, val_size=4,
                                images=SMALL)
    for index in range(len(train)):
        region, top, left, flipped = train.crop_box(index)
        photo = load_photo(SMALL[region.source])
        expected = photo[:, top : top + 24, left : left + 24].float() / 255
        if flipped:
            expected = expected.flip(-1)
        assert torch.equal(train[index], expected)
    # Round robin: the first len(images) validation crops come one from each photo.
    assert [box[0].source for box in val.boxes[:3]] == [0, 1, 2]
    for item, (region, top, left) in zip(val, val.boxes, strict=True):
        photo = load_photo(SMALL[region.source])
        assert torch.equal(item, photo[:, top : top + 24, left : left + 24].float() / 255)


def test_flip_option_changes_some_crops_only_by_a_mirror() -> None:
    flipped, _ = build_datasets("bundled", crop_size=16, seed=0, train_size=40, images=["rocket"])
    plain, _ = build_datasets("bundled", crop_size=16, seed=0, train_size=40, images=["rocket"],
                              flip=False)
    flags = [flipped.crop_box(i)[3] for i in range(40)]
    assert 5 < sum(flags) < 35
    assert not any(plain.crop_box(i)[3] for i in range(40))


def test_errors_name_the_photo_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"unknown bundled photo 'astronot'.*'astronaut'"):
        build_datasets("bundled", crop_size=32, images=["astronot"])
    with pytest.raises(ValueError, match=r"crop_size=230 .* 'chelsea' of 300x451.*crop_size=224"):
        build_datasets("bundled", crop_size=230, images=["astronaut", "chelsea"])
    # the suggestion works, also for the default models (a multiple of 8: issue 11)
    build_datasets("bundled", crop_size=224, images=["astronaut", "chelsea"], train_size=1,
                   val_size=1)
    TrainConfig(data=DataConfig(crop_size=224, options={"images": ["astronaut", "chelsea"]}))
    with pytest.raises(ValueError, match="scale must be a number >= 1"):
        build_datasets("bundled", crop_size=32, scale=0.5)
    with pytest.raises(ValueError, match="crop_size must be >= 1"):
        build_datasets("bundled", crop_size=0)


def test_validation_and_train_crops_skip_near_flat_regions() -> None:
    # Without the filter, validation crop 16 at 48 px is a flat patch (std 0.003) whose bicubic
    # PSNR is 182 dB; with it every crop has some texture.
    train, val = build_datasets("bundled", crop_size=48, seed=0)
    assert float(val.items.flatten(1).std(dim=1, unbiased=False).min()) >= 0.02
    _, unfiltered = build_datasets("bundled", crop_size=48, seed=0, min_std=0)
    assert float(unfiltered.items.flatten(1).std(dim=1, unbiased=False).min()) < 0.005
    stds = torch.stack([train[i] for i in range(100)]).flatten(1).std(dim=1, unbiased=False)
    assert float(stds.min()) >= 0.02
