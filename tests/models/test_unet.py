"""Tests for losslab.models.unet.UNet."""

from __future__ import annotations

import pytest
import torch

from losslab.models import UNet


@pytest.mark.parametrize("upsampling", ["bilinear", "transposed"])
@pytest.mark.parametrize(
    ("in_channels", "out_channels", "depth", "size"),
    [(9, 3, 3, (32, 32)), (1, 2, 2, (12, 20)), (6, 12, 1, (6, 6)), (3, 3, 4, (16, 32))],
)
def test_output_shape(
    in_channels: int, out_channels: int, depth: int, size: tuple[int, int], upsampling: str
) -> None:
    model = UNet(in_channels, out_channels, width=4, depth=depth, upsampling=upsampling)  # type: ignore[arg-type]
    output = model(torch.rand(2, in_channels, *size))
    assert output.shape == (2, out_channels, *size)
    assert output.min() > 0 and output.max() < 1  # sigmoid by default


def test_levels_double_the_width() -> None:
    model = UNet(3, width=8, depth=3)
    bottom = model.down[-1][1][0]
    assert (bottom.in_channels, bottom.out_channels) == (32, 64)
    assert model.head.in_channels == 8


def test_linear_output_is_the_sigmoid_outputs_logit() -> None:
    torch.manual_seed(5)
    squashing = UNet(1, width=4, depth=2, output="sigmoid")
    torch.manual_seed(5)
    linear = UNet(1, width=4, depth=2, output="linear")
    images = torch.rand(2, 1, 8, 8)
    assert torch.allclose(squashing(images), torch.sigmoid(linear(images)), atol=1e-6)


def test_samples_are_processed_independently_of_the_batch() -> None:
    model = UNet(3, width=4, depth=2)
    images = torch.rand(4, 3, 16, 16)
    together = model(images)
    alone = torch.cat([model(images[i : i + 1]) for i in range(4)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_skip_connections_concatenate_the_encoder_features_of_each_level() -> None:
    model = UNet(3, width=4, depth=2)
    encoder: list[torch.Tensor] = []
    decoder_inputs: list[torch.Tensor] = []
    model.inc.register_forward_hook(lambda m, i, o: encoder.append(o))
    for down in model.down:
        down.register_forward_hook(lambda m, i, o: encoder.append(o))
    for up in model.up:
        up.conv.register_forward_pre_hook(lambda m, i: decoder_inputs.append(i[0]))
    model(torch.rand(1, 3, 16, 16))
    # decoder level 1 (8x8) then level 0 (16x16): [upsampled, skip] along channels
    for decoder_input, skip in zip(decoder_inputs, [encoder[1], encoder[0]], strict=True):
        channels = skip.shape[1]
        assert decoder_input.shape[1] == 2 * channels
        assert torch.equal(decoder_input[:, channels:], skip)


@pytest.mark.parametrize("size", [(30, 32), (32, 12)])
def test_input_not_divisible_by_two_to_the_depth_raises(size: tuple[int, int]) -> None:
    model = UNet(3, depth=3, width=4)
    with pytest.raises(ValueError, match=r"UNet input height and width must be divisible by 8"):
        model(torch.rand(1, 3, *size))


def test_invalid_options_and_inputs_raise() -> None:
    with pytest.raises(ValueError, match="upsampling must be one of 'bilinear', 'transposed'"):
        UNet(3, upsampling="nearest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="output must be one of"):
        UNet(3, output="relu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="depth must be >= 1"):
        UNet(3, depth=0)
    with pytest.raises(ValueError, match="must have 9 channels; got 3"):
        UNet(9, width=4)(torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize("upsampling", ["bilinear", "transposed"])
def test_every_parameter_receives_a_gradient(upsampling: str) -> None:
    model = UNet(9, 3, width=4, depth=2, upsampling=upsampling)  # type: ignore[arg-type]
    frames = torch.rand(2, 9, 16, 16)
    torch.nn.functional.mse_loss(model(frames), torch.rand(2, 3, 16, 16)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
