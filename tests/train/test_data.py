"""GlobalBatchSampler: processes split each global batch; the union is the 1-process batch."""

from __future__ import annotations

import pytest

from losslab.train.data import GlobalBatchSampler


def test_ranks_partition_the_single_process_batches() -> None:
    single = list(GlobalBatchSampler(50, 8, seed=3))
    ranks = [list(GlobalBatchSampler(50, 8, world_size=2, rank=r, seed=3)) for r in (0, 1)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 6  # 50 // 8, last partial dropped
    for batch, first, second in zip(single, *ranks, strict=True):
        assert first + second == batch and len(first) == 4
    assert len({i for batch in single for i in batch}) == 48  # no repeats within an epoch


def test_epochs_reshuffle_reproducibly() -> None:
    sampler = GlobalBatchSampler(32, 4, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert first != second
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_rejects_uneven_split() -> None:
    with pytest.raises(ValueError, match="multiple of world_size"):
        GlobalBatchSampler(32, 6, world_size=4)


def test_step_source_resumes_mid_epoch_on_the_same_batches() -> None:
    straight = GlobalBatchSampler(20, 4, seed=1, step_source=lambda: 0)
    epoch_0 = list(straight)
    straight.step_source = lambda: 5  # the start of epoch 1 (5 batches per epoch)
    epoch_1 = list(straight)
    resumed = GlobalBatchSampler(20, 4, seed=1, step_source=lambda: 7)  # 2 batches into epoch 1
    resumed.set_epoch(0)  # what a framework restarting mid-epoch may pass: ignored
    assert list(resumed) == epoch_1[2:]
    assert epoch_0 != epoch_1 and resumed.position() == (1, 2)
