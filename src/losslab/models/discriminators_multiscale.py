"""Multi-scale PatchGAN (pix2pixHD): the same patch discriminator at 2-3 image scales.

A single PatchGAN sees patches of one size (70x70 px at depth 3): large structures (a whole
object in the wrong place, a colour cast over the image) are invisible to it. pix2pixHD runs
``scales`` discriminators of identical architecture (separate weights) on the image and on
copies downsampled by 2, 4, ...: the coarse ones judge global layout, the fine one texture. The
adversarial term averages its objective over the scales.

Downsampling is a 3x3 average pool with stride 2 (padding 1, padding excluded from the mean),
so an ``H x W`` image becomes ``ceil(H / 2) x ceil(W / 2)``. The conditional form judges
``(image, condition)`` pairs at every scale; each scale's :class:`ConditionalPatchDiscriminator`
resizes the condition to its own image size.

Example:
    >>> import torch
    >>> disc = MultiScaleDiscriminator(scales=2, width=8, depth=2)
    >>> [tuple(m.shape) for m in disc(torch.zeros(2, 3, 48, 48))]
    [(2, 1, 10, 10), (2, 1, 4, 4)]
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from losslab.models.discriminators import (
    ConditionalPatchDiscriminator,
    Norm,
    PatchDiscriminator,
    ResizeMode,
    _check_positive_int,
    register_discriminator,
)


def downsample(images: Tensor) -> Tensor:
    """Halve ``(N, C, H, W)`` -> ``(N, C, ceil(H/2), ceil(W/2))`` with a 3x3 average (pix2pixHD)."""
    return F.avg_pool2d(images, kernel_size=3, stride=2, padding=1, count_include_pad=False)


class MultiScaleDiscriminator(nn.Module):
    """``scales`` patch discriminators, scale ``s`` judging the image downsampled ``s`` times.

    Args:
        scales: number of scales (``>= 1``; pix2pixHD uses 2 or 3). Scale 0 is full size.
        in_channels: image channels (unconditional form).
        width, depth, spectral_norm, norm: of every scale's :class:`PatchDiscriminator`.
        conditional: judge ``(image, condition)`` pairs (:class:`ConditionalPatchDiscriminator`
            at every scale); then ``image_channels`` and ``condition_channels`` are used.
        image_channels, condition_channels, resize: of the conditional discriminators.

    Shape:
        - input: ``(N, C, H, W)`` with ``H, W >= min_size = 3 * 2^depth * 2^(scales - 1)``
          (and a condition ``(N, C', h, w)`` for the conditional form).
        - output: a list of ``scales`` logit maps ``(N, 1, h_s, w_s)``, finest first.
    """

    def __init__(
        self,
        scales: int = 2,
        in_channels: int = 3,
        width: int = 64,
        depth: int = 3,
        spectral_norm: bool = False,
        norm: Norm = "instance",
        *,
        conditional: bool = False,
        image_channels: int | None = None,
        condition_channels: int = 3,
        resize: ResizeMode = "bilinear",
    ) -> None:
        super().__init__()
        self.scales = _check_positive_int("scales", scales)
        self.conditional = bool(conditional)
        self.depth = depth
        discs: list[nn.Module] = []
        for _ in range(scales):
            if self.conditional:
                discs.append(ConditionalPatchDiscriminator(
                    image_channels or in_channels, condition_channels, width, depth,
                    spectral_norm, norm, resize))
            else:
                discs.append(PatchDiscriminator(in_channels, width, depth, spectral_norm, norm))
        self.discriminators = nn.ModuleList(discs)

    @property
    def min_size(self) -> int:
        """Smallest input side (pixels) whose coarsest copy still yields a 1x1 logit map."""
        return 3 * 2**self.depth * 2 ** (self.scales - 1)

    def forward_features(
        self, image: Tensor, condition: Tensor | None = None
    ) -> tuple[list[Tensor], list[Tensor]]:
        """``(logits, features)``: one logit map per scale (finest first) and every scale's
        feature maps, concatenated in the same order (``scales * (depth + 1)`` maps)."""
        if min(image.shape[-2:]) < self.min_size:
            raise ValueError(
                f"a {self.scales}-scale discriminator of depth {self.depth} needs inputs of at "
                f"least {self.min_size}x{self.min_size} pixels; got "
                f"{image.shape[-2]}x{image.shape[-1]}. Use fewer scales, a smaller depth or "
                "larger crops."
            )
        logits: list[Tensor] = []
        features: list[Tensor] = []
        for index, disc in enumerate(self.discriminators):
            if index:
                image = downsample(image)
            scale_logits, scale_features = (disc.forward_features(image, condition)
                                            if self.conditional else disc.forward_features(image))
            logits.append(scale_logits)
            features.extend(scale_features)
        return logits, features

    def features(self, image: Tensor, condition: Tensor | None = None) -> list[Tensor]:
        """Every scale's feature maps (for feature matching)."""
        return self.forward_features(image, condition)[1]

    def forward(self, image: Tensor, condition: Tensor | None = None) -> list[Tensor]:
        """One patch logit map ``(N, 1, h_s, w_s)`` per scale, finest first."""
        return self.forward_features(image, condition)[0]


register_discriminator("multiscale", MultiScaleDiscriminator)
register_discriminator("multiscale_sn", MultiScaleDiscriminator, spectral_norm=True, norm="none")
register_discriminator("conditional_multiscale", MultiScaleDiscriminator, conditional=True)
register_discriminator("conditional_multiscale_sn", MultiScaleDiscriminator, conditional=True,
                       spectral_norm=True, norm="none")
