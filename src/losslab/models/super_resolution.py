"""A small EDSR-style super-resolution network that learns a residual on top of bicubic.

Output range (a deliberate choice): the network adds a learned residual to the bicubic
upsample of its input, so an untrained network already outputs nearly the bicubic image (its
last convolution starts with small weights) and training only has to learn the missing detail. A sigmoid does
not fit this form (it would squash the bicubic image itself), so the default output is linear:
values may overshoot ``[0, 1]`` slightly, like bicubic ringing does, and losslab losses accept a
prediction's small overshoot. ``output="clamp"`` clamps to ``[0, 1]`` (the gradient is zero for
clamped pixels), e.g. for saving images or evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losslab.models._common import check_count, check_model_input, check_option
from losslab.models.registry import register_model

SuperResolutionOutput = Literal["linear", "clamp"]
SUPPORTED_SCALES = (2, 3, 4)
#: The last convolution's default initial weights are scaled by this, so the untrained network
#: is close to bicubic. Not zero: with zero weights, every hypothesis of a multi-hypothesis head
#: would start equal and receive equal updates forever.
TAIL_INIT_SCALE = 0.1


class ResidualBlock(nn.Module):
    """EDSR residual block without batch norm: ``x + conv(relu(conv(x)))``, shape preserved."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, features: Tensor) -> Tensor:
        return features + self.body(features)


@register_model("super_resolution", aliases=("sr", "edsr"))
class SuperResolutionNet(nn.Module):
    """EDSR-like upsampler: ``bicubic(x) + residual(x)`` with pixel-shuffle upsampling.

    Head 3x3 convolution to ``width`` features, ``blocks`` residual blocks (no batch norm) and a
    3x3 convolution with a long skip from the head, then one (convolution to 4x channels,
    ``PixelShuffle(2)``) stage per factor of 2 (a single x3 stage for ``scale=3``), and a last 3x3
    convolution to ``out_channels`` whose initial weights are scaled down by
    ``TAIL_INIT_SCALE``. The result is added to the bicubic
    upsample of the input (repeated ``out_channels / channels`` times when the model produces
    several hypotheses), so the untrained network is close to bicubic interpolation.

    Args:
        scale: upsampling factor, 2, 3 or 4.
        channels: channels of the input (low-resolution) image.
        width: feature channels of the residual body.
        blocks: number of residual blocks.
        out_channels: output channels; ``None`` means ``channels``. Must be a multiple of
            ``channels`` (``K * channels`` for ``K`` hypotheses sharing the bicubic skip).
        output: ``"linear"`` (default; may overshoot ``[0, 1]`` slightly) or ``"clamp"``.

    Shape:
        - input: ``(N, channels, H, W)`` in ``[0, 1]``.
        - output: ``(N, out_channels, scale * H, scale * W)``.
    """

    def __init__(
        self,
        scale: int = 2,
        channels: int = 3,
        width: int = 32,
        blocks: int = 4,
        out_channels: int | None = None,
        output: SuperResolutionOutput = "linear",
    ) -> None:
        super().__init__()
        if isinstance(scale, bool) or scale not in SUPPORTED_SCALES:
            raise ValueError(
                f"scale must be one of {', '.join(map(str, SUPPORTED_SCALES))}; got {scale!r}. "
                "For x8, chain two networks or add a degradation with a supported factor."
            )
        self.scale = int(scale)
        self.channels = check_count("channels", channels)
        self.width = check_count("width", width)
        self.blocks = check_count("blocks", blocks, minimum=0)
        self.out_channels = check_count("out_channels", channels if out_channels is None else out_channels)
        if self.out_channels % channels:
            raise ValueError(
                f"out_channels must be a multiple of channels = {channels} (one bicubic skip per "
                f"output image); got {self.out_channels}."
            )
        self.output = check_option("output", output, get_args(SuperResolutionOutput))

        self.head = nn.Conv2d(channels, width, 3, padding=1)
        self.body = nn.Sequential(
            *(ResidualBlock(width) for _ in range(blocks)), nn.Conv2d(width, width, 3, padding=1)
        )
        stages: list[nn.Module] = []
        for factor in (3,) if scale == 3 else (2,) * (scale // 2):
            stages += [nn.Conv2d(width, width * factor**2, 3, padding=1), nn.PixelShuffle(factor)]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(width, self.out_channels, 3, padding=1)
        with torch.no_grad():  # start near bicubic, but not at it: hypotheses must differ
            self.tail.weight.mul_(TAIL_INIT_SCALE)
            self.tail.bias.zero_()

    @classmethod
    def output_channels_for(cls, options: Mapping[str, Any]) -> int:
        """Channels of one output image for constructor ``options`` (used by ``build_model``)."""
        return int(options.get("channels", 3))

    def forward(self, images: Tensor) -> Tensor:
        """Upsample ``(N, channels, H, W)`` to ``(N, out_channels, scale*H, scale*W)``."""
        check_model_input(images, "SuperResolutionNet", channels=self.channels)
        features = self.head(images)
        features = features + self.body(features)
        residual = self.tail(self.upsample(features))
        bicubic = F.interpolate(images, scale_factor=self.scale, mode="bicubic", align_corners=False)
        repeats = self.out_channels // self.channels
        result = residual + (bicubic.repeat(1, repeats, 1, 1) if repeats > 1 else bicubic)
        return result.clamp(0.0, 1.0) if self.output == "clamp" else result
