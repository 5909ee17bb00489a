"""Part (a) of ``losslab demo mean``: one input, a 1-D mixture of three Gaussians as targets.

See :mod:`losslab.demo.mean` for the whole demo and its JSON.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn

from losslab.demo._training import optimise as _optimise
from losslab.demo._training import wta as _wta

MIXTURE_MODES = (-3.0, 0.5, 3.5)
MIXTURE_WEIGHTS = (0.45, 0.35, 0.2)
MIXTURE_STD = 0.4


def sample_mixture(count: int, generator: torch.Generator) -> Tensor:
    """``count`` samples ``(count,)`` of the 3-Gaussian mixture (see the module docstring)."""
    component = torch.multinomial(torch.tensor(MIXTURE_WEIGHTS), count, replacement=True,
                                  generator=generator)
    means = torch.tensor(MIXTURE_MODES)[component]
    return means + MIXTURE_STD * torch.randn(count, generator=generator)


def run_one_dimensional_demo(seed: int = 0, *, samples: int = 4000, steps: int = 300) -> dict:
    """Train MSE, MAE, WTA (K=3) and MDN (K=3) predictors on one constant input (part a).

    Returns ``{"sample": {...}, "predictions": {...}, "mdn_weights": [...], "targets": Tensor}``
    (see the module docstring); every predictor starts near the sample mean.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    targets = sample_mixture(samples, generator)
    mean, std = float(targets.mean()), float(targets.std())
    start = mean + std * torch.tensor([-0.5, 0.0, 0.5])

    mse = nn.Parameter(torch.tensor(mean + 0.5 * std))
    _optimise([mse], lambda step: (targets - mse).square().mean(), steps, lr=0.1)
    mae = nn.Parameter(torch.tensor(mean + 0.5 * std))
    _optimise([mae], lambda step: (targets - mae).abs().mean(), steps, lr=0.1)

    hypotheses = nn.Parameter(start.clone())
    _optimise(
        [hypotheses],
        lambda step: _wta((targets[:, None] - hypotheses[None]).square(), step, steps),
        steps, lr=0.1,
    )

    logits = nn.Parameter(torch.zeros(3))
    centres = nn.Parameter(start.clone())
    log_sigma = nn.Parameter(torch.full((3,), math.log(std / 2)))

    def nll(step: int) -> Tensor:
        log_weights = torch.log_softmax(logits, dim=0)
        sigma = log_sigma.exp()
        log_density = (
            -0.5 * ((targets[:, None] - centres[None]) / sigma).square()
            - log_sigma - 0.5 * math.log(2 * math.pi)
        )
        return -torch.logsumexp(log_weights + log_density, dim=1).mean()

    _optimise([logits, centres, log_sigma], nll, steps * 2, lr=0.05)
    order = torch.argsort(centres.detach())
    return {
        "sample": {
            "mean": mean,
            "median": float(targets.median()),
            "modes": list(MIXTURE_MODES),
        },
        "predictions": {
            "mse": float(mse.detach()),
            "mae": float(mae.detach()),
            "wta": sorted(float(v) for v in hypotheses.detach()),
            "mdn": [float(v) for v in centres.detach()[order]],
        },
        "mdn_weights": [float(v) for v in torch.softmax(logits.detach(), 0)[order]],
        "targets": targets,
    }


def plot_one_dimensional(result: dict, path: str | Path) -> Path:
    """Histogram of the 1-D targets with each loss's prediction marked (PNG)."""
    import matplotlib  # heavy (~0.5 s) and only needed to draw: imported when a figure is drawn

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    predictions = result["predictions"]
    figure, axes = plt.subplots(figsize=(7.5, 3.6), layout="constrained")
    axes.hist(result["targets"].numpy(), bins=80, color="0.8", density=True, label="targets")
    axes.axvline(predictions["mse"], color="tab:red", linewidth=2.5, label="MSE → mean")
    axes.axvline(predictions["mae"], color="tab:blue", linewidth=2.5, linestyle="--",
                 label="MAE → median")
    for i, value in enumerate(predictions["wta"]):
        axes.axvline(value, color="tab:green", linewidth=2, linestyle=":",
                     label="WTA (K=3) → modes" if i == 0 else None)
    for i, (value, weight) in enumerate(zip(predictions["mdn"], result["mdn_weights"], strict=True)):
        axes.plot([value], [0.02], marker="v", markersize=6 + 20 * weight, color="tab:purple",
                  linestyle="none", label="MDN means (size = weight)" if i == 0 else None)
    axes.set_xlabel("target value")
    axes.set_ylabel("density")
    axes.set_title("One input, many valid targets: which value does each loss predict?")
    axes.legend(fontsize=8, loc="upper right")
    figure.text(0.0, -0.02, "Look for: MSE lands between modes where no target lies; only WTA and "
                "the mixture head land on the modes.", fontsize=8, va="top")
    figure.savefig(target, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return target

