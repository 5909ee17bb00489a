"""Tests for losslab.models.super_resolution.SuperResolutionNet."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from losslab.models import SuperResolutionNet
from losslab.models.super_resolution import ResidualBlock


def _bicubic(images: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(images, scale_factor=scale, mode="bicubic", align_corners=False)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(("channels", "width", "blocks"), [(3, 16, 2), (1, 8, 0)])
def test_output_shape(scale: int, channels: int, width: int, blocks: int) -> None:
    model = SuperResolutionNet(scale, channels, width, blocks)
    output = model(torch.rand(2, channels, 7, 10))
    assert output.shape == (2, channels, 7 * scale, 10 * scale)


@pytest.mark.parametrize("scale", [2, 4])
def test_pixel_shuffle_stages_one_per_factor_of_two(scale: int) -> None:
    model = SuperResolutionNet(scale, width=8)
    shuffles = [m for m in model.upsample if isinstance(m, torch.nn.PixelShuffle)]
    assert [m.upscale_factor for m in shuffles] == [2] * (scale // 2)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, ResidualBlock) for m in model.modules()) == model.blocks


def test_output_is_bicubic_plus_the_learned_residual() -> None:
    model = SuperResolutionNet(2, width=8, blocks=1)
    images = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        model.tail.weight.zero_()
        model.tail.bias.copy_(torch.tensor([0.5, -0.25, 0.0]))
    expected = _bicubic(images, 2) + torch.tensor([0.5, -0.25, 0.0]).view(1, 3, 1, 1)
    assert torch.allclose(model(images), expected, atol=1e-6)


def test_untrained_network_is_close_to_bicubic() -> None:
    model = SuperResolutionNet(4)
    images = torch.rand(2, 3, 12, 12)
    difference = (model(images) - _bicubic(images, 4)).abs()
    assert 0 < difference.max() < 0.1


def test_clamp_output_stays_in_unit_range_and_linear_may_overshoot() -> None:
    images = torch.zeros(1, 3, 8, 8)
    images[..., ::2, :] = 1.0  # stripes: bicubic rings beyond [0, 1]
    linear = SuperResolutionNet(2, width=8, output="linear")
    clamped = SuperResolutionNet(2, width=8, output="clamp")
    clamped.load_state_dict(linear.state_dict())
    raw = linear(images)
    assert raw.min() < 0 or raw.max() > 1
    assert torch.equal(clamped(images), raw.clamp(0, 1))


def test_several_output_images_share_the_bicubic_skip() -> None:
    model = SuperResolutionNet(2, channels=3, width=8, out_channels=6)
    images = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        model.tail.weight.zero_()
    output = model(images)
    assert output.shape == (1, 6, 16, 16)
    assert torch.allclose(output[:, :3], _bicubic(images, 2), atol=1e-6)
    assert torch.allclose(output[:, 3:], _bicubic(images, 2), atol=1e-6)


@pytest.mark.parametrize("scale", [1, 5, 8, True, "2"])
def test_unsupported_scale_raises(scale: object) -> None:
    with pytest.raises(ValueError, match="scale must be one of 2, 3, 4"):
        SuperResolutionNet(scale)  # type: ignore[arg-type]


def test_other_invalid_options_raise() -> None:
    with pytest.raises(ValueError, match="multiple of channels = 3"):
        SuperResolutionNet(2, out_channels=4)
    with pytest.raises(ValueError, match="output must be one of 'linear', 'clamp'"):
        SuperResolutionNet(2, output="sigmoid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must have 3 channels; got 1"):
        SuperResolutionNet(2)(torch.rand(1, 1, 8, 8))


def test_every_parameter_receives_a_gradient() -> None:
    model = SuperResolutionNet(4, width=8, blocks=2)
    low = torch.rand(2, 3, 6, 6)
    high = torch.rand(2, 3, 24, 24)
    F.l1_loss(model(low), high).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
