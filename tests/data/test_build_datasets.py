"""Tests of the data package's entry points: build_datasets, available_datasets, errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from losslab.data import available_datasets, build_datasets, describe_datasets

OFFLINE = {
    "bundled": {"images": ["astronaut", "coffee"]},
    "dead_leaves": {},
    "moving_shapes": {},
}


def test_available_datasets_lists_the_contract_names() -> None:
    assert available_datasets() == sorted(
        ["bundled", "dead_leaves", "moving_shapes", "folder", "cifar10", "stl10", "celeba",
         "mnist"]
    )
    assert set(describe_datasets()) == set(available_datasets())


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_datasets_batch_with_a_dataloader(name: str) -> None:
    train, val = build_datasets(name, crop_size=32, seed=0, train_size=6, val_size=4,
                                **OFFLINE[name])
    batch = next(iter(DataLoader(train, batch_size=3, shuffle=False)))
    expected = (3, 4, 3, 32, 32) if name == "moving_shapes" else (3, 3, 32, 32)
    assert batch.shape == expected and batch.dtype == torch.float32
    assert float(batch.min()) >= 0.0 and float(batch.max()) <= 1.0
    val_batch = next(iter(DataLoader(val, batch_size=4)))
    assert val_batch.shape == (4, *expected[1:])
    again, _ = build_datasets(name, crop_size=32, seed=0, train_size=6, val_size=4,
                              **OFFLINE[name])
    assert torch.equal(next(iter(DataLoader(again, batch_size=3))), batch)


def test_unknown_names_and_options_suggest_the_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'dead_leaf'\. Did you mean "
                                         r"'dead_leaves'.*Known datasets: bundled"):
        build_datasets("dead_leaf", crop_size=32)
    with pytest.raises(ValueError, match=r"no option 'train_szie'.*'train_size'"):
        build_datasets("dead_leaves", crop_size=32, train_szie=4)
    with pytest.raises(TypeError, match="dataset name must be a str"):
        build_datasets(3, crop_size=32)  # type: ignore[arg-type]


def test_crop_size_must_be_a_positive_int() -> None:
    with pytest.raises(TypeError, match="crop_size must be an int"):
        build_datasets("dead_leaves", crop_size=32.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="crop_size must be >= 1"):
        build_datasets("dead_leaves", crop_size=-4)
