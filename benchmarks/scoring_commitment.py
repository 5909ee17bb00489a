"""Can a proper scoring rule tell commitment from noise? Measured on ``moving_shapes`` futures.

Run on demand (not part of the test suite)::

    python benchmarks/scoring_commitment.py [--clips 32] [--draws 16]

The data are the shipped ``future`` experiment's clips (48-px frames, an 8-px shape that jumps
10 px in one of 4 directions; the 4 futures do not overlap). For each clip the target ``y`` is
each of its 4 futures in turn (each equally likely: the expectation over ``y`` is exact), and
four samplers are scored against it:

- ``mean``: the mean of the 4 futures (what MSE predicts), every draw the same;
- ``ideal``: draws from the true distribution (uniform over the 4 futures). Its expected score
  is exact: the standard (``alpha = 0``) estimator on the 4 futures themselves is the score of
  the uniform distribution over them;
- ``matched noise``: the mean plus independent Gaussian noise whose per-pixel (and channel)
  variance is the variance of the 4 futures at that pixel (``draws`` draws, fair estimator,
  which is unbiased);
- ``best white noise``: the mean plus i.i.d. Gaussian noise of one standard deviation for every
  pixel, the best one of a grid (the noise a generator can learn most cheaply);
- ``independent pixels``: every pixel taken from a future chosen independently per pixel
  (the right per-pixel marginals, no shape: salt-and-pepper fragments of all 4 futures).

Printed: each sampler's score over the mean's (mean over clips), for the energy score in
pixels, on patches and on random-VGG features, for the per-pixel CRPS and for the Gaussian
kernel score. A ratio near the ideal one means the score cannot tell that sampler from one that
commits to a future.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import Tensor

import losslab
from losslab.data import build_datasets
from losslab.losses import set_value_checks

SPECS = (
    "energy_score",
    "energy_score(features=patches)",
    "energy_score(features=vgg)",
    "crps",
    "kernel_score(bandwidth=0.1)",
)
WHITE_SIGMAS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


def clip_futures(count: int) -> list[Tensor]:
    """The 4 possible futures ``(4, 3, 48, 48)`` of the first ``count`` validation clips of the
    shipped ``future`` experiment's data."""
    _, val = build_datasets("moving_shapes", crop_size=48, frames=2, shape_size=8, speed=10,
                           val_size=count)
    return [val.futures(index) for index in range(count)]


def scores(loss: losslab.losses.Loss, futures: Tensor, draws: int,
           generator: torch.Generator) -> dict[str, float]:
    """Expected score of each sampler for one clip, the target drawn uniformly from ``futures``."""
    k = futures.shape[0]
    mean = futures.mean(dim=0)
    spread = futures.std(dim=0, unbiased=False)
    targets = futures  # (k, C, H, W): every future once = the exact expectation over y
    alpha = loss.alpha
    result = {"mean": float(loss(mean.expand(k, 2, *mean.shape), targets))}
    loss.alpha = 0.0  # the standard estimator on the k futures = the uniform distribution's score
    result["ideal"] = float(loss(futures.expand(k, *futures.shape), targets))
    loss.alpha = alpha
    noise = torch.randn(k, draws, *mean.shape, generator=generator)
    result["matched noise"] = float(loss(mean + spread * noise, targets))
    white = [float(loss(mean + sigma * noise, targets)) for sigma in WHITE_SIGMAS]
    result["best white noise"] = min(white)
    result["best sigma"] = WHITE_SIGMAS[white.index(min(white))]
    choice = torch.randint(0, k, (k, draws, 1, *mean.shape[1:]), generator=generator)
    shuffled = torch.gather(futures.expand(k, draws, *futures.shape), 2,
                            choice.unsqueeze(2).expand(k, draws, 1, *mean.shape)).squeeze(2)
    result["independent pixels"] = float(loss(shuffled, targets))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--draws", type=int, default=16)
    args = parser.parse_args(argv)
    set_value_checks(False)  # mean + noise leaves [0, 1] (a linear output would too)
    torch.set_grad_enabled(False)
    futures = clip_futures(args.clips)
    print(f"{args.clips} clips of the future data, 4 futures each; {args.draws} noisy draws")
    print(f"{'score':32s} {'ideal':>6s} {'matched':>8s} {'white':>6s} (sigma) {'pixels':>7s}"
          "   [expected score / the mean's]")
    for spec in SPECS:
        start = time.perf_counter()
        loss = losslab.loss(spec)
        generator = torch.Generator().manual_seed(0)
        rows = [scores(loss, clip, args.draws, generator) for clip in futures]
        ratio = {key: sum(r[key] / r["mean"] for r in rows) / len(rows)
                 for key in ("ideal", "matched noise", "best white noise", "independent pixels")}
        sigmas = sorted({r["best sigma"] for r in rows})
        print(f"{spec:32s} {ratio['ideal']:6.3f} {ratio['matched noise']:8.3f} "
              f"{ratio['best white noise']:6.3f} ({','.join(f'{s:g}' for s in sigmas)}) "
              f"{ratio['independent pixels']:7.3f}   {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
