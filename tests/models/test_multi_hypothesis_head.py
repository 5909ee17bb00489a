"""Tests for losslab.models.multi_hypothesis_head.MultiHypothesisHead."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from losslab.models import (
    ConvAutoencoder,
    MultiHypothesisHead,
    ScoredHypothesisHead,
    UNet,
    build_model,
)
from losslab.models.stochastic import draw_samples, is_stochastic


def test_hypothesis_k_is_the_kth_group_of_output_channels() -> None:
    inner = UNet(9, out_channels=4 * 3, width=4, depth=2)
    head = MultiHypothesisHead(inner, hypotheses=4, channels=3)
    frames = torch.rand(2, 9, 16, 16)
    hypotheses = head(frames)
    flat = inner(frames)
    assert hypotheses.shape == (2, 4, 3, 16, 16)
    for k in range(4):
        assert torch.equal(hypotheses[:, k], flat[:, 3 * k : 3 * k + 3])


def test_a_factory_is_called_with_the_needed_out_channels() -> None:
    seen: list[int] = []

    def factory(out_channels: int) -> nn.Module:
        seen.append(out_channels)
        return UNet(1, out_channels, width=4, depth=1)

    head = MultiHypothesisHead(factory, hypotheses=3, channels=2)
    assert seen == [6]
    assert head(torch.rand(1, 1, 8, 8)).shape == (1, 3, 2, 8, 8)


def test_mismatched_output_channels_raise() -> None:
    with pytest.raises(ValueError, match="out_channels=3, but 2 hypotheses of 3 channels need 6"):
        MultiHypothesisHead(UNet(3, 3, width=4), hypotheses=2)
    # a model without an out_channels attribute is checked on its first output
    head = MultiHypothesisHead(nn.Sequential(nn.Conv2d(1, 5, 1)), hypotheses=2, channels=3)
    with pytest.raises(ValueError, match=r"must return \(N, 6, H, W\).*got shape \(1, 5, 4, 4\)"):
        head(torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="hypotheses must be >= 1"):
        MultiHypothesisHead(nn.Conv2d(1, 3, 1), hypotheses=0)
    with pytest.raises(TypeError, match=r"nn\.Module or a factory"):
        MultiHypothesisHead(42, hypotheses=2)  # type: ignore[arg-type]


def test_autoencoder_head_encodes_once_and_decodes_hypotheses() -> None:
    inner = ConvAutoencoder(out_channels=2 * 3, width=8, depth=2, code_channels=4)
    head = MultiHypothesisHead(inner, hypotheses=2)
    images = torch.rand(2, 3, 16, 16)
    code = head.encode(images)
    assert torch.equal(code, inner.encode(images))
    assert head.decode(code).shape == (2, 2, 3, 16, 16)
    assert torch.equal(head(images), head.decode(code))
    with pytest.raises(TypeError, match="UNet has no encode"):
        MultiHypothesisHead(UNet(3, 6, width=4), hypotheses=2).encode(images)


@pytest.mark.parametrize(
    ("name", "options", "inputs", "expected"),
    [
        ("unet", {"in_channels": 9, "width": 4}, (2, 9, 16, 16), (2, 4, 3, 16, 16)),
        ("unet", {"in_channels": 1, "out_channels": 2, "width": 4}, (1, 1, 8, 8), (1, 4, 2, 8, 8)),
        ("autoencoder", {"width": 4}, (2, 3, 16, 16), (2, 4, 3, 16, 16)),
        ("autoencoder", {"in_channels": 1, "width": 4}, (1, 1, 8, 8), (1, 4, 1, 8, 8)),
        ("super_resolution", {"scale": 2, "width": 4}, (2, 3, 8, 8), (2, 4, 3, 16, 16)),
    ],
)
def test_build_model_with_hypotheses(
    name: str, options: dict, inputs: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    model = build_model(name, hypotheses=4, **options)
    assert isinstance(model, MultiHypothesisHead)
    output = model(torch.rand(*inputs))
    assert output.shape == expected
    # different hypotheses start different (otherwise WTA could never separate them)
    assert not torch.allclose(output[:, 0], output[:, 1])


def test_gradients_reach_the_wrapped_model() -> None:
    head = build_model("unet", in_channels=3, width=4, depth=1, hypotheses=2)
    head(torch.rand(1, 3, 8, 8))[:, 1].sum().backward()
    assert all(p.grad is not None for p in head.parameters())
    assert head.model.head.weight.grad[:3].abs().sum() == 0  # hypothesis 0 was not used
    assert head.model.head.weight.grad[3:].abs().sum() > 0


# -- the score head: a multi-hypothesis model that can be sampled ---------------------------
def _scored(probabilities: list[float]) -> ScoredHypothesisHead:
    """A scored head whose score logits are log(probabilities) whatever the input."""
    head = build_model("unet", in_channels=9, hypotheses=len(probabilities), scores=True,
                       width=4, depth=1)
    assert isinstance(head, ScoredHypothesisHead)
    with torch.no_grad():
        head.score_head.logits.weight.zero_()
        head.score_head.logits.bias.copy_(torch.tensor(probabilities).log())
    return head


def test_scored_head_keeps_forward_and_adds_scores() -> None:
    head = build_model("unet", in_channels=9, hypotheses=4, scores=True, width=4, depth=1)
    frames = torch.rand(2, 9, 16, 16)
    assert head(frames).shape == (2, 4, 3, 16, 16)
    assert head.scores(frames).shape == (2, 4)
    assert torch.allclose(head.probabilities(frames).sum(dim=1), torch.ones(2))
    assert is_stochastic(head) and not is_stochastic(MultiHypothesisHead(UNet(9, 12), 4))
    assert any(name.startswith("score_head.") for name in head.state_dict())


def test_samples_are_hypotheses_drawn_with_the_head_probabilities() -> None:
    probabilities = [0.1, 0.6, 0.3]
    head = _scored(probabilities).eval()
    frames = torch.rand(2, 9, 8, 8)
    with torch.no_grad():
        hypotheses = head(frames)
        samples = draw_samples(head, frames, 3000, seed=1)
    assert samples.shape == (2, 3000, 3, 8, 8)
    # every sample is exactly one of its input's hypotheses; count which
    distance = (samples[:, :, None] - hypotheses[:, None]).abs().flatten(3).amax(dim=3)
    assert bool((distance.min(dim=2).values == 0).all())
    counts = torch.bincount(distance.argmin(dim=2).flatten(), minlength=3).float() / 6000
    # binomial sd at n = 6000 is <= 0.0065; allow ~4 sd
    assert torch.allclose(counts, torch.tensor(probabilities), atol=0.027)
    with torch.no_grad():
        assert torch.equal(draw_samples(head, frames, 5, seed=3), draw_samples(head, frames, 5, seed=3))


def test_scored_head_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match="scores=True needs hypotheses"):
        build_model("unet", in_channels=9, scores=True)
    head = _scored([0.5, 0.5])
    with pytest.raises(ValueError, match=r"takes \(N, 9, H, W\) model inputs"):
        head.scores(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="count must be a whole number"):
        head.sample(torch.rand(1, 9, 8, 8), 0)
