"""Several training seeds per entry: where each seed's run lives and how its numbers combine.

A comparison with ``seeds: [0, 1, 2]`` (or ``losslab compare EXP --seeds 0,1,2``) trains every
entry once per seed. The validation set is the same for all of them: every run's data sets are
seeded by the experiment's ``budget.seed`` (``data.seed`` of the run's config), while the run's
own ``seed`` changes the model initialisation, the batch order and any other draw in training.

Layout: the seed equal to ``budget.seed`` keeps today's directory and today's config
(``runs/<entry>``, ``seed = budget.seed``, no ``data.seed`` key), so a comparison finished before
seeds existed is reused as it is; every other seed ``k`` trains in ``runs/<entry>/seed-<k>``
(nested, so it can never collide with another entry's directory name).

Combining: each metric gets ``mean``, ``sd`` (sample standard deviation, ``n - 1``; ``0.0`` for one
value), ``min``, ``max`` and ``n`` over the seeds that have it (:func:`spread`). The entry's
representative run (its images in the report) is the median seed by the headline metric
(:func:`headline_metric`: ``psnr_plausible`` where the task knows its plausible answers, else
``psnr``), the lower middle one for an even count (:func:`median_seed`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

#: Folder-name prefix of a non-default seed's run inside its entry's directory.
SEED_DIR_PREFIX = "seed-"


def parse_seeds(text: str | Sequence[int]) -> list[int]:
    """``"0,1,2"`` (the CLI's ``--seeds``) or a list of integers -> distinct seeds, in order.

    Raises:
        ValueError: an empty list, a value that is not an integer in ``[0, 2**32 - 1]``, or a
            seed given twice; the message names the value.
    """
    if isinstance(text, str):
        parts = [part.strip() for part in text.split(",") if part.strip()]
        seeds = []
        for part in parts:
            if not part.isdigit():
                raise ValueError(f"seeds must be comma-separated integers >= 0 such as 0,1,2; got "
                                 f"{part!r} in {text!r}.")
            seeds.append(int(part))
    else:
        seeds = list(text)
        for seed in seeds:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise ValueError(f"seeds must be integers >= 0 such as [0, 1, 2]; got {seed!r}.")
    if not seeds:
        raise ValueError("seeds must name at least one seed, e.g. --seeds 0,1,2.")
    if any(seed > 2**32 - 1 for seed in seeds):
        raise ValueError(f"seeds must be at most 2**32 - 1; got {max(seeds)}.")
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        raise ValueError(f"seeds must be distinct; {', '.join(map(str, repeated))} is given twice.")
    return seeds


def seed_run_name(entry_run_name: str, seed: int, data_seed: int) -> str:
    """The run directory (relative to ``DIR/runs``) of one seed of an entry.

    ``data_seed`` (the experiment's ``budget.seed``) keeps the entry's own directory, so
    single-seed comparisons keep today's layout; any other seed is ``<entry>/seed-<k>``.
    """
    return entry_run_name if seed == data_seed else f"{entry_run_name}/{SEED_DIR_PREFIX}{seed}"


def spread(values: Sequence[float]) -> dict[str, float | int]:
    """``{"mean", "sd", "min", "max", "n"}`` of finite ``values`` (non-finite ones are left out).

    ``sd`` is the sample standard deviation (divides by ``n - 1``), ``0.0`` for one value.

    Raises:
        ValueError: no finite value.
    """
    finite = [float(value) for value in values if math.isfinite(float(value))]
    if not finite:
        raise ValueError("spread needs at least one finite value.")
    return {"mean": statistics.fmean(finite),
            "sd": statistics.stdev(finite) if len(finite) > 1 else 0.0,
            "min": min(finite), "max": max(finite), "n": len(finite)}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def headline_metric(per_seed: Mapping[Any, Mapping[str, Any]]) -> str:
    """``"psnr_plausible"`` when every seed reports it, else ``"psnr"``."""
    if per_seed and all(_number(m.get("psnr_plausible")) for m in per_seed.values()):
        return "psnr_plausible"
    return "psnr"


def median_seed(per_seed: Mapping[int, Mapping[str, Any]], key: str) -> int:
    """The seed whose ``key`` is the median: the lower middle of an even count, ties broken by
    the smaller seed. Seeds without a finite value are passed over; with none at all, the first
    seed given."""
    if not per_seed:
        raise ValueError("median_seed needs at least one seed.")
    scored = sorted((float(m[key]), seed) for seed, m in per_seed.items() if _number(m.get(key)))
    if not scored:
        return next(iter(per_seed))
    return scored[(len(scored) - 1) // 2][1]


def combine(per_seed: Mapping[int, Mapping[str, Any]], keys: Sequence[str]
            ) -> tuple[dict[str, float], dict[str, dict[str, float | int]]]:
    """Means and spreads of the scalar metrics ``keys`` over the seeds.

    Returns ``(means, spreads)``: ``means[key]`` is the mean over the seeds with a finite value,
    ``spreads[key]`` the :func:`spread` record; a key no seed has a number for is in neither.
    """
    means: dict[str, float] = {}
    spreads: dict[str, dict[str, float | int]] = {}
    for key in keys:
        values = [m[key] for m in per_seed.values() if _number(m.get(key))]
        if values:
            spreads[key] = spread(values)
            means[key] = float(spreads[key]["mean"])
    return means, spreads


__all__ = ["SEED_DIR_PREFIX", "combine", "headline_metric", "median_seed", "parse_seeds",
           "seed_run_name", "spread"]
