"""How well does the pixel energy score tell committing from "mean plus noise" on ``future``?

No training: on the ``future`` experiment's 16 validation clips (seed ``--seed``), the energy
score (:class:`losslab.losses.scoring.EnergyScoreLoss`, whole-image RMS norm, beta 1, fair;
the mean over clips) of
``--samples`` draws per clip against the future that happened, for

- the ghost: every draw is the mean of the clip's 4 possible futures (MSE's answer);
- ghost + noise: the mean plus i.i.d. Gaussian pixel noise of standard deviation ``sigma`` (the
  best of a grid) or the same noise blurred (Gaussian, ``--blur`` px; "smooth noise");
- the ideal sampler: each draw is one of the 4 futures, uniformly at random;
- trained samplers: ``--runs DIR...`` (runs of the same experiment and seed), their
  ``draw_samples(model, inputs, --samples, seed=0)`` from ``checkpoints/last.ckpt``.

Lower is better; the script prints each score and its ratio to the ghost's. The ideal sampler
is what a proper score rewards most, but if "mean plus noise" comes close the training signal
towards committing is weak.

    PYTHONPATH=src python benchmarks/energy_score_future.py --samples 8
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from losslab.core.filters import gaussian_blur
from losslab.experiments.runner import plan_runs
from losslab.experiments.schema import resolve_experiment
from losslab.losses.scoring import EnergyScoreLoss
from losslab.models.stochastic import draw_samples
from losslab.train.config import TrainConfig
from losslab.train.data import build_data
from losslab.train.run import open_run, validation_plausible
from losslab.train.tasks import get_task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blur", type=float, default=2.0, help="sigma (px) of the smooth noise")
    parser.add_argument("--runs", nargs="*", default=[], help="stochastic run directories")
    args = parser.parse_args(argv)
    values = plan_runs(resolve_experiment("future"), "/tmp/unused")[0].config
    config = TrainConfig.from_dict({**values, "seed": args.seed})
    _, val_set = build_data(config)
    indices = list(range(min(config.data.val_items, len(val_set))))
    inputs, target = get_task(config).split(torch.stack([val_set[i] for i in indices]))
    plausible = validation_plausible(config)  # (N, 4, 3, H, W)
    generator = torch.Generator().manual_seed(args.seed)
    n, m = target.shape[0], args.samples
    ghost = plausible.mean(dim=1)
    energy_score = EnergyScoreLoss(check_values=False)  # noisy draws leave [0, 1]
    scores: dict[str, float] = {}
    scores["ghost"] = float(energy_score(ghost[:, None].expand(n, m, *ghost.shape[1:]), target))
    pick = torch.randint(0, plausible.shape[1], (n, m), generator=generator)
    ideal = plausible[torch.arange(n)[:, None], pick]
    scores["ideal sampler"] = float(energy_score(ideal, target))
    noise = torch.randn(n, m, *ghost.shape[1:], generator=generator)
    smooth = gaussian_blur(noise.flatten(0, 1), args.blur).unflatten(0, (n, m))
    smooth = smooth / smooth.std() * noise.std()
    for name, field in (("ghost + white noise", noise), ("ghost + smooth noise", smooth)):
        best = min((float(energy_score(ghost[:, None] + sigma * field, target)), sigma)
                   for sigma in [0.01 * k for k in range(1, 41)])
        scores[f"{name} (sigma {best[1]:.2f})"] = best[0]
    for run_dir in args.runs:
        run = open_run(run_dir, "last")
        with torch.no_grad():
            draws = draw_samples(run.model, inputs, m, seed=0)
        scores[f"run {run_dir}"] = float(energy_score(draws, target))
    print(json.dumps({name: {"energy_score": value, "ratio_to_ghost": value / scores["ghost"]}
                      for name, value in scores.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
