"""The comparison runner: one training run per loss, evaluated and probed.

The runner writes results only; the HTML report is a separate step that reads them from disk
(:func:`losslab.report.build_report`, called by ``losslab compare`` after the runner and by
``losslab report DIR``), so experiments and report stay independent siblings.

:func:`run_comparison` writes the layout of ``docs/architecture.md`` ("Evaluated runs and
comparisons on disk")::

    DIR/experiment.yaml          the resolved experiment (budget after --steps / scaling,
                                 perceptual weights written into the specs)
    DIR/comparison.json          per run: label, loss, run dir, steps, feature-network weights,
                                 what the probe measured
    DIR/runs/<run_name>/...      train's run dir + evaluation files + DONE (written last)
    DIR/runs/baseline-<name>/    the task's untrained baseline (bicubic, copy of the last frame,
                                 grey), evaluated like a run: metrics.json, evaluation/, DONE
    DIR/probe.json|csv|png       the loss probe on the same specs
    DIR/metamers.json|png        loss metamers: one row per entry (losslab.synthesis)
    DIR/metrics.json|csv         {label: {metric: value}}

(``DIR/report/index.html`` is added by :func:`losslab.report.build_report`.)

Every comparison whose task has a trivial baseline (:meth:`losslab.train.tasks.Task.baseline`)
gets it as a first-class row: evaluated by the same metric code on the same validation images,
listed in ``comparison.json`` with ``"baseline": true``, shown in the metrics table, the image
grid and the perception-distortion plot, marked as a baseline. It costs no training and is
recomputed on every call.

It is restartable: a run whose ``DONE`` marker exists is reused (after checking that it was
trained with the same settings), a run that was interrupted resumes from its last checkpoint
(``train``'s own resume), and only the missing runs train.

Seeds (``seeds:`` / ``--seeds``): one run per entry and seed, the experiment's own seed at the
entry's usual directory, seed ``k`` at ``runs/<entry>/seed-<k>``; the tables get means and
spreads (:mod:`losslab.experiments.seeds`). Runs train one at a time here, or side by side in
worker processes or cluster jobs (:mod:`losslab.experiments.parallel`); one comparison per
directory at a time (:mod:`losslab.experiments.lock`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from losslab import probe as probe_module
from losslab.core.atomic import write_text_atomic
from losslab.experiments.evaluate import (
    DEFAULT_SAMPLES,
    METRIC_KEYS,
    evaluate_baseline,
    evaluate_run,
    write_json_atomic,
    write_metrics_csv,
)
from losslab.experiments.lock import ComparisonLock
from losslab.experiments.parallel import (
    Job,
    JobResult,
    apply_environment,
    run_local,
    run_submitit,
    submitit_executor,
)
from losslab.experiments.schema import (
    Experiment,
    ExperimentError,
    Launcher,
    check_perceptual_weights,
    resolve_experiment,
    settings_overrides,
)
from losslab.experiments.seeds import (
    combine,
    headline_metric,
    median_seed,
    parse_seeds,
    seed_run_name,
)
from losslab.experiments.specs import (
    called_losses,
    probe_spec,
    safe_run_name,
    unique_run_names,
    with_perceptual_weights,
)
from losslab.losses import loss as build_loss
from losslab.metrics import SAMPLE_KEYS
from losslab.synthesis import load_image, minimum_size, write_metamers
from losslab.train import StepReporter, TrainConfig, quiet_lightning, train
from losslab.train.checkpointing import read_checkpoint_info
from losslab.train.config import plain_data, save_config
from losslab.train.config_errors import validated
from losslab.train.tasks import get_task_class
from losslab.weights import WeightsUnavailableError, get_weights_info

DONE_FILE = "DONE"
#: The target photo and start images of the report's metamer rows (cheap: 64 px, 150 steps).
METAMER_IMAGE = "astronaut"
METAMER_STARTS: tuple[str, ...] = ("noise", "photo")


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

    @property
    def display(self) -> str:
        """The label, with the seed when the entry has runs of other seeds."""
        return self.label if self.run_name == self.entry_run_name else \
            f"{self.label} (seed {self.seed})"


class RunsFailedError(ExperimentError):
    """Some runs of a comparison failed while the others finished (``--jobs``, slurm).

    Raised by :func:`run_comparison` after every file of the comparison was written (the failed
    runs are missing from the tables); ``directory`` is the comparison and ``failures`` maps each
    failed run's directory name to its one-line error.
    """

    def __init__(self, directory: Path, failures: Mapping[str, str]) -> None:
        self.directory = directory
        self.failures = dict(failures)
        lines = "; ".join(f"{name}: {error}" for name, error in self.failures.items())
        super().__init__(f"{len(self.failures)} run(s) of {directory} failed ({lines}); re-run "
                         "the same command to retry them (finished runs are reused).")


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


def resolve_budget(experiment: Experiment, *, steps: int | None = None,
                   budget_scale: float = 1.0, perceptual_weights: str | None = None) -> Experiment:
    """Apply command-line overrides and return the resolved experiment.

    Args:
        steps: replaces every run's step budget (entry overrides included).
        budget_scale: multiplies every run's steps (rounded, at least 1), e.g. 10 on a GPU;
            ignored when ``steps`` is given.
        perceptual_weights: ``imagenet``, ``random``, ``auto`` or the path of a VGG19 state dict
            file (relative to the working directory) for every ``perceptual`` term that does not
            name its weights; overrides the experiment's ``perceptual_weights``. ``auto``
            resolves here, once: ``imagenet`` when VGG19's ImageNet file is in the local cache
            (``losslab weights``), else ``random``; the resolved value (a path made absolute) is
            what ``experiment.yaml``, ``comparison.json`` and the report show.
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive integer; got {steps!r}.")
    if not (isinstance(budget_scale, (int, float)) and math.isfinite(budget_scale)
            and budget_scale > 0):
        raise ValueError(f"budget_scale must be a positive number (e.g. 10 on a GPU); got "
                         f"{budget_scale!r}.")
    if perceptual_weights is not None:
        try:
            perceptual_weights = check_perceptual_weights(perceptual_weights)
        except ValueError as error:
            raise ValueError(f"perceptual_weights {error}") from None

    def scaled(value: int) -> int:
        if steps is not None:
            return steps
        return max(1, round(value * budget_scale))

    weights = perceptual_weights or experiment.perceptual_weights
    if weights == "auto":
        weights = auto_perceptual_weights()
    entries = list(
        entry.model_copy(update={
            "loss": with_perceptual_weights(entry.loss, weights),  # a path is quoted there
            "steps": None if entry.steps is None else scaled(entry.steps),
        })
        for entry in experiment.entries
    )
    budget = experiment.budget.model_copy(update={"steps": scaled(experiment.budget.steps)})
    return experiment.model_copy(update={"entries": entries, "budget": budget,
                                         "perceptual_weights": weights})


def auto_perceptual_weights() -> str:
    """``"imagenet"`` when VGG19's ImageNet weights are in the local cache, else ``"random"``.

    Never downloads: ``auto`` exists so an experiment runs offline unchanged.
    """
    return "imagenet" if get_weights_info("vgg19-imagenet").present else "random"


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
            "out": str(out_dir / "runs" / run_name),
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
                seeded["out"] = str(out_dir / "runs" / name)
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


def _train_config(plan: PlannedRun) -> Any:
    try:
        return TrainConfig.from_dict(plan.config)
    except (TypeError, ValueError) as error:
        raise ExperimentError(
            f"entry {plan.label!r}: its training settings are not a valid TrainConfig: {error} "
            "(check train_options / model_options in the experiment file)."
        ) from None


def _weights_descriptions(module: Any) -> list[str]:
    found = []
    for child in module.modules():
        description = getattr(child, "weights_description", None)
        if isinstance(description, str) and description not in found:
            found.append(description)
    return found


def preflight(plans: list[PlannedRun]) -> dict[str, list[str]]:
    """Build every loss and config before any training, so a typo fails in seconds, not after
    the first runs; returns each run's feature-network weight descriptions."""
    descriptions: dict[str, list[str]] = {}
    built: dict[str, list[str]] = {}
    for plan in plans:
        _train_config(plan)
        if plan.loss in built:  # another seed of the same entry (or the same spec): built once
            descriptions[plan.run_name] = built[plan.loss]
            continue
        try:
            module = build_loss(plan.loss)
        except Exception as error:  # weights missing, typo: stop before training anything
            hint = ""
            if isinstance(error, WeightsUnavailableError) and "perceptual" in plan.loss:
                hint = (" For an offline smoke run of the whole comparison, pass "
                        "--perceptual-weights random (run_comparison(..., "
                        "perceptual_weights='random')); the report flags it.")
            raise ExperimentError(
                f"entry {plan.label!r}: cannot build its loss: {error}{hint}"
            ) from error
        descriptions[plan.run_name] = built[plan.loss] = _weights_descriptions(module)
    return descriptions


def _done_payload(plan: PlannedRun) -> dict[str, Any]:
    return {"label": plan.label, "loss": plan.loss, "config": _identity(plan.config),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config fields that decide what a run learns (the output path is left out)."""
    return {key: value for key, value in json.loads(json.dumps(config)).items() if key != "out"}


def _check_reusable(run_dir: Path, plan: PlannedRun) -> bool:
    """Whether a run with a ``DONE`` marker can be reused as it is.

    Reused only when ``DONE`` is a losslab marker (JSON with the run's settings), the settings
    match this comparison's, ``checkpoints/last.ckpt`` is readable and has trained the planned
    steps, and ``metrics.json`` is readable. A marker with other settings raises an
    :class:`ExperimentError` (retraining would silently discard a finished run); any other
    problem (an empty or foreign ``DONE``, a missing or short checkpoint, missing metrics) warns,
    removes the marker and returns ``False``, so the run is trained (resumed where a checkpoint
    allows) and evaluated again.
    """
    marker = run_dir / DONE_FILE
    try:
        stored = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = None
    previous = stored.get("config") if isinstance(stored, dict) else None
    problem = None
    if not isinstance(previous, dict):
        problem = "its DONE marker is empty or not a losslab marker"
    else:
        current = _identity(plan.config)
        if previous != current:
            differences = [
                f"{key}: {previous.get(key)!r} -> {current.get(key)!r}"
                for key in sorted(set(previous) | set(current))
                if previous.get(key) != current.get(key)
            ]
            raise ExperimentError(
                f"{run_dir} finished with other settings than this comparison asks for "
                f"({'; '.join(differences)}). Use another --out directory, or delete that run "
                "directory to retrain it."
            )
        problem = _finished_run_problem(run_dir, int(plan.config["steps"]))
    if problem is None:
        return True
    warnings.warn(f"{run_dir}: {problem}; training and evaluating it again.", stacklevel=3)
    marker.unlink(missing_ok=True)
    return False


def _finished_run_problem(run_dir: Path, steps: int) -> str | None:
    """Why a run marked done is not usable (``None`` if it is): checkpoint and metrics."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return f"its checkpoint {last} is missing"
    try:
        trained = read_checkpoint_info(last)["global_step"]
    except ValueError as error:
        return f"its checkpoint cannot be read ({error})"
    if trained < steps:
        return f"its checkpoint holds {trained} of the {steps} planned steps"
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = None
    if not isinstance(metrics, dict):
        return "its metrics.json is missing or unreadable"
    return None


def _other_sample_count(run_dir: Path, samples: int) -> bool:
    """Whether a finished stochastic run was evaluated with another number of samples."""
    try:
        block = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")).get("samples")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(block, dict) and block.get("count") != samples


def write_done(run_dir: Path, payload: Mapping[str, Any]) -> None:
    """Write the ``DONE`` marker atomically (temporary file, then rename)."""
    write_text_atomic(run_dir / DONE_FILE, json.dumps(payload, indent=2) + "\n")


def train_and_evaluate(plan: PlannedRun, *, callbacks: Sequence[Any] = (),
                       progress_bar: bool | None = None,
                       timings: dict[str, float] | None = None,
                       own_process: bool = False) -> bool:
    """Train (or resume) one run, evaluate it and mark it done; ``False`` if it was reused.

    Args:
        callbacks: extra Lightning callbacks for the training (progress reporting).
        progress_bar: override the run's ``progress_bar`` setting (a resume-safe field, so it
            does not change what the run is); ``None`` keeps the plan's.
        timings: when given, receives ``training`` and ``evaluation`` wall-clock seconds.
        own_process: a DDP run trains through ``losslab train --config`` in a child process
            (for worker processes and cluster jobs, see :func:`_train_ddp_in_own_process`).
    """
    run_dir = Path(plan.config["out"])
    if (run_dir / DONE_FILE).is_file() and _check_reusable(run_dir, plan):
        if _other_sample_count(run_dir, plan.samples):  # evaluation only; the training stands
            evaluate_run(run_dir, samples=plan.samples)
        return False
    config = _train_config(plan)
    if progress_bar is not None:
        config.progress_bar = progress_bar
    started = time.perf_counter()
    if own_process and config.strategy == "ddp":
        _train_ddp_in_own_process(config)
    else:
        train(config, callbacks=callbacks)
    trained = time.perf_counter()
    evaluate_run(run_dir, samples=plan.samples)
    if timings is not None:
        timings["training"] = trained - started
        timings["evaluation"] = time.perf_counter() - trained
    write_done(run_dir, _done_payload(plan))
    return True


def _train_ddp_in_own_process(config: Any) -> None:
    """Train a DDP run as ``python -m losslab.cli train --config FILE`` in a child process.

    Lightning starts the other DDP ranks by running the command that started this process
    again; a worker process of ``--jobs`` or a submitit job has no such command (its
    ``sys.argv`` is the worker's), so the run gets a process of its own that has one.
    """
    with tempfile.TemporaryDirectory(prefix="losslab-ddp-") as folder:
        path = Path(folder) / "config.yaml"
        save_config(config, path)
        done = subprocess.run([sys.executable, "-m", "losslab.cli", "train", "--config",
                               str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(f"DDP training of {config.out} exited with {done.returncode}: "
                           + (lines[-1] if lines else "no message"))


@dataclass
class RunOutcome:
    """What happened to one run: trained now (``fresh``) or reused, and its seconds."""

    run_name: str
    fresh: bool
    timings: dict[str, float] = field(default_factory=dict)


def run_plan_job(plan: PlannedRun, *, env: Mapping[str, str],
                 messages: Any = None) -> RunOutcome:
    """Train and evaluate one run in a worker process or a cluster job (picklable, top-level).

    ``env`` (``CUDA_VISIBLE_DEVICES``) is set before anything touches CUDA; progress goes to
    ``messages`` as ``(run_name, step, loss)`` tuples when a queue is given.
    """
    apply_environment(env)

    def report(step: int, loss: float | None) -> None:
        with contextlib.suppress(OSError, EOFError):  # the parent went away: keep training
            messages.put((plan.run_name, step, loss))

    timings: dict[str, float] = {}
    callbacks = [StepReporter(report)] if messages is not None else []
    with quiet_lightning(True):
        fresh = train_and_evaluate(plan, callbacks=callbacks, progress_bar=False, timings=timings,
                                   own_process=True)
    return RunOutcome(plan.run_name, fresh, timings)


def _progress_bar(total: int, *, progress: bool, verbose: bool) -> Any:
    # On a terminal the line is redrawn in place; in a log file (CI, nohup) every redraw is a new
    # line, so redraw at most every 30 s there instead of every few steps.
    interactive = sys.stderr.isatty()
    return tqdm(total=total, unit="step", disable=not progress or verbose, dynamic_ncols=True,
                mininterval=0.2 if interactive else 30.0, miniters=1,
                bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")


def _train_all(plans: list[PlannedRun], name: str, *, progress: bool, verbose: bool
               ) -> list[RunOutcome]:
    """Train every plan in turn under one progress display; returns each run's outcome.

    The display counts optimizer steps over the whole comparison (so its time-left estimate is
    the comparison's), its label says which run of how many is training, and its postfix the
    run's step and loss. Each finished run prints one line. With ``verbose``, Lightning's own
    bar and messages are shown instead. An exception in a run stops the comparison (as it
    always did one at a time; finished runs are kept and reused on the next call).
    """
    bar = _progress_bar(sum(int(plan.config["steps"]) for plan in plans), progress=progress,
                        verbose=verbose)
    outcomes: list[RunOutcome] = []
    done_before = 0  # steps of the runs already finished
    for index, plan in enumerate(plans, start=1):
        steps = int(plan.config["steps"])
        bar.set_description_str(f"{name}: run {index}/{len(plans)} {plan.display}")

        def report(step: int, loss: float | None, _base: int = done_before, _steps: int = steps) -> None:
            bar.set_postfix_str(f"step {step}/{_steps}" + ("" if loss is None else f" loss {loss:.4g}"),
                                refresh=False)
            bar.update(_base + min(step, _steps) - bar.n)  # redraws at most every mininterval

        timings: dict[str, float] = {}
        with quiet_lightning(not verbose):
            fresh = train_and_evaluate(plan, callbacks=[StepReporter(report)] if progress else [],
                                       progress_bar=verbose, timings=timings)
        done_before += steps
        bar.update(done_before - bar.n)
        outcomes.append(RunOutcome(plan.run_name, fresh, timings))
        if progress:
            bar.write(f"[{index}/{len(plans)}] {plan.display}: {_status(fresh, timings)}"
                      f"{_summary(plan)}")
    bar.close()
    return outcomes


def _status(fresh: bool, timings: Mapping[str, float]) -> str:
    if not fresh:
        return "reused (finished earlier)"
    return (f"trained in {timings.get('training', 0.0):.0f} s, evaluated in "
            f"{timings.get('evaluation', 0.0):.0f} s")


def _train_local_jobs(plans: list[PlannedRun], name: str, launcher: Launcher, *,
                      progress: bool, available_gpus: int | None = None
                      ) -> tuple[list[RunOutcome], dict[str, str]]:
    """Train the plans in ``launcher.jobs`` worker processes at once (see
    :mod:`losslab.experiments.parallel`); returns the outcomes and ``{run_name: error}``.

    One display: the comparison's steps done over all runs, and per running run its step.
    A failed run is reported with its one-line error and the others go on.
    """
    by_name = {plan.run_name: plan for plan in plans}
    bar = _progress_bar(sum(int(plan.config["steps"]) for plan in plans), progress=progress,
                        verbose=False)
    steps_done: dict[str, int] = {}
    running: dict[str, str] = {}
    finished = 0

    def redraw() -> None:
        bar.set_description_str(f"{name}: {finished}/{len(plans)} done, {len(running)} running")
        bar.set_postfix_str(", ".join(f"{label} {text}" for label, text in running.items()),
                            refresh=False)
        bar.update(sum(steps_done.values()) - bar.n)

    def on_message(message: Any) -> None:
        run_name, step, loss = message
        plan = by_name[run_name]
        steps = int(plan.config["steps"])
        steps_done[run_name] = min(int(step), steps)
        running[plan.display] = f"{step}/{steps}" + ("" if loss is None else f" loss {loss:.3g}")
        redraw()

    outcomes: list[RunOutcome] = []
    failures: dict[str, str] = {}

    def on_result(result: JobResult) -> None:
        nonlocal finished
        plan = by_name[result.key]
        finished += 1
        running.pop(plan.display, None)
        steps_done[result.key] = int(plan.config["steps"])
        if result.error is not None:
            failures[result.key] = result.error
            line = f"FAILED: {result.error}"
        else:
            outcomes.append(result.value)
            line = _status(result.value.fresh, result.value.timings) + _summary(plan)
        redraw()
        if progress:
            bar.write(f"[{finished}/{len(plans)}] {plan.display}: {line}")

    jobs = [Job(plan.run_name, run_plan_job, (plan,)) for plan in plans]
    run_local(jobs, launcher.jobs, devices_per_job=launcher.devices_per_job,
              on_message=on_message, on_result=on_result, available_gpus=available_gpus)
    bar.close()
    return outcomes, failures


def _train_submitit(plans: list[PlannedRun], out: Path, launcher: Launcher, *, progress: bool,
                    cluster: str) -> tuple[list[RunOutcome], dict[str, str]]:
    """Submit one job per plan through submitit (``cluster`` ``slurm``, or ``local`` in tests)
    and wait for all; returns the outcomes and ``{run_name: error}``."""
    folder = Path(launcher.folder) if launcher.folder else Path("slurm")
    folder = folder if folder.is_absolute() else out / folder
    executor = submitit_executor(folder / "%j", launcher, cluster=cluster,
                                 name=f"losslab-{out.name}")
    by_name = {plan.run_name: plan for plan in plans}
    outcomes: list[RunOutcome] = []
    failures: dict[str, str] = {}
    counter = 0

    def on_submitted(ids: Mapping[str, str]) -> None:
        if progress:
            print(f"submitted {len(ids)} job(s) ({cluster}): "
                  + ", ".join(f"{by_name[key].display} = {job}" for key, job in ids.items())
                  + f"; logs in {folder}", file=sys.stderr)

    def on_result(result: JobResult) -> None:
        nonlocal counter
        counter += 1
        plan = by_name[result.key]
        if result.error is not None:
            failures[result.key] = result.error
            line = f"FAILED: {result.error}"
        else:
            outcomes.append(result.value)
            line = _status(result.value.fresh, result.value.timings) + _summary(plan)
        if progress:
            print(f"[{counter}/{len(plans)}] {plan.display}: {line}", file=sys.stderr)

    jobs = [Job(plan.run_name, run_plan_job, (plan,)) for plan in plans]
    run_submitit(jobs, executor, on_result=on_result, on_submitted=on_submitted,
                 poll=0.5 if cluster == "local" else 10.0)
    return outcomes, failures


def _summary(plan: PlannedRun) -> str:
    """``", PSNR 24.1 dB, SSIM 0.812"`` from the run's metrics.json (empty if unreadable)."""
    path = Path(plan.config["out"]) / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    parts = []
    for key, text in (("psnr", "PSNR {:.2f} dB"), ("ssim", "SSIM {:.3f}")):
        value = metrics.get(key) if isinstance(metrics, dict) else None
        if isinstance(value, (int, float)):
            parts.append(text.format(value))
    return (", " + ", ".join(parts)) if parts else ""


SAMPLE_BASED_NOTE = ("not probed and no metamer row: a sample-based score (energy_score, crps, "
                     "kernel_score) compares a set of draws with the target; the probe and the "
                     "metamers change one image")


def _sample_based(spec: str) -> bool:
    """Whether the loss ``spec`` has a sample-based term (it scores ``(N, m, C, H, W)`` draws)."""
    built = build_loss(spec)
    terms = [part.term for part in built.weighted_terms()] if hasattr(built, "weighted_terms") \
        else [built]
    return any(getattr(term, "sample_based", False) for term in terms)


def _run_probe(plans: list[PlannedRun], out_dir: Path,
               image_size: int | None = None) -> dict[str, dict[str, Any]]:
    """Probe the runs' losses (adversarial terms left out); write probe.json/csv/png.

    ``image_size``: side of the probe's photo crops (``None``: the probe's default, 192 px, which
    5-scale MS-SSIM needs; specs that mention ``ms_ssim`` always get the default).

    Returns ``{run_name: {"spec": probed spec or None, "note": what was left out}}``.
    """
    notes: dict[str, dict[str, Any]] = {}
    specs: list[str] = []
    for plan in plans:
        spec, note = probe_spec(plan.loss)
        if spec is not None and _sample_based(spec):
            spec, note = None, SAMPLE_BASED_NOTE
        if plan.hypotheses > 1 and spec is not None:
            note = (f"probed as its per-hypothesis loss {spec!r}: the winner-takes-all minimum "
                    f"over {plan.hypotheses} outputs has no single prediction to perturb")
        notes[plan.run_name] = {"spec": spec, "note": note}
        if spec is not None and spec not in specs:
            specs.append(spec)
    if specs:
        images = None
        if image_size is not None and not any("ms_ssim" in called_losses(spec) for spec in specs):
            images = probe_module.default_probe_images(size=image_size)
        result = probe_module.run_probe(specs, images)
        probe_module.write_probe_json(result, out_dir / "probe.json")
        probe_module.write_probe_csv(result, out_dir / "probe.csv")
        probe_module.plot_probe_heatmap(result, out_dir / "probe.png")
    return notes


def _run_metamers(plans: list[PlannedRun], out_dir: Path, size: int, steps: int) -> None:
    """One metamer row per run (adversarial terms left out); writes metamers.json/png.

    The image is the bundled photo :data:`METAMER_IMAGE` at ``size`` px, or larger when a loss
    needs it (5-scale MS-SSIM: 161 px). A synthesis error is written into ``metamers.json``
    (``{"error": ...}``) for the report to show, so finished training is never lost to it.
    """
    rows: list[tuple[str, str]] = []
    notes: dict[str, str] = {}
    for plan in plans:
        spec, note = probe_spec(plan.loss)
        if spec is not None and _sample_based(spec):
            spec, note = None, SAMPLE_BASED_NOTE
        if plan.hypotheses > 1 and spec is not None:
            note = (f"shown for its per-hypothesis loss {spec!r} (a winner-takes-all minimum over "
                    f"{plan.hypotheses} outputs has no single image to synthesise)")
        if not plan.metamer:
            spec, note = None, ("no row: left out by the experiment file (metamer: false; see "
                                "the entry's note)")
        elif spec is None and note != SAMPLE_BASED_NOTE:
            note = ("no row: its only term is adversarial, a discriminator trained with the "
                    "generator, not a fixed function of (image, target)")
        elif spec is not None and spec != plan.loss and plan.hypotheses == 1:
            note = f"shown as {spec!r}: adversarial terms have no fixed value to synthesise for"
        if note:
            notes[plan.label] = note
        if spec is not None:
            rows.append((plan.label, spec))
    if not rows:
        write_json_atomic(out_dir / "metamers.json", {"error": "no loss without adversarial "
                                                               "terms to synthesise for"})
        return
    try:
        needed = max(minimum_size(build_loss(spec))[0] for _, spec in rows)
        image_size = max(size, needed)
        load_image(METAMER_IMAGE, image_size)  # fail here, not after the first row
        write_metamers(
            [spec for _, spec in rows], METAMER_IMAGE, out_dir, size=image_size,
            starts=METAMER_STARTS, steps=steps, labels=[label for label, _ in rows],
            name="metamers", title="What each loss considers equal (loss metamers)",
            extra={"notes": notes},
        )
    except (ValueError, RuntimeError, FloatingPointError, OSError) as error:
        (out_dir / "metamers.png").unlink(missing_ok=True)
        write_json_atomic(out_dir / "metamers.json", {"error": str(error), "notes": notes})


def _run_metrics(out_dir: Path, run_name: str) -> dict[str, Any]:
    path = out_dir / "runs" / run_name / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        metrics = {}
    return metrics if isinstance(metrics, dict) else {}


def _metric_row(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A run's row of the metric table; the optional rows (psnr_plausible, the sample rows of
    stochastic runs) only where the run has them."""
    return {key: metrics.get(key) for key in METRIC_KEYS
            if key in metrics or key not in ("psnr_plausible", *SAMPLE_KEYS)}


def seed_record(group: Sequence[PlannedRun], out_dir: Path) -> dict[str, Any]:
    """The seeds of one entry combined (an entry of several seeds; see
    :mod:`losslab.experiments.seeds`).

    Returns ``{"seeds": {seed: {"run_dir", metric: value...}}, "spread": {metric: {"mean", "sd",
    "min", "max", "n"}}, "headline_metric", "median_seed", "median_run_dir", "means": {...}}``;
    seeds as strings (JSON keys). A seed without ``metrics.json`` (failed) has only its
    ``run_dir`` and counts in no spread.
    """
    per_seed = {plan.seed: _run_metrics(out_dir, plan.run_name) for plan in group}
    headline = headline_metric({seed: m for seed, m in per_seed.items() if m})
    middle = median_seed(per_seed, headline)
    means, spreads = combine(per_seed, METRIC_KEYS)
    run_dirs = {plan.seed: plan.run_name for plan in group}
    return {
        "seeds": {str(seed): {"run_dir": run_dirs[seed], **_metric_row(metrics)}
                  for seed, metrics in per_seed.items()},
        "spread": spreads, "headline_metric": headline, "median_seed": middle,
        "median_run_dir": run_dirs[middle], "means": means,
    }


def collect_metrics(plans: list[PlannedRun], out_dir: Path,
                    baseline: PlannedBaseline | None = None) -> dict[str, dict[str, Any]]:
    """``{label: {"run_dir", "loss", metric: value...}}`` from each run's ``metrics.json``
    (the baseline first, with ``"baseline": true`` and an empty ``loss``).

    An entry trained with several seeds gets the mean over its seeds as each metric's value,
    ``run_dir`` = its median seed's run (the one the report's images show), and the fields of
    :func:`seed_record` (``seeds``, ``spread``, ``headline_metric``, ``median_seed``); its
    ``unavailable`` and ``notes`` are the median seed's. One seed: exactly as before.
    """
    table: dict[str, dict[str, Any]] = {}
    if baseline is not None:
        metrics = _run_metrics(out_dir, baseline.run_name)
        table[baseline.label] = {"run_dir": baseline.run_name, "loss": "", "baseline": True,
                                 **_metric_row(metrics),
                                 "unavailable": metrics.get("unavailable", {}),
                                 "notes": metrics.get("notes", {})}
    for group in entry_groups(plans):
        first = group[0]
        if len(group) == 1:
            metrics = _run_metrics(out_dir, first.run_name)
            row: dict[str, Any] = {"run_dir": first.run_name, "loss": first.loss,
                                   **_metric_row(metrics)}
        else:
            record = seed_record(group, out_dir)
            metrics = _run_metrics(out_dir, record["median_run_dir"])
            means = record.pop("means")
            row = {"run_dir": record["median_run_dir"], "loss": first.loss,
                   **{key: means.get(key) for key in _metric_row(metrics) | means}}
            row.update({key: record[key] for key in ("headline_metric", "median_seed")})
            row["seed_list"] = ",".join(str(plan.seed) for plan in group)  # a CSV column
            row["seeds"] = record["seeds"]
            row["spread"] = record["spread"]
        row["unavailable"] = metrics.get("unavailable", {})
        row["notes"] = metrics.get("notes", {})
        table[first.label] = row
    return table


def _write_experiment_yaml(experiment: Experiment, out_dir: Path) -> None:
    write_text_atomic(out_dir / "experiment.yaml", experiment.to_yaml())


def resolve_launcher(experiment: Experiment, launcher: Launcher | Mapping[str, Any] | None,
                     jobs: int | None) -> Launcher:
    """The experiment's ``launcher:`` section with the command line's choices over it."""
    values = experiment.launcher.model_dump()
    if isinstance(launcher, Launcher):
        values = launcher.model_dump()
    elif launcher is not None:
        values.update({key: value for key, value in launcher.items() if value is not None})
    if jobs is not None:
        values["jobs"] = jobs
    return validated(Launcher, values, what="launcher", origin="launcher options",
                     error=ExperimentError)


def _entry_json(group: Sequence[PlannedRun], weights: Mapping[str, list[str]],
                probe_notes: Mapping[str, Mapping[str, Any]],
                table: Mapping[str, Mapping[str, Any]],
                timings: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    first = group[0]
    item: dict[str, Any] = {
        "label": first.label, "run_dir": first.run_name, "loss": first.loss, "baseline": False,
        "hypotheses": first.hypotheses, "note": first.note, "steps": first.config["steps"],
        "weights": weights.get(first.run_name, []),
        "probe_spec": probe_notes[first.run_name]["spec"],
        "probe_note": probe_notes[first.run_name]["note"],
    }
    if len(group) > 1:  # several seeds: the record of every seed, the spread, the median run
        row = table[first.label]
        item["run_dir"] = row["run_dir"]
        item.update({key: row[key] for key in ("seeds", "spread", "headline_metric",
                                               "median_seed")})
        item["entry_dir"] = first.entry_run_name
    seconds = {plan.run_name: dict(timings[plan.run_name]) for plan in group
               if timings.get(plan.run_name)}
    if seconds:
        item["timings"] = seconds
    return item


def _timing_line(timings: Mapping[str, float]) -> str:
    order = ("runs", "training", "evaluation", "baseline", "probe", "metamers", "total")
    names = {"runs": "runs (wall)", "training": "training (sum)",
             "evaluation": "evaluation (sum)"}
    return ", ".join(f"{names.get(key, key)} {timings[key]:.0f} s" for key in order
                     if key in timings)


def run_comparison(
    experiment: str | Path | Experiment,
    out_dir: str | Path | None = None,
    *,
    steps: int | None = None,
    budget_scale: float = 1.0,
    perceptual_weights: str | None = None,
    seeds: Sequence[int] | None = None,
    jobs: int | None = None,
    launcher: Launcher | Mapping[str, Any] | None = None,
    submitit_cluster: str = "slurm",
    probe: bool = True,
    probe_image_size: int | None = 96,
    metamers: bool = True,
    metamer_image_size: int = 64,
    metamer_steps: int = 150,
    progress: bool = True,
    verbose: bool = False,
) -> Path:
    """Train one model per loss of an experiment, evaluate and probe them; write the results.

    The HTML report is not built here: pass the returned directory to
    :func:`losslab.report.build_report` (``losslab compare`` does both).

    Args:
        experiment: a shipped name (``"colors"``), a YAML path or an :class:`Experiment`.
        out_dir: the comparison directory (default ``runs/<experiment name>``); re-running into
            the same directory continues where a previous call stopped. One process at a time
            (``DIR/.lock``, :mod:`losslab.experiments.lock`).
        steps: replaces every run's step budget.
        budget_scale: multiplies every run's steps (e.g. 10 on a GPU).
        perceptual_weights: ``imagenet``, ``random`` or ``auto`` for ``perceptual`` terms that
            name none (see :func:`resolve_budget`).
        seeds: train every entry once per seed (overrides the experiment's ``seeds``; see
            :mod:`losslab.experiments.seeds`); the tables then hold means with their spread.
        jobs: runs at once on this machine (overrides ``launcher.jobs``).
        launcher: the experiment's ``launcher:`` fields to override (a mapping; ``None``
            values are ignored) or a whole :class:`~losslab.experiments.schema.Launcher`.
        submitit_cluster: the submitit cluster of ``launcher.name == "slurm"``: ``"slurm"``,
            or ``"local"`` (submitit's ``LocalExecutor``: the same path without a cluster).
        probe: run the loss probe on the same specs (``probe.json/csv/png``).
        probe_image_size: side of the probe's photo crops in pixels (96 keeps deep feature
            losses cheap on a CPU; ``None`` = the probe's default 192 px; specs with ``ms_ssim``
            always use the default, which 5-scale MS-SSIM needs).
        metamers: synthesise one loss metamer row per entry (``metamers.json/png``, the
            report's "What each loss considers equal"); adversarial terms are left out.
        metamer_image_size: side of the metamers' target photo in pixels (raised to what a
            loss needs, e.g. 161 px for 5-scale MS-SSIM).
        metamer_steps: optimisation steps per metamer.
        progress: show one progress display for the whole comparison (run k of n, step, loss,
            time left) and one line per finished run.
        verbose: show each run's own Lightning progress bar, messages and warnings instead.

    Returns:
        the comparison directory ``DIR``, complete on disk (``comparison.json`` written last,
        with ``timings``: seconds spent training, evaluating, probing, synthesising metamers).

    Raises:
        RunsFailedError: with ``jobs > 1`` or a cluster launcher, some runs failed; everything
            else was written first (the failed runs are missing from the tables).
        ComparisonLocked: another live process is running a comparison into ``DIR``.
    """
    started = time.perf_counter()
    resolved = resolve_budget(resolve_experiment(experiment), steps=steps,
                              budget_scale=budget_scale, perceptual_weights=perceptual_weights)
    if seeds is not None:
        resolved = resolved.model_copy(update={"seeds": parse_seeds(seeds)})
    chosen = resolve_launcher(resolved, launcher, jobs)
    resolved = resolved.model_copy(update={"launcher": chosen})
    out = Path(out_dir) if out_dir is not None else Path("runs") / resolved.name
    plans = plan_runs(resolved, out)
    weights = preflight(plans)
    with ComparisonLock(out):
        _write_experiment_yaml(resolved, out)
        timings: dict[str, float] = {}
        run_timings: dict[str, dict[str, float]] = {}
        failures: dict[str, str] = {}
        clock = time.perf_counter()
        if chosen.name == "local" and chosen.jobs == 1:
            outcomes = _train_all(plans, resolved.name, progress=progress, verbose=verbose)
        else:
            # finished runs are checked here, so a reused run starts no process and no job
            todo = [plan for plan in plans
                    if not ((Path(plan.config["out"]) / DONE_FILE).is_file()
                            and _check_reusable(Path(plan.config["out"]), plan))]
            if chosen.name == "slurm":
                outcomes, failures = _train_submitit(todo, out, chosen, progress=progress,
                                                     cluster=submitit_cluster)
            else:
                outcomes, failures = _train_local_jobs(todo, resolved.name, chosen,
                                                       progress=progress)
        timings["runs"] = time.perf_counter() - clock
        for outcome in outcomes:
            run_timings[outcome.run_name] = outcome.timings
        for key in ("training", "evaluation"):
            timings[key] = sum(t.get(key, 0.0) for t in run_timings.values())
        trained = [outcome.run_name for outcome in outcomes if outcome.fresh]

        entries = [group[0] for group in entry_groups(plans)]  # one per entry: probe, metamers
        baseline = plan_baseline(resolved, plans)
        clock = time.perf_counter()
        if baseline is not None:
            baseline_dir = out / "runs" / baseline.run_name
            evaluate_baseline(_train_config(plans[0]), baseline_dir)
            write_done(baseline_dir, {"label": baseline.label, "baseline": True,
                                      "description": baseline.description,
                                      "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
            timings["baseline"] = time.perf_counter() - clock

        clock = time.perf_counter()
        probe_notes = _run_probe(entries, out, probe_image_size) if probe else {
            plan.run_name: {"spec": None, "note": "probe skipped (probe=False)"}
            for plan in entries}
        if probe:
            timings["probe"] = time.perf_counter() - clock
        if metamers:
            clock = time.perf_counter()
            _run_metamers(entries, out, metamer_image_size, metamer_steps)
            timings["metamers"] = time.perf_counter() - clock
        table = collect_metrics(plans, out, baseline)
        write_json_atomic(out / "metrics.json", table)
        write_metrics_csv(out / "metrics.csv", table, first_columns=("name", "run_dir", "loss"))
        timings["total"] = time.perf_counter() - started
        write_json_atomic(out / "comparison.json", {
            "experiment": resolved.name,
            "perceptual_weights": resolved.perceptual_weights,
            "seeds": [plan.seed for plan in entry_groups(plans)[0]],
            "runs": ([] if baseline is None else [{
                "label": baseline.label,
                "run_dir": baseline.run_name,
                "loss": "",
                "baseline": True,
                "hypotheses": 1,
                "note": baseline.description,
                "steps": 0,
                "weights": [],
                "probe_spec": None,
                "probe_note": "",
            }]) + [_entry_json(group, weights, probe_notes, table, run_timings)
                   for group in entry_groups(plans)],
            "trained_this_call": trained,
            "failed": failures,
            "timings": {key: round(value, 2) for key, value in timings.items()},
        })
    if progress:
        print(f"{resolved.name}: time: {_timing_line(timings)}", file=sys.stderr)
    if failures:
        raise RunsFailedError(out, failures)
    return out
