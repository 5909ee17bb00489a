"""LPIPS (Zhang et al. 2018) as a loss term, through the ``lpips`` package, loaded offline.

LPIPS runs both images through an ImageNet backbone (AlexNet, VGG16 or SqueezeNet 1.1), unit-
normalises every layer's activations along channels, weights the squared differences per channel
with learned linear heads, averages over space and sums over layers::

    lpips(p, t) = sum_l mean_hw( sum_c w_lc * (phi_l(p)_c / |phi_l(p)| - phi_l(t)_c / |phi_l(t)|)^2 )

The linear heads (v0.1) ship inside the ``lpips`` package; the backbone comes from torchvision's
ImageNet weights, looked up in the torch hub cache (see :mod:`losslab.weights`). A missing
backbone raises :class:`losslab.weights.WeightsUnavailableError` naming the file; the package is
never allowed to download it or to run on a random backbone. The frozen network is left out of
``state_dict()`` and checkpoints (:mod:`losslab.losses.frozen`): it is rebuilt from the same files.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterable
from typing import Literal

from torch import Tensor, nn

from losslab.core.validation import check_choice
from losslab.losses.base import Loss
from losslab.losses.frozen import keep_out_of_state_dict
from losslab.losses.registry import register_loss
from losslab.weights import (
    LPIPS_BACKBONES,
    WeightsError,
    load_state_dict_file,
    resolve_weights_file,
)

LPIPSNet = Literal["alex", "vgg", "squeeze"]

#: Smallest input side each backbone accepts (strided convolutions and pools must not run out).
MIN_SIZE = {"alex": 31, "vgg": 16, "squeeze": 17}


def build_lpips_model(net: str = "alex") -> nn.Module:
    """An ``lpips.LPIPS`` model whose heads and backbone come from local files only.

    The model is built with a random backbone (``pnet_rand=True``, so the package never calls
    torchvision's downloader) and the package's v0.1 heads; then the backbone's torchvision
    ImageNet state dict is loaded from the hub cache into it. The result is frozen and in eval.

    Raises:
        losslab.weights.WeightsUnavailableError: the backbone file is missing (message names it).
    """
    import lpips

    check_choice("net", net, tuple(LPIPS_BACKBONES))
    backbone_path = resolve_weights_file(
        LPIPS_BACKBONES[net],
        alternative="use a loss that needs no pretrained network (e.g. ssim), or "
        "perceptual(weights=random) for an offline smoke test",
    )
    heads_path = resolve_weights_file(f"lpips-{net}-v0.1")
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


@register_loss("lpips", positional=("net",))
class LPIPSLoss(Loss):
    """LPIPS learned perceptual distance (v0.1 heads, ImageNet backbone); 0 for equal images.

    Args:
        net: backbone, ``"alex"`` (default, the paper's recommended loss), ``"vgg"`` or
            ``"squeeze"``.

    Shape:
        - prediction, target: ``(N, 3, H, W)`` in ``input_range`` (mapped to ``[0, 1]``, then to
          ``[-1, 1]`` as LPIPS expects); at least :data:`MIN_SIZE` pixels a side (31 for
          alex, 16 for vgg, 17 for squeeze).
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
        self.net = check_choice("net", net, tuple(LPIPS_BACKBONES))
        self.min_size = MIN_SIZE[self.net]
        self.model = build_lpips_model(self.net)
        # Backbone and heads are read from their files on every construction: not checkpointed.
        keep_out_of_state_dict(self, "model")

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
        # The frozen network has one dtype: float64/float16 inputs are cast to it (gradients
        # flow through the cast) and the value is returned in the inputs' dtype.
        dtype = next(self.model.parameters()).dtype
        distances = self.model(prediction.to(dtype) * 2.0 - 1.0,
                               target.detach().to(dtype) * 2.0 - 1.0)
        return distances.mean().to(prediction.dtype)

    def extra_repr(self) -> str:
        return f"net={self.net!r}"

