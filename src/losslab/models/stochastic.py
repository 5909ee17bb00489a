"""Models that return many possible outcomes: the sampling contract every stochastic model keeps.

A deterministic network trained with a pixel loss returns one answer per input, the mean (MSE)
or median (L1) of the plausible ones. A *stochastic* model returns a different plausible answer
per draw. Two kinds exist in losslab:

- latent-variable models (:mod:`losslab.models.latent`): a global latent ``z ~ N(0, I)`` is fed to
  the task network beside the input (trained as a conditional VAE, or as a noise-input
  generator under a proper scoring rule);
- multi-hypothesis models with a score head: one of the ``K`` hypotheses is drawn with the
  probability the head assigns to it.

Any such model sets the class attribute ``is_stochastic = True`` and implements::

    sample(inputs, count, generator=None) -> Tensor  # (N, count, C, H, W)

where ``generator`` (a ``torch.Generator`` on the inputs' device, or ``None`` for torch's global
generator) makes the draws reproducible. :func:`draw_samples` is the one call evaluation uses.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def is_stochastic(model: nn.Module) -> bool:
    """Whether ``model`` draws a different output per call (it implements ``sample``)."""
    return bool(getattr(model, "is_stochastic", False)) and callable(getattr(model, "sample", None))


def draw_samples(model: nn.Module, inputs: Tensor, count: int, seed: int = 0) -> Tensor:
    """``count`` outputs of a stochastic ``model`` per input, reproducibly.

    Args:
        model: a model with ``is_stochastic = True`` and ``sample(inputs, count, generator)``.
        inputs: a batch of model inputs, ``(N, C_in, h, w)``.
        count: draws per input (``>= 1``).
        seed: seeds a ``torch.Generator`` on the inputs' device, so the same seed gives the same
            samples whatever else used torch's global generator.

    Returns:
        ``(N, count, C, H, W)`` outputs, in the model's output range.

    Raises:
        TypeError: ``model`` is not stochastic.
        ValueError: ``count < 1``, or ``sample`` returned another shape.
    """
    if not is_stochastic(model):
        raise TypeError(f"{type(model).__name__} is deterministic (no is_stochastic/sample); "
                        "train it with a latent (latent: {mode: cvae}) or a score head to sample.")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number >= 1; got {count!r}.")
    generator = torch.Generator(device=inputs.device)
    generator.manual_seed(int(seed))
    samples = model.sample(inputs, count, generator=generator)  # type: ignore[operator]
    if samples.dim() != 5 or samples.shape[:2] != (inputs.shape[0], count):
        raise ValueError(f"{type(model).__name__}.sample returned shape {tuple(samples.shape)}; "
                         f"expected ({inputs.shape[0]}, {count}, C, H, W).")
    return samples


__all__ = ["draw_samples", "is_stochastic"]
