"""Score the samples of stochastic runs (latent: cvae / noise) on their fixed validation items.

Until ``losslab evaluate`` scores samples (the sample-evaluation work), this is how the numbers in
``docs/experiments.md`` ("Latent-variable entries") were measured. For each run directory:

- ``psnr_plausible`` (data that knows its plausible answers, e.g. ``future``): pooled PSNR of
  *one* prior sample per input to its nearest plausible answer
  (:func:`losslab.metrics.plausibility.psnr_plausible`), the headline; also the mean over the
  ``--samples`` draws scored one at a time, and ``psnr`` of one sample to the actual target;
- ``futures``: distinct plausible answers reached by the ``--samples`` draws of one input,
  averaged over inputs. A draw *reaches* answer ``p`` when ``p`` is its nearest answer and the
  draw is nearer (MSE) to ``p`` than to the mean of all answers (the ghost MSE predicts): a draw
  that is (nearly) the ghost reaches nothing;
- ``baseline_psnr_plausible`` / ``ghost_psnr_plausible``: the same score of the task's trivial
  baseline (a copy of the last frame) and of the mean of the plausible answers (MSE's optimum);
- ``diversity``: mean pairwise RMSE between the draws of one input (0 for a deterministic model);
- ``chroma_ratio`` / ``grad_ratio`` / ``hf_ratio`` of one sample
  (:func:`losslab.metrics.compute.compute_image_metrics`).

Run (one line per run, JSON)::

    PYTHONPATH=src python benchmarks/latent_samples.py runs/future/runs/cvae --samples 8
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from losslab.metrics.compute import compute_image_metrics
from losslab.metrics.plausibility import nearest_plausible, psnr_plausible
from losslab.models.stochastic import draw_samples, is_stochastic
from losslab.train.run import baseline_validation, open_run


def futures_reached(samples: torch.Tensor, plausible: torch.Tensor) -> float:
    """Mean over inputs of the distinct answers reached (see the module docstring).

    ``samples`` ``(N, m, C, H, W)``, ``plausible`` ``(N, P, C, H, W)``.
    """
    n = samples.shape[0]
    ghost = plausible.mean(dim=1)  # (N, C, H, W)
    reached = []
    for i in range(n):
        draws = samples[i].clamp(0, 1)
        errors = (draws[:, None] - plausible[i][None]).pow(2).flatten(2).mean(-1)  # (m, P)
        to_ghost = (draws - ghost[i]).pow(2).flatten(1).mean(-1)  # (m,)
        nearest = errors.argmin(dim=1)
        hits = {int(p) for j, p in enumerate(nearest) if errors[j, p] < to_ghost[j]}
        reached.append(len(hits))
    return sum(reached) / max(1, n)


def score(run_dir: str, count: int, seed: int) -> dict[str, object]:
    run = open_run(run_dir, "last")
    task, indices = run.task, run.validation_indices()
    batch = torch.stack([run.val_set[i] for i in indices])
    inputs, target = task.split(batch)
    with torch.no_grad():
        if is_stochastic(run.model):
            samples = draw_samples(run.model, inputs, count, seed).clamp(0, 1)
        else:
            samples = run.model(inputs).clamp(0, 1).unsqueeze(1)
    first = samples[:, 0]
    result: dict[str, object] = {"run": run_dir, "samples": int(samples.shape[1])}
    metrics = compute_image_metrics(first, target, lpips=False,
                                    metrics=["psnr", "chroma_ratio", "grad_ratio", "hf_ratio"])
    result |= {k: metrics[k] for k in ("psnr", "chroma_ratio", "grad_ratio", "hf_ratio")
               if k in metrics}
    plausible = run.plausible()
    if plausible is not None:
        result["psnr_plausible"] = psnr_plausible(first, plausible)
        each = [psnr_plausible(samples[:, j], plausible) for j in range(samples.shape[1])]
        result["psnr_plausible_each_mean"] = sum(each) / len(each)
        result["psnr_plausible_each_min"] = min(each)
        result["futures"] = futures_reached(samples, plausible)
        _, index = nearest_plausible(first, plausible)
        result["nearest_counts"] = torch.bincount(index, minlength=plausible.shape[1]).tolist()
        # the same validation items' trivial answers: the task's baseline (copy of the last
        # frame) and the mean of the plausible answers (the optimum of MSE, its "ghost")
        baseline = baseline_validation(run.config)
        if baseline is not None:
            result["baseline_psnr_plausible"] = psnr_plausible(baseline[1].clamp(0, 1), plausible)
        result["ghost_psnr_plausible"] = psnr_plausible(plausible.mean(dim=1), plausible)
    if samples.shape[1] > 1:
        m = samples.shape[1]
        flat = samples.flatten(2)
        distances = torch.cdist(flat, flat) / flat.shape[-1] ** 0.5  # RMSE, (N, m, m)
        result["diversity"] = float(distances.sum(dim=(1, 2)).mean() / (m * (m - 1)))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for run_dir in args.runs:
        print(json.dumps(score(run_dir, args.samples, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
