"""Latent-variable models: a task network that draws a different plausible output per ``z``.

A network trained with a pixel loss on an ambiguous target returns the mean of the plausible
answers. :class:`LatentModel` feeds the task network a global latent vector ``z`` beside its
input, so that one input has many outputs: ``forward(inputs, z)`` decodes one, and with
``z ~ N(0, I)`` (:meth:`LatentModel.sample`) the model *samples*. It keeps the contract of
:mod:`losslab.models.stochastic` (``is_stochastic = True``, ``sample(inputs, count, generator)``).

It is trained in one of two ways (``latent: {mode: ...}`` in the training config):

- ``cvae``: a conditional VAE in the style of SVG-LP (Denton & Fergus 2018). A
  :class:`PosteriorEncoder` ``q(z | input, target)`` (owned by the trainer, not part of the
  evaluated model) encodes the true answer into ``z``; the network decodes ``(input, z)`` under
  the run's loss; ``KL(q || N(0, I))`` keeps ``q`` close to the prior, so that at test time
  ``z ~ N(0, I)`` decodes plausible answers. The KL divergence and its free bits are here
  (:func:`gaussian_kl`, :func:`kl_with_free_bits`), the schedule in the trainer.
- ``noise``: the same model is a noise-input generator, trained on ``m`` draws of ``z`` per input
  by a sample-based loss (a proper scoring rule such as the energy score).

Injection of ``z`` (``injection``):

- ``broadcast``: ``z`` is tiled to the input's height and width and concatenated to the input as
  ``dim`` extra channels (the network is built with ``in_channels + dim`` input channels). Works
  for any network; every convolution of the first layer sees ``z`` everywhere.
- ``film``: feature-wise linear modulation (Perez et al. 2018). After each modulated block, its
  features ``h`` of ``C`` channels become ``h * (1 + gamma(z)) + beta(z)`` with ``gamma, beta =
  Linear(z)`` per channel (initialised at zero, so training starts from the plain network). The
  modulated blocks are named submodules (``film_layers``); the default, for the U-Net, is its
  encoder levels (``inc`` and every ``down.i``), which the decoder sees both through the
  bottleneck and through the skip connections; for the super-resolution net, its ``head`` and
  residual blocks (low resolution, before the upsampling). Each named block is replaced by a :class:`FiLMBlock`
  wrapping it, so the network's code is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losslab.models._common import check_count, check_option

Injection = Literal["broadcast", "film"]
INJECTIONS: tuple[str, ...] = get_args(Injection)


def prior_noise(count: int, dim: int, *, device: torch.device | str, dtype: torch.dtype = torch.float32,
                generator: torch.Generator | None = None) -> Tensor:
    """``count`` draws of ``z ~ N(0, I)`` of ``dim`` dimensions, ``(count, dim)``."""
    return torch.randn(count, dim, device=device, dtype=dtype, generator=generator)


class LatentModel(nn.Module):
    """A task network with a global latent ``z`` of ``dim`` dimensions (see the module docstring).

    Args:
        network: the task network. With ``broadcast`` it must take ``in_channels + dim`` input
            channels (build it so; :func:`losslab.train.module.build_network` does); with
            ``film`` it takes ``in_channels`` and the blocks named in ``film_layers`` are
            modulated.
        dim: dimensions of ``z`` (``>= 1``).
        in_channels: channels of the task input (without ``z``).
        injection: ``broadcast`` or ``film``.
        film_layers: names of the submodules of ``network`` whose outputs FiLM modulates
            (``film`` only); ``None`` = ``inc`` and every ``down.i`` (the U-Net's encoder levels).

    Shape:
        - ``inputs``: ``(N, in_channels, H, W)``; ``z``: ``(N, dim)``.
        - output: the network's output for one ``z`` per input, ``(N, C, H, W)``.

    Example:
        >>> from losslab.models import UNet
        >>> model = LatentModel(UNet(3 + 8, 3, width=8, depth=2), dim=8, in_channels=3)
        >>> model.sample(torch.rand(2, 3, 16, 16), 5).shape
        torch.Size([2, 5, 3, 16, 16])
    """

    is_stochastic = True

    def __init__(self, network: nn.Module, dim: int, in_channels: int,
                 injection: Injection = "broadcast",
                 film_layers: Sequence[str] | None = None) -> None:
        super().__init__()
        self.network = network
        self.dim = check_count("latent dim", dim)
        self.in_channels = check_count("in_channels", in_channels)
        self.injection = check_option("injection", injection, INJECTIONS)
        self.film_layers: list[str] = []
        if injection == "film":
            for name in film_layers if film_layers is not None else _default_film_layers(network):
                block = _submodule(network, name)
                parent_name, _, leaf = name.rpartition(".")
                parent = network.get_submodule(parent_name) if parent_name else network
                setattr(parent, leaf, FiLMBlock(block, dim, _output_channels(block, name)))
                self.film_layers.append(name)
        elif film_layers is not None:
            raise ValueError("film_layers applies to injection 'film' only; drop it or set "
                             "injection: film.")

    @property
    def out_channels(self) -> int | None:
        """The wrapped network's output channels (when it declares them)."""
        value = getattr(self.network, "out_channels", None)
        return value if isinstance(value, int) else None

    def forward(self, inputs: Tensor, z: Tensor | None = None) -> Tensor:
        """Decode ``inputs`` ``(N, in_channels, H, W)`` with ``z`` ``(N, dim)``; ``z=None``
        draws ``z ~ N(0, I)`` from torch's global generator (use :meth:`sample` with a
        generator for reproducible draws)."""
        if inputs.dim() != 4 or inputs.shape[1] != self.in_channels:
            raise ValueError(f"LatentModel input must be (N, {self.in_channels}, H, W); got shape "
                             f"{tuple(inputs.shape)}.")
        if z is None:
            z = prior_noise(inputs.shape[0], self.dim, device=inputs.device, dtype=inputs.dtype)
        if z.dim() != 2 or z.shape != (inputs.shape[0], self.dim):
            raise ValueError(f"z must be ({inputs.shape[0]}, {self.dim}) for {inputs.shape[0]} "
                             f"inputs of a {self.dim}-dim latent; got shape {tuple(z.shape)}.")
        z = z.to(inputs.dtype)
        if self.injection == "broadcast":
            tiled = z[:, :, None, None].expand(-1, -1, *inputs.shape[-2:])
            return self.network(torch.cat([inputs, tiled], dim=1))
        blocks = [m for m in self.network.modules() if isinstance(m, FiLMBlock)]
        for block in blocks:
            block.z = z
        try:
            return self.network(inputs)
        finally:
            for block in blocks:
                block.z = None

    def sample(self, inputs: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
        """``count`` outputs per input with ``z ~ N(0, I)``: ``(N, count, C, H, W)``.

        ``generator`` (on the inputs' device) makes the draws reproducible; draw ``j`` of input
        ``i`` uses row ``i * count + j`` of one ``(N * count, dim)`` draw.
        """
        count = check_count("count", count)
        n = inputs.shape[0]
        z = prior_noise(n * count, self.dim, device=inputs.device, dtype=inputs.dtype,
                        generator=generator)
        outputs = self(inputs.repeat_interleave(count, dim=0), z)
        return outputs.unflatten(0, (n, count))



class FiLMBlock(nn.Module):
    """A block whose output ``h`` (``(N, C, H, W)``) is modulated by ``z``:
    ``h * (1 + gamma(z)) + beta(z)``, ``(gamma, beta) = Linear(z)`` per channel, zero at init.

    :class:`LatentModel` sets :attr:`z` ``(N, dim)`` for the duration of its forward pass (a
    plain attribute, not a hook, so copies such as the EMA model carry their own).
    """

    def __init__(self, block: nn.Module, dim: int, channels: int) -> None:
        super().__init__()
        self.block = block
        self.modulation = nn.Linear(dim, 2 * channels)
        nn.init.zeros_(self.modulation.weight)  # start as the plain network: gamma = beta = 0
        nn.init.zeros_(self.modulation.bias)
        self.z: Tensor | None = None

    def forward(self, *args: Any) -> Tensor:
        if self.z is None:
            raise RuntimeError("a FiLM-modulated block ran outside LatentModel.forward; call the "
                               "LatentModel, not its network.")
        output = self.block(*args)
        gamma, beta = self.modulation(self.z)[:, :, None, None].chunk(2, dim=1)
        return output * (1 + gamma) + beta


def _default_film_layers(network: nn.Module) -> list[str]:
    """The U-Net's encoder levels (``inc``, ``down.i``); the super-resolution net's ``head`` and
    residual blocks (``body.i`` but its last convolution)."""
    names = dict(network.named_children())
    if "inc" in names and "down" in names:
        return ["inc", *(f"down.{i}" for i in range(len(names["down"])))]  # type: ignore[arg-type]
    if "head" in names and "body" in names:
        return ["head", *(f"body.{i}" for i in range(len(names["body"]) - 1))]  # type: ignore[arg-type]
    raise ValueError(f"{type(network).__name__} has no 'inc'/'down' blocks (the U-Net's), so FiLM "
                     "needs film_layers: the names of the blocks to modulate (see "
                     "network.named_modules()), or use injection: broadcast.")


def _submodule(network: nn.Module, name: str) -> nn.Module:
    try:
        return network.get_submodule(name)
    except AttributeError:
        known = [n for n, _ in network.named_modules() if n][:20]
        raise ValueError(f"FiLM layer {name!r} is not a submodule of {type(network).__name__}; "
                         f"names include: {', '.join(known)}.") from None


def _output_channels(module: nn.Module, name: str) -> int:
    """Channels of the block's output: the last convolution's ``out_channels`` inside it."""
    convolutions = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if not convolutions:
        raise ValueError(f"FiLM layer {name!r} holds no convolution, so its channel count is "
                         "unknown; name a block that ends in a convolution.")
    return int(convolutions[-1].out_channels)


class PosteriorEncoder(nn.Module):
    """``q(z | input, target)``: a small conv net giving the mean and log-variance of ``z``.

    The input is resized (bilinear) to the target's size and stacked with the target on
    channels; ``levels`` stride-2 3x3 convolutions with ReLU (``width * 2**i`` channels) see a
    neighbourhood of ``2**(levels + 1) - 1`` pixels, enough to tell where the target moved; mean-
    and max-pooling over space and a linear layer give ``(mean, log_variance)`` of a diagonal
    Gaussian. The linear layer starts at zero: ``q = N(0, I)``, the prior, at step 0.

    Args:
        input_channels: channels of the task input.
        target_channels: channels of the target (3 for RGB).
        dim: dimensions of ``z``.
        width: channels of the first level.
        levels: stride-2 convolutions.

    Shape:
        - ``inputs``: ``(N, input_channels, h, w)``; ``target``: ``(N, target_channels, H, W)``.
        - output: ``(mean, log_variance)``, each ``(N, dim)``.
    """

    def __init__(self, input_channels: int, target_channels: int, dim: int, width: int = 16,
                 levels: int = 4) -> None:
        super().__init__()
        check_count("input_channels", input_channels)
        check_count("target_channels", target_channels)
        self.dim = check_count("latent dim", dim)
        check_count("posterior width", width)
        check_count("posterior levels", levels)
        layers: list[nn.Module] = []
        previous = input_channels + target_channels
        for level in range(levels):
            channels = width * 2**level
            layers += [nn.Conv2d(previous, channels, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            previous = channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * previous, 2 * dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, inputs: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, log_variance)`` of ``q(z | inputs, target)``, each ``(N, dim)``."""
        if inputs.shape[-2:] != target.shape[-2:]:
            inputs = F.interpolate(inputs, size=target.shape[-2:], mode="bilinear",
                                   align_corners=False)
        features = self.features(torch.cat([inputs, target.to(inputs.dtype)], dim=1))
        pooled = torch.cat([features.mean(dim=(-2, -1)), features.amax(dim=(-2, -1))], dim=1)
        mean, log_variance = self.head(pooled).chunk(2, dim=1)
        return mean, log_variance


def gaussian_kl(mean: Tensor, log_variance: Tensor) -> Tensor:
    """``KL(N(mean, exp(log_variance)) || N(0, 1))`` per dimension, averaged over the batch.

    Closed form per dimension: ``0.5 * (mean**2 + exp(log_variance) - 1 - log_variance)`` nats.

    Shape:
        - ``mean``, ``log_variance``: ``(N, dim)``.
        - output: ``(dim,)``, nats per dimension (sum it for the KL of ``z``).
    """
    per_item = 0.5 * (mean.pow(2) + log_variance.exp() - 1.0 - log_variance)
    return per_item.mean(dim=0)


def kl_with_free_bits(kl_per_dim: Tensor, free_bits: float) -> Tensor:
    """The KL term with free bits (Kingma et al. 2016): ``sum_d max(KL_d, free_bits)``.

    Below ``free_bits`` nats a dimension's KL costs a constant (no gradient), so the optimiser
    has no reason to push it to 0: the posterior keeps that much information per dimension.
    ``free_bits = 0`` is the plain KL.

    Shape: ``kl_per_dim`` ``(dim,)`` (batch-averaged, :func:`gaussian_kl`) -> scalar, nats.
    """
    if free_bits < 0:
        raise ValueError(f"free_bits must be >= 0 nats per dimension; got {free_bits}.")
    if free_bits == 0:
        return kl_per_dim.sum()
    return torch.clamp(kl_per_dim, min=free_bits).sum()


def reparameterise(mean: Tensor, log_variance: Tensor,
                   generator: torch.Generator | None = None) -> Tensor:
    """A draw ``z = mean + exp(log_variance / 2) * eps``, ``eps ~ N(0, I)`` (differentiable in
    ``mean`` and ``log_variance``); ``(N, dim)``."""
    eps = torch.randn(mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
    return mean + (0.5 * log_variance).exp() * eps


__all__ = ["INJECTIONS", "FiLMBlock", "LatentModel", "PosteriorEncoder", "gaussian_kl", "kl_with_free_bits",
           "prior_noise", "reparameterise"]
