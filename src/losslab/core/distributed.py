"""``torch.distributed`` helpers for losses that keep state every process must agree on."""

from __future__ import annotations

import torch
from torch import Tensor


def world_size() -> int:
    """Processes in the default group (1 when ``torch.distributed`` is not initialised)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return 1
    return torch.distributed.get_world_size()


def mean_across_processes(values: Tensor) -> Tensor:
    """``values`` (any shape, float) averaged over every process; itself when not distributed.

    Every process must call it the same number of times (it is a collective).
    """
    world = world_size()
    if world == 1:
        return values
    reduced = values.detach().clone()
    if torch.distributed.get_backend() == "nccl" and not reduced.is_cuda:
        reduced = reduced.cuda()
    torch.distributed.all_reduce(reduced)
    return (reduced / world).to(values.device)
