"""core.distributed: one process is a no-op; two gloo processes average their values."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from losslab.core.distributed import mean_across_processes, world_size


def test_without_torch_distributed_the_value_is_returned_as_is() -> None:
    assert not dist.is_initialized()
    assert world_size() == 1
    values = torch.tensor([1.0, 2.0])
    assert mean_across_processes(values) is values


def _worker(rank: int, port: int, results: dict[int, list[float]]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        values = torch.tensor([float(rank), 10.0 * (rank + 1)], requires_grad=True)
        mean = mean_across_processes(values)
        assert world_size() == 2 and float(values[0]) == rank  # the input is left as it was
        results[rank] = mean.tolist()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_processes_get_the_mean_of_their_values() -> None:
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(_free_port(), results), nprocs=2, join=True)
        assert dict(results) == {0: [0.5, 15.0], 1: [0.5, 15.0]}
