"""PatchGAN discriminators (pix2pix style) for adversarial and feature-matching loss terms.

A patch discriminator classifies overlapping image patches as real or generated: it is a stack
of strided 4x4 convolutions with LeakyReLU(0.2) and returns a *map* of logits ``(N, 1, h, w)``,
one per receptive-field patch, instead of a single score. ``depth`` stride-2 blocks are followed
by one stride-1 block and a stride-1 1-channel head, as in pix2pix's ``NLayerDiscriminator``.
With ``depth=3`` each logit sees a 70x70 patch; the logit map of a ``H x W`` input is
``(floor(H / 2^depth) - 2) x (floor(W / 2^depth) - 2)``, so inputs must be at least
``3 * 2^depth`` pixels on each side (:attr:`PatchDiscriminator.min_size`).

The conditional variant (:class:`ConditionalPatchDiscriminator`) judges ``(image, condition)``
pairs: the condition (the generator's input, e.g. a low-resolution image for super-resolution,
a grayscale image for colourisation or the stacked past frames for next-frame prediction) is
resized to the image's size when needed and concatenated on channels.

The discriminators take inputs in whatever range they are given; losslab's adversarial term feeds
them ``[-1, 1]`` images.

Example:
    >>> import torch
    >>> disc = build_discriminator("patch", width=16, depth=2)
    >>> disc(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 1, 6, 6])
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from losslab.core.registry import Registry, suggest

Norm = Literal["instance", "batch", "none"]
ResizeMode = Literal["bilinear", "nearest"]

_NORMS = ("instance", "batch", "none")
_RESIZE_MODES = ("bilinear", "nearest")


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    return value


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: image ``(N, C, H, W)`` -> patch logit map ``(N, 1, h, w)``.

    Args:
        in_channels: channels of the input (image channels, plus condition channels for the
            conditional variant).
        width: channels of the first convolution; each stride-2 block doubles them (capped at
            ``8 * width``).
        depth: number of stride-2 blocks (``>= 1``); the receptive field and the minimum input
            size (``3 * 2^depth``) grow with it.
        spectral_norm: wrap every convolution in spectral normalisation (Miyato et al. 2018),
            which bounds the discriminator's Lipschitz constant and usually stabilises training.
        norm: normalisation after every convolution but the first and the head: ``'instance'``
            (pix2pix default), ``'batch'`` or ``'none'`` (usual with spectral norm).

    Shape:
        - input: ``(N, in_channels, H, W)`` with ``H, W >= 3 * 2^depth``.
        - output: ``(N, 1, floor(H / 2^depth) - 2, floor(W / 2^depth) - 2)`` raw logits.
    """

    #: Whether ``forward`` takes ``(image, condition)`` pairs (see :func:`build_discriminator`).
    conditional: bool = False

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 64,
        depth: int = 3,
        spectral_norm: bool = False,
        norm: Norm = "instance",
    ) -> None:
        super().__init__()
        _check_positive_int("in_channels", in_channels)
        _check_positive_int("width", width)
        _check_positive_int("depth", depth)
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {', '.join(map(repr, _NORMS))}; got {norm!r}.")
        self.in_channels = in_channels
        self.width = width
        self.depth = depth
        self.spectral_norm = bool(spectral_norm)
        self.norm = norm

        def conv(c_in: int, c_out: int, stride: int, bias: bool) -> nn.Module:
            layer = nn.Conv2d(c_in, c_out, kernel_size=4, stride=stride, padding=1, bias=bias)
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
            return _spectral_norm(layer) if self.spectral_norm else layer

        # Batch norm has its own shift, so the convolution before it needs no bias.
        normed_bias = norm != "batch"
        blocks: list[nn.Module] = [
            nn.Sequential(conv(in_channels, width, 2, True), nn.LeakyReLU(0.2))
        ]
        channels = width
        for index in range(1, depth + 1):
            out_channels = width * min(2**index, 8)
            stride = 2 if index < depth else 1
            blocks.append(
                nn.Sequential(
                    conv(channels, out_channels, stride, normed_bias),
                    _norm_layer(norm, out_channels),
                    nn.LeakyReLU(0.2),
                )
            )
            channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.head = conv(channels, 1, 1, True)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    @property
    def min_size(self) -> int:
        """Smallest input height/width (pixels) that yields at least a 1x1 logit map."""
        return 3 * 2**self.depth

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"discriminator input must be (N, C, H, W); got {shape}.")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"discriminator built for {self.in_channels} input channels got {x.shape[1]} "
                f"(shape {tuple(x.shape)}); build it with in_channels={x.shape[1]}."
            )
        if min(x.shape[-2:]) < self.min_size:
            raise ValueError(
                f"a patch discriminator of depth {self.depth} needs inputs of at least "
                f"{self.min_size}x{self.min_size} pixels; got {x.shape[-2]}x{x.shape[-1]}. "
                "Use a smaller depth or larger crops."
            )

    def forward_features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """One pass returning ``(logits, features)``: the logit map and every block's output.

        ``features`` holds ``depth + 1`` maps (after each LeakyReLU), from fine to coarse.
        """
        self._check_input(x)
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return self.head(x), features

    def features(self, x: Tensor) -> list[Tensor]:
        """Intermediate feature maps (``depth + 1`` of them) for feature matching."""
        return self.forward_features(x)[1]

    def forward(self, x: Tensor) -> Tensor:
        """Patch logits ``(N, 1, h, w)`` (raw scores; > 0 leans "real" for the usual losses)."""
        return self.forward_features(x)[0]


def resize_condition(condition: Tensor, size: tuple[int, int], mode: ResizeMode = "bilinear") -> Tensor:
    """Bring a condition to the image's spatial ``size``; 5-D clips are stacked on channels.

    ``(N, C, h, w)`` -> ``(N, C, H, W)``; ``(N, T, C, h, w)`` -> ``(N, T*C, H, W)`` (e.g. the
    past frames of next-frame prediction). Unchanged when the size already matches.
    """
    if not isinstance(condition, Tensor) or condition.dim() not in (4, 5):
        shape = tuple(condition.shape) if isinstance(condition, Tensor) else type(condition).__name__
        raise ValueError(
            f"condition must be (N, C, H, W) or a clip (N, T, C, H, W); got {shape}."
        )
    if condition.dim() == 5:
        condition = condition.flatten(1, 2)
    if tuple(condition.shape[-2:]) == tuple(size):
        return condition
    if mode == "bilinear":
        return F.interpolate(condition, size=size, mode="bilinear", align_corners=False)
    return F.interpolate(condition, size=size, mode="nearest")


class ConditionalPatchDiscriminator(PatchDiscriminator):
    """PatchGAN on ``(image, condition)`` pairs: the condition is concatenated on channels.

    Args:
        image_channels: channels of the judged image.
        condition_channels: channels of the condition after stacking (a clip of ``T`` RGB frames
            has ``3 * T``).
        resize: how a condition of another spatial size is brought to the image's size
            (``'bilinear'`` or ``'nearest'``), e.g. the low-resolution input of super-resolution.
        width, depth, spectral_norm, norm: as :class:`PatchDiscriminator`.

    Shape:
        - image: ``(N, image_channels, H, W)``.
        - condition: ``(N, condition_channels, h, w)`` or ``(N, T, C, h, w)`` with ``T*C =
          condition_channels``; any ``h, w``.
        - output: ``(N, 1, floor(H / 2^depth) - 2, floor(W / 2^depth) - 2)``.
    """

    conditional = True

    def __init__(
        self,
        image_channels: int = 3,
        condition_channels: int = 3,
        width: int = 64,
        depth: int = 3,
        spectral_norm: bool = False,
        norm: Norm = "instance",
        resize: ResizeMode = "bilinear",
    ) -> None:
        _check_positive_int("image_channels", image_channels)
        _check_positive_int("condition_channels", condition_channels)
        if resize not in _RESIZE_MODES:
            raise ValueError(f"resize must be 'bilinear' or 'nearest'; got {resize!r}.")
        super().__init__(image_channels + condition_channels, width, depth, spectral_norm, norm)
        self.image_channels = image_channels
        self.condition_channels = condition_channels
        self.resize = resize

    def pair(self, image: Tensor, condition: Tensor | None) -> Tensor:
        """The discriminator's actual input: ``cat([image, resized condition], dim=1)``."""
        if condition is None:
            raise ValueError(
                "a conditional discriminator needs the condition (the model's input); got None. "
                "Pass condition=model_input, or use an unconditional discriminator."
            )
        condition = resize_condition(condition, tuple(image.shape[-2:]), self.resize)
        if condition.shape[0] != image.shape[0]:
            raise ValueError(
                f"condition batch size {condition.shape[0]} differs from the image batch size "
                f"{image.shape[0]}."
            )
        if condition.shape[1] != self.condition_channels:
            raise ValueError(
                f"discriminator built for {self.condition_channels} condition channels got "
                f"{condition.shape[1]}; build it with condition_channels={condition.shape[1]}."
            )
        return torch.cat([image, condition.to(image.dtype)], dim=1)

    def forward_features(  # type: ignore[override]
        self, image: Tensor, condition: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        """``(logits, features)`` of the pair ``(image, condition)``."""
        return super().forward_features(self.pair(image, condition))

    def features(self, image: Tensor, condition: Tensor | None = None) -> list[Tensor]:  # type: ignore[override]
        """Intermediate feature maps of the pair ``(image, condition)``."""
        return self.forward_features(image, condition)[1]

    def forward(self, image: Tensor, condition: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """Patch logits ``(N, 1, h, w)`` for the pair ``(image, condition)``."""
        return self.forward_features(image, condition)[0]


#: Discriminator name -> (class, default constructor options). Every architecture ``x`` has a
#: conditional form registered as ``conditional_x`` (the adversarial term's ``conditional=true``).
#: ``losslab/models/__init__.py`` imports the multi-scale and U-Net modules, which add theirs.
DISCRIMINATORS: Registry[tuple[type[nn.Module], dict[str, Any]]] = Registry("discriminator")
CONDITIONAL_PREFIX = "conditional_"


def register_discriminator(name: str, cls: type[nn.Module], **defaults: Any) -> None:
    """Add a discriminator to the table :func:`build_discriminator` reads (``name`` -> class).

    Other modules (multi-scale, U-Net) register theirs at import; the table imports them the
    first time it is read, so every name is known whatever the caller imported first.
    """
    DISCRIMINATORS.register(name, (cls, dict(defaults)))  # a taken name raises


for _name, _cls, _defaults in (
    ("patch", PatchDiscriminator, {}),
    ("patch_sn", PatchDiscriminator, {"spectral_norm": True, "norm": "none"}),
    ("conditional_patch", ConditionalPatchDiscriminator, {}),
    ("conditional_patch_sn", ConditionalPatchDiscriminator, {"spectral_norm": True, "norm": "none"}),
):
    register_discriminator(_name, _cls, **_defaults)
del _name, _cls, _defaults


def available_discriminators() -> list[str]:
    """Names accepted by :func:`build_discriminator` (architectures and their conditional forms)."""
    return DISCRIMINATORS.names()


def discriminator_architectures() -> list[str]:
    """The architecture names (``disc=`` of the adversarial term): every name without the
    ``conditional_`` prefix."""
    return [n for n in DISCRIMINATORS.names() if not n.startswith(CONDITIONAL_PREFIX)]


def discriminator_name(architecture: str, *, conditional: bool = False) -> str:
    """The registered name of ``architecture`` (``disc=``), or of its conditional form.

    An unknown architecture raises ``ValueError`` with the closest names: ``unknown
    discriminator 'unet'. Did you mean 'unet_sn'? Known discriminators: multiscale, ...``.
    """
    known = discriminator_architectures()
    if architecture not in known:
        raise ValueError(
            f"unknown discriminator {architecture!r}.{suggest(str(architecture), known)} "
            f"Known discriminators: {', '.join(known)} (conditional=true selects the "
            "conditional form)."
        )
    name = f"{CONDITIONAL_PREFIX}{architecture}" if conditional else architecture
    if name not in DISCRIMINATORS:
        raise ValueError(f"discriminator {architecture!r} has no conditional form; use "
                         "conditional=false or another disc.")
    return name


def build_discriminator(name: str = "patch", **options: Any) -> nn.Module:
    """Build a discriminator by name; ``options`` override the name's defaults.

    Names: ``patch`` (instance norm), ``patch_sn`` (spectral norm, no other normalisation),
    ``multiscale`` / ``multiscale_sn`` (the patch D at several image scales, pix2pixHD),
    ``unet_sn`` (U-Net with spectral norm, per-pixel logits, Real-ESRGAN) and their conditional
    forms ``conditional_<name>`` (which take ``image_channels`` and ``condition_channels``
    instead of ``in_channels``). Every discriminator has ``forward_features(x[, condition]) ->
    (logits, features)``, a ``conditional`` flag and a ``min_size``; ``logits`` is one
    ``(N, 1, h, w)`` map, or a list of them (one per scale) for ``multiscale``. An unknown name
    raises ``ValueError`` with the closest names.
    """
    cls, defaults = DISCRIMINATORS.get(name)
    return cls(**{**defaults, **options})
