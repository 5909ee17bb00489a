"""Part (b) of ``losslab demo mean``: one input, two equally likely images (a disk left or right).

See :mod:`losslab.demo.mean` for the whole demo and its JSON.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losslab.demo._training import optimise as _optimise
from losslab.demo._training import wta as _wta
from losslab.losses.spec import loss as build_loss
from losslab.metrics.plausibility import psnr_plausible
from losslab.models import MultiHypothesisHead


def _disk(size: int, centre_x: float, radius: float) -> Tensor:
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    distance = torch.sqrt((xs - centre_x) ** 2 + (ys - (size - 1) / 2) ** 2)
    return (radius + 0.5 - distance).clamp(0, 1)  # anti-aliased edge


def _fourier_input(size: int, frequencies: int = 4) -> Tensor:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    channels = [xs, ys]
    for k in range(frequencies):
        for grid in (xs, ys):
            channels += [torch.sin(math.pi * 2**k * grid), torch.cos(math.pi * 2**k * grid)]
    return torch.stack(channels)[None]  # (1, 2 + 4 * frequencies, size, size)


class _TinyConvNet(nn.Module):
    """Three convolutions plus a learnable per-pixel offset, sigmoid output in ``[0, 1]``.

    ``start`` ``(out_channels, S, S)`` initialises the offset so the untrained net outputs about
    ``start`` (a k-means++-style start from training targets); without it the offset is 0.
    """

    def __init__(self, in_channels: int, out_channels: int, start: Tensor, width: int = 16) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, out_channels, 1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)
        self.offset = nn.Parameter(torch.logit(start.clamp(0.1, 0.9)).reshape(out_channels,
                                                                               *start.shape[-2:]))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.body(x) + self.offset)


#: Latent dimensions of the image sampler (a global ``z`` broadcast as extra input channels),
#: its draws per target in training, and how many draws the figure and metrics show.
SAMPLER_LATENT = 4
SAMPLER_DRAWS = 4
SHOWN_SAMPLES = 4
#: The image sampler's default loss: the energy score on random-VGG relu1_2 features. The pixel
#: energy score leaves this sampler at "mean + noise" (docs/losses.md measures why).
SAMPLER_SPEC = "energy_score(features=vgg, layer=relu1_2)"


def sample_images(net: nn.Module, inputs: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """``count`` outputs ``(count, 3, S, S)`` of a noise-input net for one input ``(1, C, S, S)``:
    each with its own ``z ~ N(0, I)`` broadcast over the image."""
    z = torch.randn(count, SAMPLER_LATENT, 1, 1, generator=generator)
    z = z.expand(-1, -1, *inputs.shape[-2:])
    return net(torch.cat([inputs[:1].expand(count, -1, -1, -1), z], dim=1))


def committed_fractions(samples: Tensor, targets: Tensor) -> list[float]:
    """Fraction of ``samples`` ``(M, 3, S, S)`` near each of the ``targets`` ``(K, 3, S, S)``:
    MSE to that target below a quarter of the ghost's (the targets' mean's MSE to target 0,
    i.e. at least 6 dB closer than the mean). ``1 - sum`` is the fraction near none."""
    errors = (samples[:, None] - targets[None]).square().mean(dim=(2, 3, 4))  # (M, K)
    ghost = float((targets.mean(dim=0) - targets[0]).square().mean())
    near = errors.amin(dim=1) < 0.25 * ghost
    return [float(((errors.argmin(dim=1) == k) & near).float().mean())
            for k in range(targets.shape[0])]


def train_image_sampler(spec: str, targets: Tensor, inputs: Tensor, draws: Tensor, start: Tensor,
                        generator: torch.Generator, steps: int) -> nn.Module:
    """A noise-input net trained by the sample-based loss ``spec`` (e.g. ``energy_score``):
    per step, :data:`SAMPLER_DRAWS` draws for each target of ``targets[draws[step]]``."""
    criterion = build_loss(spec)
    if not criterion.sample_based:
        raise ValueError(f"the image sampler needs a sample-based loss (energy_score, crps, "
                         f"kernel_score); got {spec!r}.")
    net = _TinyConvNet(inputs.shape[1] + SAMPLER_LATENT, 3, start)

    def score(step: int) -> Tensor:
        chosen = targets[draws[step]]
        count = chosen.shape[0]
        samples = sample_images(net, inputs, count * SAMPLER_DRAWS, generator)
        return criterion(samples.reshape(count, SAMPLER_DRAWS, *samples.shape[1:]), chosen)

    _optimise(net.parameters(), score, steps, lr=3e-2)
    return net


def run_image_demo(seed: int = 0, *, size: int = 24, steps: int = 150, batch: int = 8,
                   sampler: str | None = SAMPLER_SPEC, sampler_batch: int = 4,
                   sampler_steps: int = 400, evaluated_samples: int = 64) -> dict:
    """One input, two equally likely targets (disk left / right); train MSE, L1, WTA K=2 (part b).

    Each step draws ``batch`` targets, each left or right with probability 1/2 (the input is
    always the same coordinate image), as a data loader over such pairs would.

    Every net starts k-means++-style from training targets (its output about equals the first
    drawn target; WTA's second hypothesis the target farthest from it), because with a single
    input nothing else breaks the symmetry between hypotheses (from identical starts both
    hypotheses stay on the mean). The demo therefore shows which answers are *stable*: MSE and
    L1 leave a valid answer for the mean / an arbitrary value, WTA keeps both answers.

    ``sampler`` (a sample-based loss spec, ``None`` to skip) trains a noise-input net of the
    same architecture (a global 4-d ``z`` as extra input channels) for ``sampler_steps`` steps
    on ``sampler_batch`` targets per step with :data:`SAMPLER_DRAWS` draws each. It starts from
    the ghost (the two targets' mean, where MSE ends), not from one target: started on one
    disk, the samplers tried stayed on it (measured: 55-64 % of draws on the start disk, none on
    the other, for VGG-feature and beta = 0.3 energy scores and a narrow kernel score); from
    the ghost the noise has to break the symmetry. Then
    ``evaluated_samples`` fresh draws are sorted by the target they are near
    (:func:`committed_fractions`): a sampler that reproduces the data puts half near each disk.

    Returns ``{"targets": (2, 3, S, S), "outputs": {"mse": (1, 3, S, S), "l1": ..., "wta":
    (2, 3, S, S)}, "metrics": {method: {"left_centre": [...], "right_centre": [...],
    "error_to_nearest_target": [...]}}}``: intensities at the two disk centres and the MSE of
    each output (each hypothesis for WTA) to its nearest target; with a sampler also
    ``outputs["sampler"]`` (:data:`SHOWN_SAMPLES` draws) and ``"sampler": {"spec",
    "near_target": [left, right], "near_none"}``.
    """
    quarter = size / 4
    left = _disk(size, quarter - 0.5, size / 6)
    right = _disk(size, 3 * quarter - 0.5, size / 6)
    targets = torch.stack([left, right])[:, None].expand(2, 3, size, size).contiguous()
    inputs = _fourier_input(size).expand(batch, -1, -1, -1)
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, 2, (steps, batch), generator=generator)  # same draws for every loss
    first = targets[draws[0, 0]]
    farthest = targets[(targets - first).square().sum(dim=(1, 2, 3)).argmax()]
    outputs: dict[str, Tensor] = {}
    for method in ("mse", "l1"):
        torch.manual_seed(seed)
        net = _TinyConvNet(inputs.shape[1], 3, first)
        distance = F.mse_loss if method == "mse" else F.l1_loss
        _optimise(net.parameters(),
                  lambda step, n=net, d=distance: d(n(inputs), targets[draws[step]]),
                  steps, lr=3e-2)
        with torch.no_grad():
            outputs[method] = net(inputs[:1])
    torch.manual_seed(seed)
    starts = torch.cat([first, farthest])  # (K * 3, S, S)
    head = MultiHypothesisHead(
        lambda out_channels: _TinyConvNet(inputs.shape[1], out_channels, starts), hypotheses=2
    )

    def wta_loss(step: int) -> Tensor:
        hypotheses = head(inputs)  # (B, K, 3, S, S)
        chosen = targets[draws[step]]
        per_hypothesis = (hypotheses - chosen[:, None]).square().mean(dim=(2, 3, 4))
        return _wta(per_hypothesis, step, steps)

    _optimise(head.parameters(), wta_loss, steps, lr=3e-2)
    with torch.no_grad():
        outputs["wta"] = head(inputs[:1])[0]
    sampled: dict | None = None
    if sampler is not None:
        torch.manual_seed(seed)
        sampler_draws = torch.randint(0, 2, (sampler_steps, sampler_batch), generator=generator)
        net = train_image_sampler(sampler, targets, inputs, sampler_draws, targets.mean(dim=0),
                                  generator, sampler_steps)
        with torch.no_grad():
            fresh = sample_images(net, inputs, evaluated_samples,
                                  torch.Generator().manual_seed(seed + 1))
        near = committed_fractions(fresh, targets)
        outputs["sampler"] = fresh[:SHOWN_SAMPLES]
        sampled = {"spec": sampler, "near_target": near, "near_none": 1.0 - sum(near)}
    centre_row = size // 2
    left_col, right_col = round(quarter - 0.5), round(3 * quarter - 0.5)
    metrics = {}
    for method, images in outputs.items():
        errors = (images[:, None] - targets[None]).square().mean(dim=(2, 3, 4)).amin(dim=1)
        metrics[method] = {
            "left_centre": [float(v) for v in images[:, 0, centre_row, left_col]],
            "right_centre": [float(v) for v in images[:, 0, centre_row, right_col]],
            "error_to_nearest_target": [float(v) for v in errors],
            # PSNR (dB) to the nearest of the two plausible targets; None = exactly one of them
            "psnr_plausible": [_finite(psnr_plausible(image[None], targets[None]))
                               for image in images],
        }
    result = {"targets": targets, "outputs": outputs, "metrics": metrics}
    if sampled is not None:
        result["sampler"] = sampled
    return result


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def plot_image_demo(result: dict, path: str | Path) -> Path:
    """Side-by-side PNG: the two targets, the MSE, L1 and both WTA outputs, then the sampler's
    first draws (if it ran)."""
    import matplotlib  # heavy (~0.5 s) and only needed to draw: imported when a figure is drawn

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    panels = [
        ("target A (p=1/2)", result["targets"][0]),
        ("target B (p=1/2)", result["targets"][1]),
        ("MSE output", result["outputs"]["mse"][0]),
        ("L1 output", result["outputs"]["l1"][0]),
        ("WTA hypothesis 1", result["outputs"]["wta"][0]),
        ("WTA hypothesis 2", result["outputs"]["wta"][1]),
    ]
    if "sampler" in result["outputs"]:
        spec = result["sampler"]["spec"].replace(", layer=", ",\nlayer=")
        panels += [(f"{spec}\nsample {k + 1}", image)
                   for k, image in enumerate(result["outputs"]["sampler"])]
    figure, axes = plt.subplots(1, len(panels), figsize=(2.0 * len(panels), 2.5),
                                layout="constrained")
    for ax, (title, image) in zip(axes, panels, strict=True):
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    figure.suptitle("One input, two equally likely targets: MSE draws a ghost of both; "
                    "WTA keeps each sharp; a sampler should draw one sharp disk per sample",
                    fontsize=10)
    figure.savefig(target, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return target

