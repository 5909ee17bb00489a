"""U-Net discriminator with spectral norm (Real-ESRGAN): a real/fake logit for every pixel.

A PatchGAN gives one verdict per 70x70 patch. Real-ESRGAN's discriminator is a U-Net: an encoder
of stride-2 convolutions, then a decoder that upsamples back to full size with skip connections,
so it returns a logit per pixel and can point at a local artifact while still seeing the global
context of its deepest level. Spectral norm on every inner convolution bounds its Lipschitz
constant, which Real-ESRGAN needs to train such a strong discriminator stably.

Layout (``w = width``, ``d = depth``; LeakyReLU(0.2) after every convolution but the head):
``3x3 conv -> w``; ``d`` encoder levels ``4x4 stride-2 SN conv``, channels ``w * 2^i`` (capped at
``8w``); ``d`` decoder levels ``bilinear x2 upsample -> 3x3 SN conv`` to the skip's channels,
plus the skip; two ``3x3 SN convs``; ``3x3 conv -> 1`` logit per pixel.

Example:
    >>> import torch
    >>> disc = UNetDiscriminator(width=8, depth=2)
    >>> disc(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 1, 32, 32])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from losslab.models.discriminators import (
    ResizeMode,
    _check_positive_int,
    register_discriminator,
    resize_condition,
)


class UNetDiscriminator(nn.Module):
    """U-Net discriminator: ``(N, C, H, W)`` -> per-pixel logits ``(N, 1, H, W)``.

    Args:
        in_channels: image channels (unconditional form).
        width: channels of the first convolution (Real-ESRGAN: 64).
        depth: encoder (and decoder) levels, ``>= 1`` (Real-ESRGAN: 3); inputs must be at least
            ``2^depth`` pixels on each side.
        spectral_norm: spectral norm on every convolution but the first and the head.
        conditional: judge ``(image, condition)`` pairs; the condition is resized to the image
            size and concatenated on channels (``image_channels + condition_channels`` in).
        image_channels, condition_channels, resize: of the conditional form.

    Shape:
        - input: ``(N, C, H, W)`` with ``H, W >= 2^depth`` (any size; odd sizes are fine).
        - output: ``(N, 1, H, W)`` raw logits.
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 64,
        depth: int = 3,
        spectral_norm: bool = True,
        *,
        conditional: bool = False,
        image_channels: int | None = None,
        condition_channels: int = 3,
        resize: ResizeMode = "bilinear",
    ) -> None:
        super().__init__()
        self.conditional = bool(conditional)
        self.image_channels = _check_positive_int("image_channels", image_channels or in_channels)
        self.condition_channels = _check_positive_int("condition_channels", condition_channels)
        self.in_channels = self.image_channels + (self.condition_channels if conditional else 0)
        self.width = _check_positive_int("width", width)
        self.depth = _check_positive_int("depth", depth)
        self.resize = resize
        norm = _spectral_norm if spectral_norm else (lambda layer: layer)
        channels = [width * min(2**i, 8) for i in range(depth + 1)]  # per level, 0 = full size
        self.stem = nn.Conv2d(self.in_channels, width, 3, padding=1)
        self.down = nn.ModuleList(
            norm(nn.Conv2d(channels[i], channels[i + 1], 4, stride=2, padding=1, bias=False))
            for i in range(depth)
        )
        self.up = nn.ModuleList(
            norm(nn.Conv2d(channels[i + 1], channels[i], 3, padding=1, bias=False))
            for i in reversed(range(depth))
        )
        self.refine = nn.ModuleList(
            norm(nn.Conv2d(width, width, 3, padding=1, bias=False)) for _ in range(2)
        )
        self.head = nn.Conv2d(width, 1, 3, padding=1)

    @property
    def min_size(self) -> int:
        """Smallest input side (pixels): every encoder level keeps at least one pixel."""
        return 2**self.depth

    def pair(self, image: Tensor, condition: Tensor | None) -> Tensor:
        """The input the network sees: the image, or ``cat([image, resized condition])``."""
        if image.dim() != 4 or image.shape[1] != self.image_channels:
            raise ValueError(f"discriminator input must be (N, {self.image_channels}, H, W); "
                             f"got {tuple(image.shape)}.")
        if min(image.shape[-2:]) < self.min_size:
            raise ValueError(
                f"a U-Net discriminator of depth {self.depth} needs inputs of at least "
                f"{self.min_size}x{self.min_size} pixels; got {image.shape[-2]}x{image.shape[-1]}."
                " Use a smaller depth or larger crops."
            )
        if not self.conditional:
            return image
        if condition is None:
            raise ValueError("a conditional discriminator needs the condition (the model's "
                             "input); got None. Pass condition=model_input.")
        condition = resize_condition(condition, tuple(image.shape[-2:]), self.resize)
        if condition.shape[1] != self.condition_channels:
            raise ValueError(
                f"discriminator built for {self.condition_channels} condition channels got "
                f"{condition.shape[1]}; build it with condition_channels={condition.shape[1]}."
            )
        return torch.cat([image, condition.to(image.dtype)], dim=1)

    def forward_features(
        self, image: Tensor, condition: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        """``(logits (N, 1, H, W), features)``: the decoder's maps, coarse to fine, then the
        two refinement maps (``depth + 2`` maps)."""
        x = F.leaky_relu(self.stem(self.pair(image, condition)), 0.2)
        skips = [x]
        for conv in self.down:
            x = F.leaky_relu(conv(x), 0.2)
            skips.append(x)
        skips.pop()  # the deepest level is x itself
        features = []
        for conv in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = F.leaky_relu(conv(x), 0.2) + skip
            features.append(x)
        for conv in self.refine:
            x = F.leaky_relu(conv(x), 0.2)
            features.append(x)
        return self.head(x), features

    def features(self, image: Tensor, condition: Tensor | None = None) -> list[Tensor]:
        """The decoder and refinement feature maps (for feature matching)."""
        return self.forward_features(image, condition)[1]

    def forward(self, image: Tensor, condition: Tensor | None = None) -> Tensor:
        """Per-pixel logits ``(N, 1, H, W)``."""
        return self.forward_features(image, condition)[0]


register_discriminator("unet_sn", UNetDiscriminator)
register_discriminator("conditional_unet_sn", UNetDiscriminator, conditional=True)
