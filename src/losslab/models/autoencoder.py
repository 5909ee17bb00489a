"""A small convolutional autoencoder whose code is an explicit, inspectable tensor.

The seed experiment trains it to reconstruct 32x32 crops with different losses and asks what each
loss lets the reconstruction get wrong; the code is what the image was squeezed through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from losslab.models._common import (
    OutputActivation,
    check_count,
    check_model_input,
    output_activation,
)
from losslab.models.registry import register_model


@register_model("autoencoder", aliases=("conv_autoencoder",))
class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder: ``depth`` strided-conv downsamplings to a ``code_channels`` code.

    Encoder: ``depth`` times a 4x4 convolution with stride 2 (channels ``width * 2**i``,
    LeakyReLU 0.2), then a 3x3 convolution to ``code_channels`` with no activation (the code is
    unconstrained real numbers). Decoder: a 3x3 convolution back to the widest features, then
    ``depth`` 4x4 transposed convolutions with stride 2, the last one to ``out_channels``,
    followed by the output activation. There is no full-resolution hidden layer, which keeps it
    fast on a CPU (about 30 ms for a training step on ``(64, 3, 32, 32)`` with one thread).

    Args:
        in_channels: channels of the input images.
        out_channels: channels of the output; ``None`` means ``in_channels``.
        width: channels after the first downsampling (doubled at each further one).
        depth: number of x2 downsamplings; ``H`` and ``W`` must be divisible by ``2**depth``.
        code_channels: channels of the code.
        output: ``"sigmoid"`` (outputs in ``(0, 1)``) or ``"linear"`` (unconstrained).

    Shape:
        - input: ``(N, in_channels, H, W)`` with ``H, W`` divisible by ``2**depth``.
        - code: ``(N, code_channels, H / 2**depth, W / 2**depth)``.
        - output: ``(N, out_channels, H, W)``.

    Example:
        >>> import torch
        >>> model = ConvAutoencoder(depth=3, code_channels=8)
        >>> model.encode(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 8, 4, 4])
        >>> model.code_size(32, 32)  # 128 numbers for 3072 pixel values: a 24x compression
        128
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int | None = None,
        width: int = 32,
        depth: int = 3,
        code_channels: int = 8,
        output: OutputActivation = "sigmoid",
    ) -> None:
        super().__init__()
        self.in_channels = check_count("in_channels", in_channels)
        self.out_channels = check_count(
            "out_channels", in_channels if out_channels is None else out_channels
        )
        self.width = check_count("width", width)
        self.depth = check_count("depth", depth)
        self.code_channels = check_count("code_channels", code_channels)
        self.output = output
        features = [width * 2**level for level in range(depth)]

        encoder: list[nn.Module] = []
        previous = in_channels
        for channels in features:
            encoder += [nn.Conv2d(previous, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            previous = channels
        encoder.append(nn.Conv2d(previous, code_channels, 3, padding=1))
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = [
            nn.Conv2d(code_channels, features[-1], 3, padding=1),
            nn.LeakyReLU(0.2),
        ]
        for level in reversed(range(depth)):
            target = features[level - 1] if level > 0 else self.out_channels
            decoder.append(nn.ConvTranspose2d(features[level], target, 4, stride=2, padding=1))
            if level > 0:
                decoder.append(nn.LeakyReLU(0.2))
        decoder.append(output_activation(output))
        self.decoder = nn.Sequential(*decoder)

    @classmethod
    def output_channels_for(cls, options: Mapping[str, Any]) -> int:
        """Channels of one output image for constructor ``options`` (used by ``build_model``)."""
        out_channels = options.get("out_channels")
        return int(options.get("in_channels", 3) if out_channels is None else out_channels)

    @property
    def factor(self) -> int:
        """Total downsampling factor ``2**depth``; ``H`` and ``W`` must be multiples of it."""
        return 2**self.depth

    def code_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Shape ``(code_channels, h, w)`` of the code of one ``height x width`` image."""
        if height % self.factor or width % self.factor:
            raise ValueError(
                f"height and width must be divisible by {self.factor} (2**depth); got "
                f"{height}x{width}."
            )
        return (self.code_channels, height // self.factor, width // self.factor)

    def code_size(self, height: int, width: int) -> int:
        """Number of code values for one ``height x width`` image (the bottleneck's size)."""
        channels, rows, columns = self.code_shape(height, width)
        return channels * rows * columns

    def encode(self, images: Tensor) -> Tensor:
        """``(N, in_channels, H, W)`` images -> ``(N, code_channels, H/2**depth, W/2**depth)`` code."""
        check_model_input(images, "ConvAutoencoder", channels=self.in_channels, multiple=self.factor)
        return self.encoder(images)

    def decode(self, code: Tensor) -> Tensor:
        """``(N, code_channels, h, w)`` code -> ``(N, out_channels, h*2**depth, w*2**depth)`` images."""
        check_model_input(code, "ConvAutoencoder", channels=self.code_channels, name="code")
        return self.decoder(code)

    def forward(self, images: Tensor) -> Tensor:
        """Reconstruction ``decode(encode(images))``, shape ``(N, out_channels, H, W)``."""
        return self.decode(self.encode(images))
