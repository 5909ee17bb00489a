"""Tests for losslab.models.autoencoder.ConvAutoencoder."""

from __future__ import annotations

import pytest
import torch

from losslab.models import ConvAutoencoder


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "width", "depth", "code_channels", "size"),
    [
        (3, None, 32, 3, 8, (32, 32)),
        (3, None, 8, 1, 4, (6, 10)),
        (1, 3, 8, 2, 2, (16, 8)),
        (3, 6, 4, 4, 16, (32, 48)),
    ],
)
def test_encode_decode_shapes(
    in_channels: int,
    out_channels: int | None,
    width: int,
    depth: int,
    code_channels: int,
    size: tuple[int, int],
) -> None:
    model = ConvAutoencoder(in_channels, out_channels, width, depth, code_channels)
    images = torch.rand(2, in_channels, *size)
    code = model.encode(images)
    factor = 2**depth
    assert code.shape == (2, code_channels, size[0] // factor, size[1] // factor)
    assert model.code_shape(*size) == tuple(code.shape[1:])
    assert model.code_size(*size) == code[0].numel()
    decoded = model.decode(code)
    expected_channels = in_channels if out_channels is None else out_channels
    assert decoded.shape == (2, expected_channels, *size)
    assert torch.equal(model(images), decoded)


def test_default_code_is_a_24x_bottleneck() -> None:
    model = ConvAutoencoder()
    assert model.code_size(32, 32) == 8 * 4 * 4
    assert 3 * 32 * 32 / model.code_size(32, 32) == 24


def test_sigmoid_output_is_the_sigmoid_of_the_linear_output() -> None:
    torch.manual_seed(3)
    sigmoid_model = ConvAutoencoder(width=8, output="sigmoid")
    torch.manual_seed(3)
    linear_model = ConvAutoencoder(width=8, output="linear")
    images = torch.rand(2, 3, 16, 16)
    linear = linear_model(images)
    squashed = sigmoid_model(images)
    assert torch.allclose(squashed, torch.sigmoid(linear), atol=1e-6)
    assert squashed.min() > 0 and squashed.max() < 1


@pytest.mark.parametrize("size", [(30, 32), (32, 36), (4, 8)])
def test_input_not_divisible_by_two_to_the_depth_raises(size: tuple[int, int]) -> None:
    model = ConvAutoencoder(depth=3)
    with pytest.raises(ValueError, match=r"divisible by 8; got \d+x\d+"):
        model(torch.rand(1, 3, *size))
    with pytest.raises(ValueError, match="divisible by 8"):
        model.code_size(*size)


def test_wrong_channel_counts_raise_clear_errors() -> None:
    model = ConvAutoencoder(in_channels=3, code_channels=8)
    with pytest.raises(ValueError, match="must have 3 channels; got 1"):
        model.encode(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="code must have 8 channels; got 4"):
        model.decode(torch.rand(1, 4, 4, 4))
    with pytest.raises(ValueError, match="4-D"):
        model(torch.rand(3, 32, 32))
    with pytest.raises(TypeError, match="floating point"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"depth": 0}, ValueError, "depth must be >= 1"),
        ({"width": 2.5}, TypeError, "width must be an int"),
        ({"output": "tanh"}, ValueError, "output must be one of 'sigmoid', 'linear'"),
        ({"code_channels": True}, TypeError, "code_channels must be an int"),
    ],
)
def test_invalid_options_raise(options: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ConvAutoencoder(**options)


def test_every_parameter_receives_a_gradient() -> None:
    model = ConvAutoencoder(width=8)
    images = torch.rand(4, 3, 16, 16)
    torch.nn.functional.mse_loss(model(images), images).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_a_few_adam_steps_reduce_the_reconstruction_error() -> None:
    model = ConvAutoencoder(width=8, depth=2)
    # smooth images (bilinear upsamples of 4x4 noise) fit through the 4x4 code
    images = torch.nn.functional.interpolate(torch.rand(4, 3, 4, 4), size=16, mode="bilinear")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(images), images)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.4 * losses[0]
