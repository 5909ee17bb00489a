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


def run_image_demo(seed: int = 0, *, size: int = 24, steps: int = 150, batch: int = 8) -> dict:
    """One input, two equally likely targets (disk left / right); train MSE, L1, WTA K=2 (part b).

    Each step draws ``batch`` targets, each left or right with probability 1/2 (the input is
    always the same coordinate image), as a data loader over such pairs would.

    Every net starts k-means++-style from training targets (its output about equals the first
    drawn target; WTA's second hypothesis the target farthest from it), because with a single
    input nothing else breaks the symmetry between hypotheses (from identical starts both
    hypotheses stay on the mean). The demo therefore shows which answers are *stable*: MSE and
    L1 leave a valid answer for the mean / an arbitrary value, WTA keeps both answers.

    Returns ``{"targets": (2, 3, S, S), "outputs": {"mse": (1, 3, S, S), "l1": ..., "wta":
    (2, 3, S, S)}, "metrics": {method: {"left_centre": [...], "right_centre": [...],
    "error_to_nearest_target": [...]}}}``: intensities at the two disk centres and the MSE of
    each output (each hypothesis for WTA) to its nearest target.
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
    return {"targets": targets, "outputs": outputs, "metrics": metrics}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def plot_image_demo(result: dict, path: str | Path) -> Path:
    """Side-by-side PNG: the two targets, then the MSE, L1 and both WTA outputs."""
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
    figure, axes = plt.subplots(1, len(panels), figsize=(2.0 * len(panels), 2.5),
                                layout="constrained")
    for ax, (title, image) in zip(axes, panels, strict=True):
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    figure.suptitle("One input, two equally likely targets: MSE draws a ghost of both; "
                    "WTA keeps each sharp", fontsize=10)
    figure.savefig(target, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return target

