"""Make any image model return ``K`` hypotheses ``(N, K, C, H, W)`` instead of one image.

A loss such as MSE, faced with several plausible targets for one input (the next frame of a
ball that may bounce left or right), is minimised by their mean: a blurred ghost. A model with
``K`` outputs trained with a winner-takes-all loss (see
:mod:`losslab.losses.multi_hypothesis`) can instead place one hypothesis on each mode.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from losslab.models._common import check_count


class MultiHypothesisHead(nn.Module):
    """Wrap a model with ``hypotheses * channels`` output channels; reshape to ``(N, K, C, H, W)``.

    Output channels ``k * channels`` to ``(k + 1) * channels - 1`` of the wrapped model form
    hypothesis ``k``. If the wrapped model has ``encode``/``decode`` (the autoencoder), the
    head exposes them too, ``decode`` returning hypotheses.

    Args:
        model: an ``nn.Module`` whose output is ``(N, hypotheses * channels, H, W)``, or a
            factory called as ``model(out_channels=hypotheses * channels)`` that builds one,
            e.g. ``lambda out_channels: UNet(9, out_channels)``.
        hypotheses: ``K``, the number of hypotheses (``>= 1``).
        channels: ``C``, channels of one hypothesis image (3 for RGB).

    Shape:
        - input: whatever ``model`` takes.
        - output: ``(N, K, C, H, W)``.

    Example:
        >>> import torch
        >>> from losslab.models import UNet
        >>> head = MultiHypothesisHead(UNet(9, out_channels=4 * 3), hypotheses=4)
        >>> head(torch.rand(2, 9, 32, 32)).shape
        torch.Size([2, 4, 3, 32, 32])
    """

    def __init__(
        self,
        model: nn.Module | Callable[..., nn.Module],
        hypotheses: int,
        channels: int = 3,
    ) -> None:
        super().__init__()
        self.hypotheses = check_count("hypotheses", hypotheses)
        self.channels = check_count("channels", channels)
        if not isinstance(model, nn.Module):
            if not callable(model):
                raise TypeError(
                    "model must be an nn.Module or a factory taking out_channels; got "
                    f"{type(model).__name__}."
                )
            model = model(out_channels=hypotheses * channels)
            if not isinstance(model, nn.Module):
                raise TypeError(f"the model factory returned {type(model).__name__}, not an nn.Module.")
        declared = getattr(model, "out_channels", None)
        if isinstance(declared, int) and declared != hypotheses * channels:
            raise ValueError(
                f"the wrapped {type(model).__name__} has out_channels={declared}, but "
                f"{hypotheses} hypotheses of {channels} channels need {hypotheses * channels}. "
                f"Build it with out_channels={hypotheses * channels}, or use "
                "build_model(name, hypotheses=K, ...)."
            )
        self.model = model

    def split(self, output: Tensor) -> Tensor:
        """Reshape a ``(N, K*C, H, W)`` output of the wrapped model to ``(N, K, C, H, W)``."""
        expected = self.hypotheses * self.channels
        if output.dim() != 4 or output.shape[1] != expected:
            raise ValueError(
                f"the wrapped model must return (N, {expected}, H, W) for {self.hypotheses} "
                f"hypotheses of {self.channels} channels; got shape {tuple(output.shape)}. "
                f"Build it with out_channels={expected}."
            )
        return output.unflatten(1, (self.hypotheses, self.channels))

    def forward(self, inputs: Tensor) -> Tensor:
        """The ``K`` hypotheses for ``inputs``: ``(N, K, C, H, W)``."""
        return self.split(self.model(inputs))

    def encode(self, images: Tensor) -> Tensor:
        """The wrapped model's code (only for models with ``encode``, e.g. the autoencoder)."""
        return self._method("encode")(images)

    def decode(self, code: Tensor) -> Tensor:
        """Decode ``code`` into hypotheses ``(N, K, C, H, W)`` (models with ``decode`` only)."""
        return self.split(self._method("decode")(code))

    def _method(self, name: str) -> Callable[[Tensor], Tensor]:
        method = getattr(self.model, name, None)
        if method is None:
            raise TypeError(f"the wrapped {type(self.model).__name__} has no {name}() method.")
        return method
