"""A U-Net for image-to-image tasks: next-frame prediction (``in = 3k`` stacked past frames) and
colourisation (``in = 1`` luma channel)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from losslab.models._common import (
    OutputActivation,
    check_count,
    check_model_input,
    check_option,
    output_activation,
)
from losslab.models.registry import register_model

Upsampling = Literal["bilinear", "transposed"]


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions with ReLU (no batch norm: results do not depend on batch size)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class _Up(nn.Module):
    """x2 upsampling of ``in_channels`` features to ``out_channels``, concat skip, double conv."""

    def __init__(self, in_channels: int, out_channels: int, upsampling: str) -> None:
        super().__init__()
        if upsampling == "transposed":
            self.up: nn.Module = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, 3, padding=1),
            )
        self.conv = _double_conv(2 * out_channels, out_channels)

    def forward(self, features: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([self.up(features), skip], dim=1))


@register_model("unet")
class UNet(nn.Module):
    """U-Net with ``depth`` max-pool downsamplings, skip connections and x2 upsamplings.

    Level ``i`` (``0..depth``) has ``width * 2**i`` channels and two 3x3 convolutions with ReLU
    (no batch norm); each decoder level upsamples (bilinear + 3x3 convolution, or a 2x2
    transposed convolution), concatenates the encoder's features of the same resolution and
    applies two convolutions. A 1x1 convolution maps to ``out_channels``, then the output
    activation.

    Args:
        in_channels: input channels (``3 * k`` for ``k`` stacked RGB frames, 1 for luma).
        out_channels: output channels (3 for an RGB image; ``K * 3`` for ``K`` hypotheses).
        width: channels of the first level (doubled at each level down).
        depth: number of x2 downsamplings; ``H`` and ``W`` must be divisible by ``2**depth``.
        output: ``"sigmoid"`` (outputs in ``(0, 1)``) or ``"linear"``.
        upsampling: ``"bilinear"`` (no checkerboard artefacts) or ``"transposed"``.

    Shape:
        - input: ``(N, in_channels, H, W)`` with ``H, W`` divisible by ``2**depth``.
        - output: ``(N, out_channels, H, W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 3,
        width: int = 32,
        depth: int = 3,
        output: OutputActivation = "sigmoid",
        upsampling: Upsampling = "bilinear",
    ) -> None:
        super().__init__()
        self.in_channels = check_count("in_channels", in_channels)
        self.out_channels = check_count("out_channels", out_channels)
        self.width = check_count("width", width)
        self.depth = check_count("depth", depth)
        self.output = output
        self.upsampling = check_option("upsampling", upsampling, get_args(Upsampling))
        channels = [width * 2**level for level in range(depth + 1)]

        self.inc = _double_conv(in_channels, channels[0])
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), _double_conv(channels[level - 1], channels[level]))
            for level in range(1, depth + 1)
        )
        self.up = nn.ModuleList(
            _Up(channels[level], channels[level - 1], upsampling) for level in range(depth, 0, -1)
        )
        self.head = nn.Conv2d(channels[0], out_channels, 1)
        self.activation = output_activation(output)

    @classmethod
    def output_channels_for(cls, options: Mapping[str, Any]) -> int:
        """Channels of one output image for constructor ``options`` (used by ``build_model``)."""
        return int(options.get("out_channels", 3))

    @property
    def factor(self) -> int:
        """Total downsampling factor ``2**depth``; ``H`` and ``W`` must be multiples of it."""
        return 2**self.depth

    def forward(self, images: Tensor) -> Tensor:
        """Map ``(N, in_channels, H, W)`` to ``(N, out_channels, H, W)``."""
        check_model_input(images, "UNet", channels=self.in_channels, multiple=self.factor)
        features = self.inc(images)
        skips = [features]
        for down in self.down:
            features = down(features)
            skips.append(features)
        skips.pop()  # the bottom level is the decoder's starting point, not a skip
        for up in self.up:
            features = up(features, skips.pop())
        return self.activation(self.head(features))
