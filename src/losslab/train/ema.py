"""An exponential moving average (EMA) of the generator's weights, for evaluation and samples.

GAN generators oscillate: the adversarial gradient changes with D every step, so the weights
after any one step carry that step's noise. Averaging them over the last few hundred steps
(``theta_ema <- decay * theta_ema + (1 - decay) * theta``, as in ESRGAN/BasicSR and StyleGAN)
gives a smoother, usually better model at no training cost. The average is a frozen copy of the
model (:func:`make_ema`); :class:`~losslab.train.module.TaskModule` keeps it as the submodule
``ema_model`` (so checkpoints hold both weight sets and resume restores both), updates it after
every generator step and uses it for validation, sample grids, ``load_run`` and
``losslab evaluate``.

Warm-up: at short budgets a fixed decay of 0.999 would leave the average dominated by the random
initial weights for ~1000 steps, so the decay used at update ``n`` (0-based) is
``min(decay, (1 + n) / (10 + n))`` (TensorFlow's ``num_updates`` rule): 0.1 at the first update,
0.9 after 80, 0.99 after 890. Buffers (batch-norm statistics) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def check_decay(decay: float) -> float:
    """``decay`` as a float in ``[0, 1)``; ``ValueError`` naming the fix otherwise."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
        raise ValueError(f"the EMA decay must be a number in [0, 1) (0 = no EMA, typical 0.999); "
                         f"got {decay!r}.")
    return float(decay)


def ema_decay_at(decay: float, updates: int) -> float:
    """The decay applied at update number ``updates`` (0-based): ``min(decay, (1+n)/(10+n))``."""
    return min(check_decay(decay), (1.0 + updates) / (10.0 + updates))


def make_ema(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model`` (no gradients) to hold the average weights.

    Call ``.eval()`` on it before predicting with it (the trainer does): Lightning switches the
    whole module tree to training mode at the start of every epoch.
    """
    average = copy.deepcopy(model)
    return average.requires_grad_(False)


@torch.no_grad()
def update_ema(average: nn.Module, model: nn.Module, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * model`` for parameters; buffers copied.

    Args:
        average: the copy made by :func:`make_ema` (same architecture as ``model``).
        model: the trained model, after its optimizer step.
        decay: in ``[0, 1)``; usually :func:`ema_decay_at` of the step.
    """
    decay = check_decay(decay)
    averaged = list(average.parameters())
    current = [p.detach() for p in model.parameters()]
    if len(averaged) != len(current):
        raise ValueError(f"the EMA copy has {len(averaged)} parameters and the model "
                         f"{len(current)}; build it with make_ema(model).")
    torch._foreach_lerp_(averaged, current, 1.0 - decay)  # one fused kernel per dtype/device
    for mine, theirs in zip(average.buffers(), model.buffers(), strict=True):
        mine.copy_(theirs)
