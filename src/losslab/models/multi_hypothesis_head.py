"""Make any image model return ``K`` hypotheses ``(N, K, C, H, W)`` instead of one image.

A loss such as MSE, faced with several plausible targets for one input (the next frame of a
ball that may bounce left or right), is minimised by their mean: a blurred ghost. A model with
``K`` outputs trained with a winner-takes-all loss (see
:mod:`losslab.losses.multi_hypothesis`) can instead place one hypothesis on each mode.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
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


class ScoreHead(nn.Module):
    """``K`` logits per input from a tiny network of its own: which hypothesis will win.

    Two stride-2 3x3 convolutions (``width`` channels, SiLU), a global average pool over the
    image and a linear layer to ``K`` logits. It reads the *model input* (not the hypotheses'
    features), so training it does not change the hypotheses, and the pooling makes its answer
    independent of where in the image things are (it sees what is there: colours, shapes).

    Shape:
        - input: ``(N, in_channels, H, W)``, ``H, W >= 1``.
        - output: ``(N, K)`` logits (unnormalised log-probabilities).
    """

    def __init__(self, in_channels: int, hypotheses: int, width: int = 16) -> None:
        super().__init__()
        self.in_channels = check_count("in_channels", in_channels)
        self.hypotheses = check_count("hypotheses", hypotheses)
        width = check_count("width", width)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.logits = nn.Linear(width, hypotheses)

    def forward(self, inputs: Tensor) -> Tensor:
        if inputs.dim() != 4 or inputs.shape[1] != self.in_channels:
            raise ValueError(f"the score head takes (N, {self.in_channels}, H, W) model inputs; "
                             f"got shape {tuple(inputs.shape)}.")
        return self.logits(self.features(inputs))


class ScoredHypothesisHead(MultiHypothesisHead):
    """A :class:`MultiHypothesisHead` with a :class:`ScoreHead`: a *stochastic* model.

    ``forward`` is unchanged (all ``K`` hypotheses, ``(N, K, C, H, W)``), so evaluation and the
    winner-takes-all loss see every hypothesis; :meth:`scores` gives the head's ``(N, K)`` logits,
    trained (by the trainer) with cross-entropy against each sample's winning hypothesis, so
    ``softmax(scores)`` estimates how often each hypothesis is the right one for this input.
    :meth:`sample` draws one hypothesis per sample with those probabilities: the contract of
    :mod:`losslab.models.stochastic`.

    Args:
        model, hypotheses, channels: as :class:`MultiHypothesisHead`.
        in_channels: channels of the model input (what the score head reads).
        score_width: channels of the score head's convolutions.
    """

    is_stochastic = True

    def __init__(self, model: nn.Module | Callable[..., nn.Module], hypotheses: int,
                 channels: int = 3, *, in_channels: int, score_width: int = 16) -> None:
        super().__init__(model, hypotheses, channels)
        self.score_head = ScoreHead(in_channels, hypotheses, score_width)

    def scores(self, inputs: Tensor) -> Tensor:
        """The score head's logits ``(N, K)`` for model inputs ``(N, C_in, H, W)``."""
        return self.score_head(inputs)

    def probabilities(self, inputs: Tensor) -> Tensor:
        """``softmax(scores)``: ``(N, K)``, rows sum to 1."""
        return torch.softmax(self.scores(inputs).float(), dim=1)

    def sample(self, inputs: Tensor, count: int, generator: torch.Generator | None = None
               ) -> Tensor:
        """``count`` draws per input, each one hypothesis picked with the head's probability:
        ``(N, count, C, H, W)``. ``generator`` (on the inputs' device) makes it reproducible."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a whole number >= 1; got {count!r}.")
        hypotheses = self(inputs)
        index = torch.multinomial(self.probabilities(inputs), count, replacement=True,
                                  generator=generator)  # (N, count)
        rows = torch.arange(hypotheses.shape[0], device=hypotheses.device).unsqueeze(1)
        return hypotheses[rows, index]
