"""models/stochastic.py: the sampling contract and draw_samples."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from losslab.models import UNet
from losslab.models.stochastic import draw_samples, is_stochastic


class _PickOne(nn.Module):
    """Returns one of ``K`` fixed images per draw: the simplest stochastic model."""

    is_stochastic = True

    def __init__(self, images: Tensor) -> None:
        super().__init__()
        self.images = images  # (K, C, H, W)

    def sample(self, inputs: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
        index = torch.randint(0, len(self.images), (inputs.shape[0], count), generator=generator)
        return self.images[index]


class _WrongShape(_PickOne):
    def sample(self, inputs: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
        return super().sample(inputs, count, generator)[:, :1]


def test_draws_are_reproducible_by_seed_and_independent_of_the_global_generator() -> None:
    model = _PickOne(torch.rand(4, 3, 8, 8))
    inputs = torch.zeros(5, 1, 8, 8)
    first = draw_samples(model, inputs, 6, seed=3)
    torch.manual_seed(123)  # the global generator does not matter
    assert first.shape == (5, 6, 3, 8, 8)
    torch.testing.assert_close(draw_samples(model, inputs, 6, seed=3), first)
    assert not torch.equal(draw_samples(model, inputs, 6, seed=4), first)


def test_deterministic_models_and_bad_counts_are_refused() -> None:
    assert not is_stochastic(UNet(1, 3))
    with pytest.raises(TypeError, match="deterministic"):
        draw_samples(UNet(1, 3), torch.zeros(1, 1, 8, 8), 2)
    model = _PickOne(torch.rand(2, 3, 4, 4))
    assert is_stochastic(model)
    for count in (0, 2.0, True):
        with pytest.raises(ValueError, match="whole number >= 1"):
            draw_samples(model, torch.zeros(1, 1, 4, 4), count)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"expected \(2, 3, C, H, W\)"):
        draw_samples(_WrongShape(torch.rand(2, 3, 4, 4)), torch.zeros(2, 1, 4, 4), 3)
