"""Planning: the runs of a resolved experiment (one per entry and seed) and its baseline row.

A :class:`PlannedRun` carries the run's ``TrainConfig`` values (nested dicts, picklable for
worker processes) and the validated :class:`~losslab.train.TrainConfig` built from them once,
by :func:`train_config`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from losslab.core.records import RUNS_DIR
from losslab.experiments.evaluate import DEFAULT_SAMPLES
from losslab.experiments.schema import Experiment, ExperimentError, settings_overrides
from losslab.experiments.seeds import seed_run_name
from losslab.experiments.specs import safe_run_name, unique_run_names
from losslab.train import TrainConfig
from losslab.train.config import plain_data
from losslab.train.tasks import get_task_class


@dataclass(frozen=True)
class PlannedRun:
    """One run of a comparison: its label, directory name and full training config values.

    ``run_name`` is relative to ``DIR/runs``: the entry's directory for the experiment's own seed,
    ``<entry>/seed-<k>`` for another seed (:func:`losslab.experiments.seeds.seed_run_name`);
    ``entry_run_name`` is the entry's directory either way.
    """

    label: str
    run_name: str
    loss: str
    hypotheses: int
    note: str
    config: dict[str, Any]
    samples: int = DEFAULT_SAMPLES  # draws per validation input if the model is stochastic
    seed: int = 0
    entry_run_name: str = ""
    metamer: bool = True
    # the TrainConfig built from ``config`` by train_config(), once per plan (not part of what
    # the plan is: equality and repr ignore it; it travels with the plan to worker processes)
    _validated: dict[str, TrainConfig] = field(default_factory=dict, compare=False, repr=False)

    @property
    def display(self) -> str:
        """The label, with the seed when the entry has runs of other seeds."""
        return self.label if self.run_name == self.entry_run_name else \
            f"{self.label} (seed {self.seed})"


def entry_groups(plans: Sequence[PlannedRun]) -> list[list[PlannedRun]]:
    """The plans grouped by entry (one list of seeds per entry), in entry order."""
    groups: dict[str, list[PlannedRun]] = {}
    for plan in plans:
        groups.setdefault(plan.label, []).append(plan)
    return list(groups.values())


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def plan_runs(experiment: Experiment, out_dir: str | Path,
              seeds: Sequence[int] | None = None) -> list[PlannedRun]:
    """The runs of a (resolved) experiment with their ``TrainConfig`` values (nested dicts).

    One run per entry and seed (``seeds``, default the experiment's
    :attr:`~losslab.experiments.schema.Experiment.training_seeds`), entry by entry. The run of
    the experiment's own seed (``budget.seed``) is planned exactly as without seeds (same
    directory, same config), so finished single-seed comparisons are reused; another seed ``k``
    trains in ``runs/<entry>/seed-<k>`` with ``seed = k`` and ``data.seed`` = the data seed of
    the entry's own run, so every seed is validated on the same images.
    """
    out_dir = Path(out_dir)
    seeds = list(experiment.training_seeds if seeds is None else seeds)
    labels = [entry.name for entry in experiment.entries]
    plans = []
    for entry, run_name in zip(experiment.entries, unique_run_names(labels), strict=True):
        budget = experiment.budget
        values: dict[str, Any] = {
            "task": experiment.task,
            "loss": entry.loss,
            "steps": entry.steps or budget.steps,
            "out": str(out_dir / RUNS_DIR / run_name),
            "name": entry.name,
            "seed": budget.seed,
            "data": {
                "name": experiment.data,
                "crop_size": budget.crop_size,
                "batch_size": entry.batch_size or budget.batch_size,
                "options": copy.deepcopy(experiment.data_options),
            },
            "model": {
                "name": experiment.model,
                "options": _deep_merge(experiment.model_options, entry.model_options),
            },
            "hypotheses": {"count": entry.hypotheses},
            "optimizer": {"lr": entry.lr or budget.lr},
        }
        values = _deep_merge(values, settings_overrides(experiment.train_options))
        values = _deep_merge(values, settings_overrides(entry.train_options))
        if entry.latent.model_fields_set:  # only then: plain runs keep their recorded identity
            values = _deep_merge(values, {"latent": plain_data(
                entry.latent.model_dump(exclude_unset=True))})
        # the data seed of the entry's own run (train_options may set seed or data.seed)
        data_seed = values["data"].get("seed")
        data_seed = values["seed"] if data_seed is None else data_seed
        for seed in seeds:
            name = seed_run_name(run_name, seed, experiment.budget.seed)
            seeded = values
            if name != run_name:
                seeded = copy.deepcopy(values)
                seeded["seed"] = seed
                seeded["data"]["seed"] = data_seed
                seeded["out"] = str(out_dir / RUNS_DIR / name)
            plans.append(PlannedRun(entry.name, name, entry.loss, entry.hypotheses, entry.note,
                                    seeded, seed=seed if name != run_name else values["seed"],
                                    entry_run_name=run_name, metamer=entry.metamer,
                                    samples=experiment.samples))
    return plans


@dataclass(frozen=True)
class PlannedBaseline:
    """The task's untrained baseline row: its label, directory name and what it does."""

    label: str
    run_name: str
    description: str


def plan_baseline(experiment: Experiment, plans: list[PlannedRun]) -> PlannedBaseline | None:
    """The baseline row of a comparison (``None`` when its task has no baseline).

    Its directory name avoids the runs' names (``baseline-bicubic``, then ``-2`` ...).
    """
    task = get_task_class(experiment.task)
    if not task.baseline_name:
        return None
    label = f"{task.baseline_name} (baseline)"
    used = {plan.run_name.lower() for plan in plans}
    base = "baseline-" + safe_run_name(task.baseline_name)
    name, counter = base, 1
    while name.lower() in used:
        counter += 1
        name = f"{base}-{counter}"
    return PlannedBaseline(label, name, task.baseline_description)


def train_config(plan: PlannedRun) -> TrainConfig:
    """The plan's validated :class:`~losslab.train.TrainConfig`, built from ``plan.config``
    the first time it is asked for (by :func:`~losslab.experiments.preflight.preflight`) and
    returned as a copy after that, so a caller may change resume-safe fields (``progress_bar``)
    without touching the plan.

    Raises:
        ExperimentError: the values are not a valid ``TrainConfig`` (names the entry).
    """
    if "config" not in plan._validated:
        try:
            plan._validated["config"] = TrainConfig.from_dict(plan.config)
        except (TypeError, ValueError) as error:
            raise ExperimentError(
                f"entry {plan.label!r}: its training settings are not a valid TrainConfig: "
                f"{error} (check train_options / model_options in the experiment file)."
            ) from None
    return plan._validated["config"].model_copy(deep=True)
