"""Training helpers shared by the regression-to-the-mean demos (not public)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from losslab.losses.multi_hypothesis import winner_takes_all

WTA_EPSILON = 0.05


def wta(losses: Tensor, step: int, steps: int) -> Tensor:
    """Relaxed WTA for the first half of training, plain WTA afterwards."""
    if step < steps // 2:
        return winner_takes_all(losses, mode="relaxed", epsilon=WTA_EPSILON)
    return winner_takes_all(losses, mode="wta")


def optimise(parameters: Any, loss_fn: Any, steps: int, lr: float) -> None:
    """Adam with a cosine learning-rate decay to zero (L1 then settles on the median)."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    for step in range(steps):
        optimizer.zero_grad()
        loss_fn(step).backward()
        optimizer.step()
        schedule.step()

