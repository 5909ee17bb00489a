"""Tests of losslab.data._common: seeding, region splits and crop datasets."""

from __future__ import annotations

import pytest
import torch

from losslab.data._common import (
    RandomCropDataset,
    Region,
    fixed_crops,
    item_rng,
    split_columns,
)


def test_item_rng_depends_only_on_its_key() -> None:
    draw = lambda *key: item_rng(*key).integers(0, 2**31, size=4).tolist()  # noqa: E731
    assert draw(1, "train", 5, 0) == draw(1, "train", 5, 0)
    keys = [(1, "train", 5, 0), (2, "train", 5, 0), (1, "val", 5, 0), (1, "train", 6, 0),
            (1, "train", 5, 1)]
    assert len({tuple(draw(*key)) for key in keys}) == len(keys)


@pytest.mark.parametrize(("height", "width", "crop"), [(300, 451, 64), (300, 451, 200),
                                                       (50, 100, 50), (40, 1000, 8)])
def test_split_columns_gives_disjoint_regions_covering_the_image(
    height: int, width: int, crop: int
) -> None:
    train, val = split_columns(0, height, width, crop, 0.2)
    assert not train.overlaps(val)
    assert train.width + val.width == width and val.left == train.width
    assert train.width >= crop and val.width >= crop
    assert val.width == max(round(0.2 * width), crop)


def test_split_columns_rejects_a_crop_that_does_not_fit_twice() -> None:
    with pytest.raises(ValueError, match=r"at most crop_size=50"):
        split_columns(0, 60, 100, 51, 0.2)


def test_region_overlap() -> None:
    a = Region(0, 0, 0, 10, 10)
    assert a.overlaps(Region(0, 9, 9, 5, 5))
    assert not a.overlaps(Region(0, 10, 0, 5, 5))
    assert not a.overlaps(Region(1, 0, 0, 10, 10))


def test_random_crops_cover_the_region_uniformly() -> None:
    image = torch.arange(20, dtype=torch.float32).view(1, 1, 20).expand(3, 4, 20) / 20
    dataset = RandomCropDataset([image], [Region(0, 0, 5, 4, 10)], crop_size=4, length=700)
    lefts = [dataset.crop_box(i)[2] for i in range(700)]
    assert set(lefts) == set(range(5, 12))  # every position 5..11 is reachable, none outside
    counts = torch.bincount(torch.tensor(lefts))[5:]
    assert int(counts.min()) > 60  # 100 expected each
    for index in range(10):
        _, _, left, _ = dataset.crop_box(index)
        assert torch.equal(dataset[index][0, 0], image[0, 0, left : left + 4])


def test_fixed_crops_round_robin() -> None:
    images = [torch.zeros(3, 8, 8, dtype=torch.uint8), torch.full((3, 8, 8), 255, dtype=torch.uint8)]
    regions = [Region(0, 0, 0, 8, 8), Region(1, 0, 0, 8, 8)]
    crops = fixed_crops(images.__getitem__, regions, crop_size=4, count=5, seed=0)
    assert [float(crops[i].mean()) for i in range(5)] == [0.0, 1.0, 0.0, 1.0, 0.0]
    with pytest.raises(IndexError):
        crops[5]
