"""LPIPS (Zhang et al. 2018): the one implementation behind the ``lpips`` loss and metric.

LPIPS runs both images through an ImageNet backbone (AlexNet, VGG16 or SqueezeNet 1.1), unit-
normalises every layer's activations along channels, weights the squared differences per channel
with learned linear heads, averages over space and sums over layers::

    lpips(p, t) = sum_l mean_hw( sum_c w_lc * (phi_l(p)_c / |phi_l(p)| - phi_l(t)_c / |phi_l(t)|)^2 )

The linear heads (v0.1) ship inside the ``lpips`` package; the backbone comes from torchvision's
ImageNet weights, looked up in the torch hub cache (see :mod:`losslab.weights`). A missing
backbone raises :class:`losslab.weights.WeightsUnavailableError` naming the file; the package is
never allowed to download it or to run on a random backbone.

One implementation: :data:`LPIPS_NETS` is the one backbone table (net name, backbone and head
weights in :mod:`losslab.weights`, smallest image side), :func:`build_lpips_model` the one
builder (weights only through :func:`losslab.weights.resolve_weights_file`) and
:func:`lpips_distance` the one forward. The loss :class:`LPIPSLoss` and the metric
:func:`losslab.metrics.lpips` (``metrics.json``) both call them, so a logged ``lpips`` term and a
reported ``lpips`` value are the same number for the same images.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from losslab.core.registry import Registry
from losslab.core.validation import check_choice
from losslab.losses.base import Loss
from losslab.losses.registry import register_loss
from losslab.weights import (
    WeightsError,
    WeightsUnavailableError,
    get_weights_info,
    load_state_dict_file,
    resolve_weights_file,
)

LPIPSNet = Literal["alex", "vgg", "squeeze"]

#: The remedy offered, besides carrying the file in, when a backbone is missing.
_ALTERNATIVE = ("use a loss that needs no pretrained network (e.g. ssim), or "
                "perceptual(weights=random) for an offline smoke test")


@dataclass(frozen=True)
class LPIPSBackbone:
    """One LPIPS variant: its pretrained files and the smallest image it accepts.

    Attributes:
        net: the variant's name in specs and metrics (``"alex"``, ``"vgg"``, ``"squeeze"``).
        backbone_weights: :mod:`losslab.weights` name of the torchvision ImageNet backbone.
        heads_weights: :mod:`losslab.weights` name of the v0.1 linear heads (shipped in lpips).
        min_size: smallest image side in pixels (strided convolutions and pools must not run out).
    """

    net: str
    backbone_weights: str
    heads_weights: str
    min_size: int


#: The one LPIPS backbone table (loss and metric read it).
LPIPS_NETS: Registry[LPIPSBackbone] = Registry("LPIPS backbone")
for _row in (
    LPIPSBackbone("alex", "alexnet-imagenet", "lpips-alex-v0.1", 31),
    LPIPSBackbone("vgg", "vgg16-imagenet", "lpips-vgg-v0.1", 16),
    LPIPSBackbone("squeeze", "squeezenet1_1-imagenet", "lpips-squeeze-v0.1", 17),
):
    LPIPS_NETS.register(_row.net, _row)


def lpips_backbone(net: str) -> LPIPSBackbone:
    """The :data:`LPIPS_NETS` row of ``net``; another name raises ``ValueError`` listing them."""
    check_choice("net", net, LPIPS_NETS.names())
    return LPIPS_NETS.get(net)


def missing_lpips_weights(net: str = "alex") -> str | None:
    """Why LPIPS ``net`` cannot be built here without a download, or ``None`` when it can.

    Checks only that the files exist (no hashing, no loading): cheap enough to ask before every
    evaluation. The reason is :class:`~losslab.weights.WeightsUnavailableError`'s message, which
    names the file, the directory, the hash and the remedy.
    """
    backbone = lpips_backbone(net)
    for name in (backbone.backbone_weights, backbone.heads_weights):
        if not get_weights_info(name).present:
            try:
                resolve_weights_file(name, allow_download=False, alternative=_ALTERNATIVE)
            except WeightsUnavailableError as error:
                return str(error)
    return None


def build_lpips_model(net: str = "alex", *, allow_download: bool | None = None) -> nn.Module:
    """An ``lpips.LPIPS`` model whose heads and backbone come from local files only.

    The model is built with a random backbone (``pnet_rand=True``, so the package never calls
    torchvision's downloader) and the package's v0.1 heads; then the backbone's torchvision
    ImageNet state dict is loaded from the hub cache into it. The result is frozen and in eval.

    Args:
        net: a row of :data:`LPIPS_NETS`.
        allow_download: passed to :func:`~losslab.weights.resolve_weights_file` (``None``
            follows ``$LOSSLAB_OFFLINE``; metrics pass ``False``: measuring never waits for a
            network).

    Raises:
        losslab.weights.WeightsUnavailableError: the backbone file is missing (message names it).
        losslab.weights.WeightsError: the file is not the backbone's state dict.
    """
    import lpips  # the package imports torchvision's model zoo: loaded only when LPIPS is built

    backbone = lpips_backbone(net)
    backbone_path = resolve_weights_file(backbone.backbone_weights, allow_download=allow_download,
                                         alternative=_ALTERNATIVE)
    heads_path = resolve_weights_file(backbone.heads_weights, allow_download=allow_download)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        # torchvision warns that lpips passes the deprecated `pretrained=` argument.
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(
            pretrained=True, net=net, version="0.1", pnet_rand=True, model_path=str(heads_path),
            verbose=False,
        )
    _load_backbone(model.net, load_state_dict_file(backbone_path), str(backbone_path))
    model.requires_grad_(False)
    return model.eval()


def _load_backbone(backbone: nn.Module, state: dict[str, Tensor], source: str) -> None:
    """Load torchvision ``features.<i>.*`` tensors into lpips' ``slice<k>.<i>.*`` modules."""
    mapped = {}
    for key, tensor in backbone.state_dict().items():
        _, rest = key.split(".", 1)  # "slice2.3.weight" -> "3.weight" (the features index)
        source_key = f"features.{rest}"
        if source_key not in state:
            raise WeightsError(
                f"{source!r} lacks {source_key!r}: not the torchvision state dict this LPIPS "
                f"backbone needs (found keys like {list(state)[:3]})."
            )
        if state[source_key].shape != tensor.shape:
            raise WeightsError(
                f"{source!r}: {source_key!r} has shape {tuple(state[source_key].shape)}, "
                f"expected {tuple(tensor.shape)}."
            )
        mapped[key] = state[source_key].float()
    backbone.load_state_dict(mapped)


def lpips_distance(model: nn.Module, prediction: Tensor, target: Tensor) -> Tensor:
    """Per-image LPIPS distance ``(N,)`` of two batches in ``[0, 1]`` under ``model``.

    The one forward of the ``lpips`` loss and metric: maps ``[0, 1]`` to the ``[-1, 1]`` LPIPS
    expects and casts to the frozen network's dtype (float64/float16 inputs; gradients flow
    through the cast). The target is detached (it is a reference, never optimised).

    Shape:
        - model: :func:`build_lpips_model`'s output.
        - prediction, target: ``(N, 3, H, W)`` in ``[0, 1]``, at least the backbone's
          :attr:`LPIPSBackbone.min_size` a side.
        - returns ``(N,)`` in the prediction's dtype, 0 for identical images (typically 0-0.8).
    """
    dtype = next(model.parameters()).dtype
    distances = model(prediction.to(dtype) * 2.0 - 1.0, target.detach().to(dtype) * 2.0 - 1.0)
    return distances.flatten().to(prediction.dtype)


@register_loss("lpips", positional=("net",))
class LPIPSLoss(Loss):
    """LPIPS learned perceptual distance (v0.1 heads, ImageNet backbone); 0 for equal images.

    Args:
        net: backbone, ``"alex"`` (default, the paper's recommended loss), ``"vgg"`` or
            ``"squeeze"``.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` in ``input_range`` (mapped to ``[0, 1]``, then to
          ``[-1, 1]`` as LPIPS expects); at least the backbone's ``min_size`` (:data:`LPIPS_NETS`:
          31 px for alex, 16 for vgg, 17 for squeeze).
        - output: scalar, the batch mean of the per-image LPIPS distance (typically 0-0.8).
    """

    required_channels = 3

    def __init__(
        self,
        net: LPIPSNet = "alex",
        *,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(input_range=input_range, check_values=check_values)
        self.net = lpips_backbone(net).net
        self.min_size = LPIPS_NETS.get(self.net).min_size
        self.model = build_lpips_model(self.net)

    @property
    def term_name(self) -> str:
        explicit = getattr(self, "_term_name", None)
        if explicit:
            return explicit
        return self.registered_name if self.net == "alex" else f"lpips({self.net})"

    @term_name.setter
    def term_name(self, value: str) -> None:
        self._term_name = value

    def train(self, mode: bool = True) -> LPIPSLoss:
        """Set the owner's mode; the LPIPS network always stays in eval (no dropout)."""
        super().train(mode)
        self.model.eval()
        return self

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        return lpips_distance(self.model, prediction, target).mean()

    def extra_repr(self) -> str:
        return f"net={self.net!r}"

