"""Datasets and batch order for training: the same global batches whatever the process count.

:class:`GlobalBatchSampler` draws one seeded permutation of the training set per epoch, cuts it
into global batches of ``batch_size`` items, and gives process ``rank`` of ``world_size`` the
``rank``-th contiguous slice of each. With mean-reduced losses and DDP's gradient averaging, a
run on 2 processes then takes the same optimizer steps as a run on 1 (up to float rounding), and
items depend only on ``(seed, epoch, index)`` (see :mod:`losslab.data`), not on the process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Dataset, Sampler

from losslab.data import build_datasets
from losslab.train.config import TrainConfig


def build_data(config: TrainConfig) -> tuple[Dataset, Dataset]:
    """``(train, val)`` from ``config.data`` via :func:`losslab.data.build_datasets`, seeded by
    ``data.seed`` (or the run's ``seed`` when it is ``None``)."""
    data = config.data
    seed = config.seed if data.seed is None else data.seed
    train, val = build_datasets(data.name, crop_size=data.crop_size, seed=seed, **data.options)
    if len(val) == 0:
        raise ValueError(f"dataset {data.name!r} has no validation items; give it val_size >= 1 "
                         "in data.options.")
    if len(train) < data.batch_size:
        raise ValueError(f"dataset {data.name!r} has {len(train)} training items, fewer than "
                         f"data.batch_size = {data.batch_size}; lower the batch size.")
    return train, val


class GlobalBatchSampler(Sampler[list[int]]):
    """Seeded global batches split across processes; yields this process's index lists.

    Args:
        length: number of items in the dataset.
        batch_size: the global batch (items per optimizer step over all processes); must be a
            multiple of ``world_size``.
        world_size: number of training processes.
        rank: this process's index in ``[0, world_size)``.
        seed: base seed of the per-epoch permutation (epoch ``e`` uses ``seed + e``).

    Incomplete last batches are dropped, so every process sees equally many equal batches.

    With ``step_source`` (a function returning the optimizer steps done, e.g. the trainer's
    ``global_step``), each iteration starts where that step lies: epoch ``step // len(self)``,
    batch ``step % len(self)``. A run resumed mid-epoch thus trains on exactly the batches the
    uninterrupted run would have, whatever epoch number the training framework passes to
    :meth:`set_epoch` (ignored then).
    """

    def __init__(self, length: int, batch_size: int, *, world_size: int = 1, rank: int = 0,
                 seed: int = 0, step_source: Callable[[], int] | None = None) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} must be a multiple of world_size "
                             f"{world_size} (it is the global batch).")
        if length < batch_size:
            raise ValueError(f"{length} items cannot fill one batch of {batch_size}.")
        self.length, self.batch_size = length, batch_size
        self.world_size, self.rank, self.seed = world_size, rank, seed
        self.epoch = 0
        self.step_source = step_source

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch: a new permutation per epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length // self.batch_size

    def position(self) -> tuple[int, int]:
        """``(epoch, first batch)`` of the next iteration."""
        if self.step_source is None:
            return self.epoch, 0
        return divmod(int(self.step_source()), len(self))

    def __iter__(self) -> Iterator[list[int]]:
        epoch, skip = self.position()
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(self.length, generator=generator).tolist()
        share = self.batch_size // self.world_size
        for start in range(skip * self.batch_size, len(self) * self.batch_size, self.batch_size):
            begin = start + self.rank * share
            yield order[begin : begin + share]
