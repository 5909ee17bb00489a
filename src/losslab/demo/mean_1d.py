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
from losslab.losses.scoring import energy_score

MIXTURE_MODES = (-3.0, 0.5, 3.5)
MIXTURE_WEIGHTS = (0.45, 0.35, 0.2)
MIXTURE_STD = 0.4
#: Latent dimensions of the energy-score sampler, its draws per target and its training steps
#: (1-d noise and 1000 steps: with 4-d noise or 300 steps a third of the draws bridged the gaps).
SAMPLER_LATENT = 1
SAMPLER_DRAWS = 8
SAMPLER_STEPS = 1000
#: Histogram of :func:`histogram_distance`: 55 bins of 0.2 over [-5, 6] (the mixture's support).
HISTOGRAM_BINS = (55, -5.0, 6.0)


def sample_mixture(count: int, generator: torch.Generator) -> Tensor:
    """``count`` samples ``(count,)`` of the 3-Gaussian mixture (see the module docstring)."""
    component = torch.multinomial(torch.tensor(MIXTURE_WEIGHTS), count, replacement=True,
                                  generator=generator)
    means = torch.tensor(MIXTURE_MODES)[component]
    return means + MIXTURE_STD * torch.randn(count, generator=generator)


def mode_fractions(values: Tensor) -> list[float]:
    """Fraction of ``values`` within 2 standard deviations (``2 * MIXTURE_STD``) of each mode.

    The mixture puts 95.4 % of its mass there; the rest (``1 - sum``) lies between the modes or
    beyond them."""
    distance = (values[:, None] - torch.tensor(MIXTURE_MODES)[None]).abs()
    near = distance.amin(dim=1) < 2 * MIXTURE_STD
    nearest = distance.argmin(dim=1)
    return [float(((nearest == k) & near).float().mean()) for k in range(len(MIXTURE_MODES))]


def histogram_distance(values: Tensor, reference: Tensor) -> float:
    """Total-variation distance in ``[0, 1]`` between the histograms of two sets of values
    (:data:`HISTOGRAM_BINS`; mass outside the range counts as one more bin)."""
    bins, low, high = HISTOGRAM_BINS
    first = torch.histc(values, bins, low, high) / values.numel()
    second = torch.histc(reference, bins, low, high) / reference.numel()
    outside = abs(float((1 - first.sum()) - (1 - second.sum())))
    return 0.5 * (float((first - second).abs().sum()) + outside)


def train_energy_sampler(targets: Tensor, generator: torch.Generator, *,
                         steps: int = SAMPLER_STEPS, batch: int = 128) -> nn.Module:
    """A generator ``x = g(z)``, ``z ~ N(0, 1)``, trained by the fair energy score (in 1-D the
    CRPS) with :data:`SAMPLER_DRAWS` draws per target: a proper scoring rule, so its best
    sampler is the data distribution. Output in target units (standardised inside)."""
    mean, std = float(targets.mean()), float(targets.std())
    body = nn.Sequential(nn.Linear(SAMPLER_LATENT, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 1))

    class Sampler(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body

        def forward(self, z: Tensor) -> Tensor:
            return self.body(z) * std + mean

    sampler = Sampler()

    def score(step: int) -> Tensor:
        chosen = targets[torch.randint(0, targets.shape[0], (batch,), generator=generator)]
        draws = sampler(torch.randn(batch, SAMPLER_DRAWS, SAMPLER_LATENT, generator=generator))
        return energy_score(draws, chosen[:, None]).mean()  # (B, m, 1) against (B, 1)

    _optimise(sampler.parameters(), score, steps, lr=1e-2)
    return sampler


def run_one_dimensional_demo(seed: int = 0, *, samples: int = 4000, steps: int = 300) -> dict:
    """Train MSE, MAE, WTA (K=3) and MDN (K=3) predictors and an energy-score sampler on one
    constant input (part a).

    Returns ``{"sample": {...}, "predictions": {...}, "mdn_weights": [...], "targets": Tensor,
    "sampler": {"samples": Tensor, "mode_fractions": [...], "data_mode_fractions": [...],
    "histogram_distance": float}}``
    (see the module docstring); every predictor starts near the sample mean. The sampler's
    ``samples`` (as many as targets) are fresh draws after training.
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
    torch.manual_seed(seed)
    sampler = train_energy_sampler(targets, generator)
    with torch.no_grad():
        drawn = sampler(torch.randn(samples, SAMPLER_LATENT, generator=generator))[:, 0]
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
        "sampler": {"samples": drawn, "mode_fractions": mode_fractions(drawn),
                    "data_mode_fractions": mode_fractions(targets),
                    "histogram_distance": histogram_distance(drawn, targets)},
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
    if "sampler" in result:
        axes.hist(result["sampler"]["samples"].numpy(), bins=80, density=True, histtype="step",
                  color="tab:orange", linewidth=1.5, label="energy-score sampler: draws")
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
                "the mixture head land on the modes; the sampler's draws (orange) follow the "
                "three modes and their weights, with some mass bridging the gaps.", fontsize=8,
                va="top")
    figure.savefig(target, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return target

