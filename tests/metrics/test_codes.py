"""Nearest neighbours and top-1 retrieval."""

from __future__ import annotations

import pytest
import torch

from losslab.metrics import nearest_neighbours, retrieval_top1


def test_nearest_neighbours_hand_example() -> None:
    codes = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [5.0, 2.0]])
    indices, distances = nearest_neighbours(codes, 1)
    assert indices[:, 0].tolist() == [1, 0, 3, 2]
    assert distances[:, 0].tolist() == pytest.approx([1.0, 1.0, 2.0, 2.0])
    indices, _ = nearest_neighbours(codes, 2, queries=torch.tensor([[4.0, 0.0]]))
    assert indices[0].tolist() == [2, 3]
    with pytest.raises(ValueError, match="k must be in"):
        nearest_neighbours(codes, 4)


def test_retrieval_identity_encoder_finds_every_image(photo_batch: torch.Tensor) -> None:
    assert retrieval_top1(lambda x: x, photo_batch) == 1.0


def test_retrieval_constant_encoder_is_chance(photo_batch: torch.Tensor) -> None:
    # Every code equal: ties go to index 0, so only image 0 is "found".
    constant = retrieval_top1(lambda x: torch.zeros(x.shape[0], 4), photo_batch)
    assert constant == pytest.approx(1 / photo_batch.shape[0])
