"""Tests of losslab.data._common: seeding, region splits and crop datasets."""

from __future__ import annotations

import pytest
import torch

from losslab.data._common import (
    RandomCropDataset,
    Region,
    crop_std,
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


def _half_flat_image() -> torch.Tensor:
    """``(3, 16, 32)`` uint8: the left half constant grey, the right half a random texture."""
    image = torch.full((3, 16, 32), 128, dtype=torch.uint8)
    generator = torch.Generator().manual_seed(0)
    image[:, :, 16:] = torch.randint(0, 256, (3, 16, 16), generator=generator, dtype=torch.uint8)
    return image


def test_crop_std_is_the_population_std_in_unit_range() -> None:
    crop = torch.tensor([[[0, 255], [0, 255]]], dtype=torch.uint8)
    assert crop_std(crop) == pytest.approx(0.5)
    assert crop_std(crop.float() / 255) == pytest.approx(0.5)
    assert crop_std(torch.full((3, 4, 4), 0.3)) == pytest.approx(0.0, abs=1e-7)


def test_near_flat_crops_are_redrawn_in_train_and_validation() -> None:
    image = _half_flat_image()
    region = Region(0, 0, 0, 16, 32)
    plain = RandomCropDataset([image], [region], crop_size=8, length=200)
    skipping = RandomCropDataset([image], [region], crop_size=8, length=200, min_std=0.02)
    flat_before = sum(crop_std(plain[i]) < 0.02 for i in range(200))
    assert flat_before > 40  # a third of the positions lie in the flat half
    assert all(crop_std(skipping[i]) >= 0.02 for i in range(200))
    for index in range(20):  # boxes and items still agree
        _, top, left, _ = skipping.crop_box(index)
        assert torch.equal(skipping[index], image[:, top : top + 8, left : left + 8].float() / 255)
    crops = fixed_crops([image].__getitem__, [region], crop_size=8, count=30, seed=0, min_std=0.02)
    assert all(crop_std(item) >= 0.02 for item in crops)
    unfiltered = fixed_crops([image].__getitem__, [region], crop_size=8, count=30, seed=0)
    assert any(crop_std(item) < 0.02 for item in unfiltered)


def test_min_std_zero_keeps_the_draws_of_no_filtering() -> None:
    image = _half_flat_image()
    region = Region(0, 0, 0, 16, 32)
    default = RandomCropDataset([image], [region], crop_size=8, length=50)
    zero = RandomCropDataset([image], [region], crop_size=8, length=50, min_std=0.0)
    assert all(default.crop_box(i) == zero.crop_box(i) for i in range(50))


def test_an_all_flat_image_keeps_its_most_varied_crop_instead_of_hanging() -> None:
    image = torch.zeros(3, 16, 16, dtype=torch.uint8)
    image[:, 15, 15] = 1  # one barely lit pixel: every crop is below the threshold
    dataset = RandomCropDataset([image], [Region(0, 0, 0, 16, 16)], crop_size=8, length=5,
                                min_std=0.02)
    assert all(crop_std(dataset[i]) < 0.02 for i in range(5))
    assert any(float(dataset[i].max()) > 0 for i in range(5))  # the lit corner was preferred


@pytest.mark.parametrize("bad", [-0.1, 0.5, "0.02", True])
def test_bad_min_std_names_the_range(bad: object) -> None:
    with pytest.raises(ValueError, match=r"min_std must be a number in \[0, 0\.5\)"):
        RandomCropDataset([torch.zeros(3, 8, 8)], [Region(0, 0, 0, 8, 8)], crop_size=4,
                          length=1, min_std=bad)  # type: ignore[arg-type]
