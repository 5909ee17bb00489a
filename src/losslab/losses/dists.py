"""DISTS (Ding et al. 2020): structure and texture similarity of VGG16 feature maps.

Both images run through the VGG16 convolutional trunk (torchvision's ``vgg16().features``
layout, ImageNet weights, input normalised with the ImageNet mean/std) in which every max-pool
is replaced by *L2 pooling*: ``sqrt(conv(x^2, g) + 1e-12)`` with the 3 x 3 Hann window
``g = [1/4, 1/2, 1/4]^T [1/4, 1/2, 1/4]``, stride 2, zero padding 1 (the paper's anti-aliased
pooling). Six representations are compared: the input image itself (``[0, 1]`` RGB, 3 channels)
and the outputs of ``relu1_2, relu2_2, relu3_3, relu4_3, relu5_3`` (64, 128, 256, 512, 512
channels), 1475 channels ``x^(k)_i`` in all. Per channel, with global spatial means ``mu``,
variances ``sigma^2`` and the covariance ``sigma_xy`` (population, over the whole map)::

    l(x_i, y_i) = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)            texture (mean) term
    s(x_i, y_i) = (2 sigma_xy + c2) / (sigma_x^2 + sigma_y^2 + c2)       structure term
    DISTS(x, y) = 1 - sum_{k, i} (alpha_ki l(x_ki, y_ki) + beta_ki s(x_ki, y_ki))

with ``c1 = c2 = 1e-6`` and the learned non-negative ``alpha``, ``beta`` normalised so that
all 2 x 1475 of them sum to 1. DISTS is 0 for identical images and about 0.1-0.4 for
distorted photos; it tolerates texture resampling (a grass patch replaced by other grass) more
than pixel losses because the means and variances are global per channel.

Weights, through :mod:`losslab.weights` (never downloaded silently, never random unless asked):
the trunk is ``vgg16-imagenet`` (torchvision's VGG16 IMAGENET1K_V1: DISTS trains only alpha and
beta on a frozen ImageNet VGG16) and alpha/beta are ``dists-alpha-beta`` (the authors'
``weights.pt``), each pinned by its full SHA-256; a missing file raises
:class:`~losslab.weights.WeightsUnavailableError` naming the file and ``losslab weights add``.
``weights="random"`` builds a seeded He-initialised trunk and alpha/beta drawn like the
authors' initialisation (normal, mean 0.1, sd 0.01): NOT perceptual, for offline smoke tests.

Reference:
    K. Ding, K. Ma, S. Wang, E. P. Simoncelli, "Image Quality Assessment: Unifying Structure and
    Texture Similarity", IEEE TPAMI 2020 (arXiv:2004.07728).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losslab.core.validation import Reduction, check_choice, check_reduction, reduce
from losslab.losses.base import Loss
from losslab.losses.frozen import keep_out_of_state_dict
from losslab.losses.perceptual import IMAGENET_MEAN, IMAGENET_STD
from losslab.losses.registry import register_loss
from losslab.weights import WeightsError, load_state_dict_file, resolve_weights_file

logger = logging.getLogger(__name__)

DISTSWeights = Literal["imagenet", "random"]

#: Channels of the six compared representations: the image, relu1_2 .. relu5_3.
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)
#: ``vgg16().features`` index ranges of the five stages (each after the first starts with an
#: L2 pooling in place of the max-pool at the index before it).
_STAGES = ((0, 4), (5, 9), (10, 16), (17, 23), (24, 30))
_C1 = _C2 = 1e-6
_ALTERNATIVE = ("use dists(weights=random) for an offline smoke test (random features, not "
                "DISTS), or a weight-free loss such as ssim")


class L2Pooling(nn.Module):
    """``sqrt(conv(x^2, g) + 1e-12)``: Hann-weighted 3 x 3 L2 pooling, stride 2, zero padding 1.

    Shape: ``(N, C, H, W) -> (N, C, floor((H - 1) / 2) + 1, floor((W - 1) / 2) + 1)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([0.25, 0.5, 0.25])
        window = torch.outer(taps, taps)  # sums to 1
        self.register_buffer("window", window.expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.conv2d(x * x, self.window.to(x.dtype), stride=2, padding=1, groups=x.shape[1])
        return (pooled + 1e-12).sqrt()


def _vgg16_features(weights: DISTSWeights, seed: int) -> nn.Sequential:
    """``vgg16().features[:30]`` with the trunk's weights (ImageNet file or seeded random)."""
    # torchvision.models loads every architecture's module: only when a VGG is built.
    from torchvision.models.vgg import cfgs, make_layers

    with torch.device("meta"):  # no default initialisation: every tensor is set below
        full = make_layers(cfgs["D"], batch_norm=False)
    features = nn.Sequential(*list(full)[:30]).to_empty(device="cpu")
    if weights == "random":
        generator = torch.Generator().manual_seed(int(seed))
        for module in features:
            if isinstance(module, nn.Conv2d):  # torchvision's VGG initialisation, seeded
                fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
                with torch.no_grad():
                    module.weight.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=generator)
                    module.bias.zero_()
    else:
        path = resolve_weights_file("vgg16-imagenet", alternative=_ALTERNATIVE)
        state = load_state_dict_file(path)
        own = features.state_dict()
        picked = {}
        for key, tensor in own.items():
            source = f"features.{key}"
            if source not in state or state[source].shape != tensor.shape:
                found = tuple(state[source].shape) if source in state else "missing"
                raise WeightsError(
                    f"{str(path)!r} is not a torchvision VGG16 state dict: {source!r} is {found}, "
                    f"VGG16 has {tuple(tensor.shape)}. Save one with "
                    "torch.save(torchvision.models.vgg16().state_dict(), path)."
                )
            picked[key] = state[source].float()
        features.load_state_dict(picked)
    for module in features:
        if isinstance(module, nn.ReLU):
            # In place is safe: each ReLU overwrites only its own convolution's output (which
            # that convolution's backward does not need), and the next stage's L2 pooling reads
            # a stage output without modifying it. Out of place cost 20 % more time (measured).
            module.inplace = True
    return features


def _alpha_beta(weights: DISTSWeights, seed: int) -> tuple[Tensor, Tensor]:
    total = sum(DISTS_CHANNELS)
    if weights == "random":
        generator = torch.Generator().manual_seed(int(seed) + 1)
        alpha = 0.1 + 0.01 * torch.randn(total, generator=generator)
        beta = 0.1 + 0.01 * torch.randn(total, generator=generator)
        return alpha, beta
    path = resolve_weights_file("dists-alpha-beta", alternative=_ALTERNATIVE)
    state = load_state_dict_file(path)
    for key in ("alpha", "beta"):
        if key not in state or state[key].numel() != total:
            found = tuple(state[key].shape) if key in state else "missing"
            raise WeightsError(
                f"{str(path)!r} is not DISTS' alpha/beta file: {key!r} is {found}, expected "
                f"{total} values ((1, {total}, 1, 1)). Carry over the authors' weights.pt."
            )
    return state["alpha"].flatten().float(), state["beta"].flatten().float()


class DISTSNetwork(nn.Module):
    """The frozen DISTS trunk (VGG16 with L2 pooling) and its alpha/beta weights.

    Args:
        weights: ``"imagenet"`` (the files ``vgg16-imagenet`` and ``dists-alpha-beta``) or
            ``"random"`` (seeded, for smoke tests).
        seed: seed of the random weights.
    """

    def __init__(self, weights: DISTSWeights = "imagenet", seed: int = 0) -> None:
        super().__init__()
        features = _vgg16_features(weights, seed)
        stages = []
        for index, (start, end) in enumerate(_STAGES):
            layers: list[nn.Module] = [] if index == 0 else [L2Pooling(DISTS_CHANNELS[index])]
            layers.extend(features[i] for i in range(start, end))
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        alpha, beta = _alpha_beta(weights, seed)
        self.register_buffer("alpha", alpha)
        self.register_buffer("beta", beta)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def representations(self, images: Tensor) -> list[Tensor]:
        """The image and the five stage outputs, ``[(N, C_k, H_k, W_k)]`` for :data:`DISTS_CHANNELS`."""
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        result = [images]
        for stage in self.stages:
            x = stage(x)
            result.append(x)
        return result


def dists_distance(network: DISTSNetwork, prediction: Tensor, target: Tensor) -> Tensor:
    """Per-image DISTS ``(N,)`` of two ``(N, 3, H, W)`` batches in ``[0, 1]`` (formula above).

    The target is a reference: its features are computed without a graph. Computed in the
    network's dtype (float64/float16 inputs are cast; gradients flow through the cast).
    """
    dtype = network.alpha.dtype
    predicted = network.representations(prediction.to(dtype))
    with torch.no_grad():
        targeted = network.representations(target.detach().to(dtype))
    normaliser = network.alpha.sum() + network.beta.sum()
    alphas = torch.split(network.alpha / normaliser, DISTS_CHANNELS)
    betas = torch.split(network.beta / normaliser, DISTS_CHANNELS)
    similarity = prediction.new_zeros(prediction.shape[0], dtype=dtype)
    for x, y, alpha, beta in zip(predicted, targeted, alphas, betas, strict=True):
        mean_x, mean_y = x.mean(dim=(2, 3)), y.mean(dim=(2, 3))
        var_x = (x - mean_x[..., None, None]).square().mean(dim=(2, 3))
        var_y = (y - mean_y[..., None, None]).square().mean(dim=(2, 3))
        covariance = (x * y).mean(dim=(2, 3)) - mean_x * mean_y
        texture = (2 * mean_x * mean_y + _C1) / (mean_x.square() + mean_y.square() + _C1)
        structure = (2 * covariance + _C2) / (var_x + var_y + _C2)
        similarity = similarity + (texture * alpha).sum(dim=1) + (structure * beta).sum(dim=1)
    return (1.0 - similarity).to(prediction.dtype)


@register_loss("dists")
class DISTSLoss(Loss):
    """DISTS (Ding et al. 2020): VGG16 structure/texture similarity, ``1 - similarity``.

    See :mod:`losslab.losses.dists` for the formula and where the weights come from.

    Args:
        weights: ``"imagenet"`` (default: torchvision's VGG16 and the authors' alpha/beta, both
            from ``losslab weights``) or ``"random"`` (seeded random trunk and alpha/beta: NOT
            DISTS, for offline smoke tests).
        seed: seed of the random weights (``weights="random"`` only).
        reduction: ``'mean'`` / ``'sum'`` over images, or ``'none'`` for ``(N,)``.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` in ``input_range`` (mapped to ``[0, 1]``).
        - output: scalar, or ``(N,)`` for ``reduction='none'``; 0 for identical images.
    """

    required_channels = 3

    def __init__(
        self,
        weights: DISTSWeights = "imagenet",
        seed: int = 0,
        reduction: Reduction = "mean",
        *,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(input_range=input_range, check_values=check_values)
        self.weights = check_choice("weights", weights, ("imagenet", "random"))
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"dists seed must be an integer such as 0; got {seed!r}.")
        self.seed = seed
        self.reduction = check_reduction(reduction)
        self.network = DISTSNetwork(self.weights, self.seed)  # type: ignore[arg-type]
        # Rebuilt from the weight files (or the seed) on every construction: not checkpointed.
        keep_out_of_state_dict(self, "network")
        if self.weights == "random":
            logger.warning("dists uses a random (seed %d) VGG16 and alpha/beta: NOT DISTS; use "
                           "it only for smoke tests.", self.seed)

    @property
    def term_name(self) -> str:
        explicit = getattr(self, "_term_name", None)
        if explicit:
            return explicit
        return "dists(weights=random)" if self.weights == "random" else self.registered_name

    @term_name.setter
    def term_name(self, value: str) -> None:
        self._term_name = value

    def train(self, mode: bool = True) -> DISTSLoss:
        """Set the owner's mode; the frozen network always stays in eval mode."""
        super().train(mode)
        self.network.eval()
        return self

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        return reduce(dists_distance(self.network, prediction, target), self.reduction)

    def extra_repr(self) -> str:
        return f"weights={self.weights!r}, seed={self.seed}"


__all__ = ["DISTSLoss", "DISTSNetwork", "L2Pooling", "dists_distance"]
