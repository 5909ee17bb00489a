"""VGG19 feature ("perceptual") loss, with an optional Gram-matrix style term.

The images are normalised with the ImageNet mean/std and run through
``torchvision.models.vgg19().features``, split once into consecutive slices that end at the
requested layers and truncated after the deepest one. For each requested layer ``l`` with
activations ``phi_l`` of shape ``(N, C_l, H_l, W_l)``::

    content = sum_l w_l * mean(d(phi_l(p), phi_l(t)))          d = squared or absolute difference
    style   = sum_l w_l * mean(d(G_l(p), G_l(t)))              G_l = phi_l phi_l^T / (C_l H_l W_l)
    loss    = content + style_weight * style

Scale: every layer's distance is a *mean over its elements* and the layer weights are normalised
to sum to 1, so the value is "the average squared (or absolute) activation difference", independent
of the image size, the batch size and how many layers are requested. ImageNet VGG activations are
O(1)-O(10) (larger in deeper layers), so the value of two different photos is typically O(1)
while ``mse`` on ``[0, 1]`` pixels is O(0.01); a weight of 0.01-0.1 beside a pixel loss
(``"mse + 0.01*perceptual"``) makes it a regulariser of comparable size, not the dominant term.
The Gram matrix is divided by ``C_l H_l W_l`` (the Gatys et al. normalisation) so it stays O(1)
too.

With ``distance="swd"`` the content term compares *distributions* instead of positions: per image
and layer, the sliced Wasserstein distance between the sets of feature vectors (one per pixel of
the feature map), with ``C_l`` fixed random unit directions per layer (as many as channels, as
Heitz et al. 2021; drawn from ``seed``, registered buffers); see :mod:`losslab.losses.swd`.
It works with any weights, ``random`` included, and rewards matching feature statistics, not
pixel-exact alignment. The style (Gram) term needs ``mse`` or ``l1``.

Layer names follow the VGG paper: ``conv{block}_{i}``, ``relu{block}_{i}`` and ``pool{block}``
(blocks 1-5 with 2, 2, 4, 4, 4 convolutions), mapped onto the ``features`` indices
(``relu1_2`` is index 3, ``relu5_4`` index 35).

Weights: ``"imagenet"`` (torchvision's ``VGG19_Weights.IMAGENET1K_V1``, found in the torch hub
cache, see :mod:`losslab.weights`), ``"random"`` (a fixed-seed He initialisation: features that
are NOT perceptual, for offline smoke tests) or a path to a torchvision-format VGG19 state dict
(``features.<i>.weight``/``bias`` keys; other keys are ignored). The frozen VGG is rebuilt from
these on every construction, so it is left out of ``state_dict()`` and checkpoints
(:mod:`losslab.losses.frozen`); resuming a run reads a weights file again, as building the term
always did (evaluation builds no loss and needs none).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losslab.core.registry import suggest
from losslab.core.validation import check_choice
from losslab.losses.base import Loss
from losslab.losses.frozen import keep_out_of_state_dict
from losslab.losses.registry import register_loss
from losslab.losses.swd import random_projections, sliced_wasserstein
from losslab.weights import WeightsError, load_state_dict_file, resolve_weights_file

logger = logging.getLogger(__name__)

Distance = Literal["l1", "mse", "swd"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's VGG19 ("E") configuration: convolutions per block.
_VGG19_BLOCKS = (2, 2, 4, 4, 4)


def _vgg19_layer_names() -> dict[str, int]:
    """Map ``conv1_1``, ``relu1_1``, ..., ``pool5`` onto ``vgg19().features`` indices."""
    names: dict[str, int] = {}
    index = 0
    for block, convs in enumerate(_VGG19_BLOCKS, start=1):
        for i in range(1, convs + 1):
            names[f"conv{block}_{i}"] = index
            names[f"relu{block}_{i}"] = index + 1
            index += 2
        names[f"pool{block}"] = index
        index += 1
    return names


VGG19_LAYERS: dict[str, int] = _vgg19_layer_names()
DEFAULT_LAYERS = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1")


def vgg19_features(
    weights: str = "imagenet", seed: int = 0, last_index: int = len(VGG19_LAYERS) - 1
) -> tuple[nn.Sequential, str]:
    """Build ``torchvision.models.vgg19().features[: last_index + 1]`` with the requested weights.

    Args:
        weights: ``"imagenet"``, ``"random"`` or a path to a torchvision-format VGG19 state dict.
        seed: seed of the random initialisation (``weights="random"`` only). The random weights
            of a layer do not depend on ``last_index`` (layers are drawn in order).
        last_index: index of the last module kept (36 = ``pool5``, the whole ``features``).

    Returns:
        ``(features, description)``: the truncated ``nn.Sequential`` (ReLUs made out-of-place so
        sliced outputs are never overwritten) and a human-readable description of the weights.

    Raises:
        losslab.weights.WeightsUnavailableError: ImageNet weights missing and not downloadable.
        losslab.weights.WeightsError: the state dict lacks VGG19 ``features`` keys or shapes differ.
    """
    # torchvision.models loads every architecture's module: only when a VGG is built.
    from torchvision.models.vgg import cfgs, make_layers

    with torch.device("meta"):  # no default initialisation: every tensor is set below
        full = make_layers(cfgs["E"], batch_norm=False)
    features = nn.Sequential(*list(full)[: last_index + 1]).to_empty(device="cpu")
    if weights == "random":
        generator = torch.Generator().manual_seed(int(seed))
        for module in features:
            if isinstance(module, nn.Conv2d):  # torchvision's VGG initialisation, seeded
                fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
                with torch.no_grad():
                    module.weight.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=generator)
                    module.bias.zero_()
        description = f"random (seed {int(seed)}) — NOT ImageNet"
    else:
        if weights == "imagenet":
            path = resolve_weights_file(
                "vgg19-imagenet",
                alternative="pass weights=random for features that are random, not perceptual "
                "(smoke tests only)",
            )
            description = "imagenet (torchvision VGG19 IMAGENET1K_V1)"
        else:
            path = os.fspath(weights)
            if not os.path.isfile(path):
                raise WeightsError(
                    f"perceptual weights must be 'imagenet', 'random' or the path of a VGG19 state "
                    f"dict file; {weights!r} is none of them (no such file)."
                )
            description = f"file {path}"
        _load_features(features, full, load_state_dict_file(path), str(path))
    for module in features:
        if isinstance(module, nn.ReLU):
            module.inplace = False
    return features, description


def check_vgg19_layers(layers: Sequence[str] | str, owner: str) -> list[str]:
    """``layers`` as a list of distinct VGG19 layer names; a wrong name raises with a hint."""
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError(f"{owner} needs at least one layer, e.g. layers=['relu2_2'].")
    for name in names:
        if name not in VGG19_LAYERS:
            raise ValueError(
                f"unknown VGG19 layer {name!r}.{_layer_hint(name)} Layers are "
                "conv{b}_{i}, relu{b}_{i} (b=1..5; i=1..2 for blocks 1-2, 1..4 for 3-5) and "
                "pool{b}, e.g. relu2_2."
            )
    if len(set(names)) != len(names):
        raise ValueError(f"{owner} layers must be distinct; got {names}.")
    return names


def vgg19_slices(
    layers: Sequence[str], weights: str = "imagenet", seed: int = 0
) -> tuple[nn.ModuleList, str]:
    """Consecutive slices of :func:`vgg19_features` ending at each of ``layers`` (in depth order).

    Running the slices one after the other yields every requested layer from one forward pass;
    the network is truncated after the deepest layer. The slices are frozen and in eval mode.

    Returns:
        ``(slices, description)``: one ``nn.Sequential`` per layer, and the weights' description.
    """
    depth = [VGG19_LAYERS[name] for name in layers]
    if depth != sorted(depth):
        raise ValueError(f"vgg19_slices needs layers in depth order; got {list(layers)}.")
    features, description = vgg19_features(weights, seed, last_index=depth[-1])
    slices, start = [], 0
    for end in depth:
        slices.append(nn.Sequential(*[features[i] for i in range(start, end + 1)]))
        start = end + 1
    result = nn.ModuleList(slices)
    result.requires_grad_(False)
    result.eval()
    return result, description


def _load_features(
    features: nn.Sequential, full: nn.Sequential, state: dict[str, Tensor], source: str
) -> None:
    """Copy ``features.<i>.*`` tensors of a torchvision VGG19 state dict into ``features``.

    Every key and shape of the whole VGG19 ``full`` features is checked (so a VGG16 file, which
    agrees with VGG19 up to ``conv3_3``, is refused), then the truncated ``features`` is loaded.
    """
    prefix = "features."
    own = full.state_dict()
    picked = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    missing = [key for key in own if key not in picked]
    if missing:
        raise WeightsError(
            f"{source!r} is not a torchvision VGG19 state dict: missing {len(missing)} key(s) such "
            f"as 'features.{missing[0]}' (found keys like {list(state)[:3]}). Save one with "
            "torch.save(torchvision.models.vgg19().state_dict(), path)."
        )
    for key, tensor in own.items():
        if picked[key].shape != tensor.shape:
            raise WeightsError(
                f"{source!r}: 'features.{key}' has shape {tuple(picked[key].shape)}, VGG19 expects "
                f"{tuple(tensor.shape)}. Is it a VGG19 (not VGG16 or a batch-norm VGG)?"
            )
    features.load_state_dict({key: picked[key].float() for key in features.state_dict()})


def _layer_hint(name: str) -> str:
    """' Block 2 has relu2_1, relu2_2.' for a wrong index in a real block, else a close match."""
    match = re.fullmatch(r"(conv|relu)([1-5])_\d+", name)
    if match:
        same = [n for n in VGG19_LAYERS if n.startswith(f"{match.group(1)}{match.group(2)}_")]
        return f" Block {match.group(2)} has {', '.join(same)}."
    return suggest(name, list(VGG19_LAYERS))


def gram_matrix(features: Tensor) -> Tensor:
    """Normalised Gram matrix: ``(N, C, H, W) -> (N, C, C)``, ``F F^T / (C H W)``."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


@register_loss("perceptual")
class PerceptualLoss(Loss):
    """VGG19 feature distance at named layers (content), plus an optional Gram-matrix style term.

    Args:
        layers: layer names such as ``relu1_2`` (default: relu1_1, relu1_2, relu2_1, relu2_2,
            relu3_1).
        layer_weights: one non-negative weight per layer (default equal); normalised to sum 1.
        distance: ``"mse"`` (squared, default) or ``"l1"`` (absolute) difference of features,
            or ``"swd"``: sliced Wasserstein distance between the per-image distributions of
            feature vectors (Heitz et al. 2021), ``C_l`` fixed random directions per layer.
        style: weight of the Gram-matrix style term (default 0: off).
        weights: ``"imagenet"`` (default), ``"random"`` or a path to a VGG19 state dict.
        seed: seed of the random weights (``weights="random"`` only).

    Shape:
        - prediction, target: ``(N, 3, H, W)`` in ``input_range`` (mapped to ``[0, 1]``, then
          ImageNet-normalised); ``H, W >= 2**k`` where ``k`` is the number of max-pools up to
          the deepest requested layer (``min_size``; 4 for the default layers).
        - output: scalar (mean over elements per layer, weighted mean over layers).

    Example:
        >>> loss = PerceptualLoss(layers=["relu1_2", "relu2_2"], weights="random")
        >>> loss(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)).shape
        torch.Size([])
    """

    required_channels = 3

    def __init__(
        self,
        layers: Sequence[str] = DEFAULT_LAYERS,
        layer_weights: Sequence[float] | None = None,
        distance: Distance = "mse",
        style: float = 0.0,
        weights: str = "imagenet",
        seed: int = 0,
        *,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(input_range=input_range, check_values=check_values)
        self.layers = check_vgg19_layers(layers, "perceptual")
        if layer_weights is None:
            raw = [1.0] * len(self.layers)
        else:
            raw = [float(w) for w in layer_weights]
            if len(raw) != len(self.layers):
                raise ValueError(
                    f"layer_weights needs one weight per layer: {len(self.layers)} layer(s) "
                    f"{self.layers}, got {len(raw)} weight(s) {raw}."
                )
            if any(not (w >= 0.0) for w in raw) or sum(raw) <= 0.0:
                raise ValueError(f"layer_weights must be >= 0 with a positive sum; got {raw}.")
        self.layer_weights = [w / sum(raw) for w in raw]
        self.distance = check_choice("distance", distance, ("l1", "mse", "swd"))
        if not (float(style) >= 0.0):
            raise ValueError(f"perceptual style weight must be >= 0; got {style}.")
        self.style = float(style)
        if self.style and self.distance == "swd":
            raise ValueError(
                "perceptual(distance=swd) already compares feature distributions; the Gram-matrix "
                "style term needs distance=mse or distance=l1. Drop style= or change distance."
            )
        if not isinstance(weights, (str, os.PathLike)):
            raise TypeError(
                f"weights must be 'imagenet', 'random' or a file path; got {type(weights).__name__}."
            )
        self.weights = os.fspath(weights)
        self.seed = int(seed)

        order = sorted(range(len(self.layers)), key=lambda i: VGG19_LAYERS[self.layers[i]])
        self._depth_order = [self.layers[i] for i in order]
        self._ordered_weights = [self.layer_weights[i] for i in order]
        self.slices, self.weights_description = vgg19_slices(self._depth_order, self.weights,
                                                             self.seed)
        slices = list(self.slices)
        if self.distance == "swd":
            # As many fixed unit directions as the layer has channels (Heitz et al. 2021), drawn
            # in depth order from the seed; buffers, so they follow .to(device) and state_dict.
            generator = torch.Generator().manual_seed(self.seed)
            channels = 3
            for index, block in enumerate(slices):
                for module in block:
                    if isinstance(module, nn.Conv2d):
                        channels = module.out_channels
                self.register_buffer(
                    f"swd_directions_{index}",
                    random_projections(channels, channels, 1, generator=generator),
                )
        self.slices.requires_grad_(False)
        self.slices.eval()
        # Rebuilt from `weights` and `seed` on every construction (the random initialisation is
        # seeded), so checkpoints need not carry it; the SWD directions above are kept.
        keep_out_of_state_dict(self, "slices")
        # Every max-pool halves the size (floor) and needs >= 2 pixels in; convs keep it.
        self.min_size = 2 ** sum(isinstance(m, nn.MaxPool2d) for m in self.slices.modules())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if self.weights == "random":
            message = (
                f"perceptual loss uses {self.weights_description} weights: its features are "
                "random, not perceptual; use it only for smoke tests."
            )
            logger.warning(message)

    # -- naming / mode ----------------------------------------------------------------------
    @property
    def term_name(self) -> str:
        explicit = getattr(self, "_term_name", None)
        if explicit:
            name = explicit
        else:
            options = []
            if list(self.layers) != list(DEFAULT_LAYERS):
                options.append("layers=" + ",".join(self.layers))
            if self.style:
                options.append(f"style={self.style:g}")
            if self.distance != "mse":
                options.append(f"distance={self.distance}")
            name = self.registered_name + (f"({', '.join(options)})" if options else "")
        if self.weights == "random" and "weights=random" not in name:
            name = name[:-1] + ", weights=random)" if name.endswith(")") else name + "(weights=random)"
        return name

    @term_name.setter
    def term_name(self, value: str) -> None:
        self._term_name = value

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Set the owner's mode; the frozen VGG always stays in eval mode."""
        super().train(mode)
        self.slices.eval()
        return self

    # -- computation -----------------------------------------------------------------------
    def features(self, images: Tensor) -> dict[str, Tensor]:
        """VGG19 activations of ``images`` (``(N, 3, H, W)`` in ``[0, 1]``) at each requested layer.

        Returns a dict layer name -> ``(N, C_l, H_l, W_l)``, in depth order.
        """
        # The frozen network has one dtype (float32 unless converted); float64 or float16 inputs
        # are cast to it (gradients flow through the cast) instead of failing inside a conv.
        x = (images.to(self.mean.dtype) - self.mean) / self.std
        result = {}
        for name, block in zip(self._depth_order, self.slices, strict=True):
            x = block(x)
            result[name] = x
        return result

    def _difference(self, a: Tensor, b: Tensor) -> Tensor:
        if self.distance == "mse":
            return F.mse_loss(a, b)
        return F.l1_loss(a, b)

    def _content(self, index: int, a: Tensor, b: Tensor) -> Tensor:
        if self.distance == "swd":
            directions = getattr(self, f"swd_directions_{index}")
            return sliced_wasserstein(a, b, directions).mean()
        return self._difference(a, b)

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        predicted = self.features(prediction)
        with torch.no_grad():
            targeted = self.features(target)
        return self._combine(predicted, targeted, prediction)

    def per_image(self, prediction: Tensor, target: Tensor) -> Tensor:
        """The loss of each image on its own, ``(N,)``, for inputs already in ``[0, 1]``
        (``losslab.functional.perceptual``); their mean is the batch loss (:meth:`compute`)
        up to rounding. One forward pass for the batch, then the same distances per image."""
        predicted = self.features(prediction)
        with torch.no_grad():
            targeted = self.features(target)
        return torch.stack([
            self._combine({name: value[i:i + 1] for name, value in predicted.items()},
                          {name: value[i:i + 1] for name, value in targeted.items()},
                          prediction)
            for i in range(prediction.shape[0])
        ])

    def _combine(self, predicted: dict[str, Tensor], targeted: dict[str, Tensor],
                 prediction: Tensor) -> Tensor:
        """Weighted sum over layers of the content (and style) distances of two feature sets."""
        total = prediction.new_zeros((), dtype=self.mean.dtype)
        for index, (name, weight) in enumerate(
            zip(self._depth_order, self._ordered_weights, strict=True)
        ):
            if weight == 0.0:
                continue
            total = total + weight * self._content(index, predicted[name], targeted[name])
            if self.style:
                style = self._difference(gram_matrix(predicted[name]), gram_matrix(targeted[name]))
                total = total + self.style * weight * style
        return total.to(prediction.dtype)

    def extra_repr(self) -> str:
        return (
            f"layers={self.layers}, layer_weights={[round(w, 4) for w in self.layer_weights]}, "
            f"distance={self.distance!r}, style={self.style:g}, weights={self.weights_description!r}"
        )
