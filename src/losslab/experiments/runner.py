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

This module puts the steps together; each has its own module: the budget
(:mod:`~losslab.experiments.budget`), planning (:mod:`~losslab.experiments.planning`),
preflight (:mod:`~losslab.experiments.preflight`), the reuse protocol
(:mod:`~losslab.experiments.reuse`), one run (:mod:`~losslab.experiments.training`), the progress
loop (:mod:`~losslab.experiments.progress`), the probe (:mod:`~losslab.experiments.probing`), the
metamers (:mod:`~losslab.experiments.metamers`) and the record
(:mod:`~losslab.experiments.record`; the file names and record types are
:mod:`losslab.core.records`, which the report reads with).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from losslab.core.atomic import write_text_atomic
from losslab.core.records import (
    COMPARISON_FILE,
    EXPERIMENT_FILE,
    METRICS_CSV,
    METRICS_FILE,
    RUNS_DIR,
    DoneMarker,
)
from losslab.experiments.budget import auto_perceptual_weights, resolve_budget, resolve_launcher
from losslab.experiments.evaluate import evaluate_baseline, write_json_atomic, write_metrics_csv
from losslab.experiments.lock import ComparisonLock
from losslab.experiments.metamers import METAMER_IMAGE, METAMER_STARTS, run_metamers
from losslab.experiments.planning import (
    PlannedBaseline,
    PlannedRun,
    entry_groups,
    plan_baseline,
    plan_runs,
    train_config,
)
from losslab.experiments.preflight import LossFacts, preflight
from losslab.experiments.probing import run_probe
from losslab.experiments.progress import train_all, train_local_jobs, train_submitit
from losslab.experiments.record import (
    collect_metrics,
    comparison_record,
    entry_record,
    seed_record,
)
from losslab.experiments.reuse import is_reusable, write_done
from losslab.experiments.schema import Experiment, ExperimentError, Launcher, resolve_experiment
from losslab.experiments.seeds import parse_seeds
from losslab.experiments.training import RunOutcome, run_plan_job, train_and_evaluate

__all__ = [
    "METAMER_IMAGE", "METAMER_STARTS", "PlannedBaseline", "PlannedRun", "RunOutcome",
    "RunsFailedError", "auto_perceptual_weights", "collect_metrics", "entry_groups",
    "plan_baseline", "plan_runs", "preflight", "resolve_budget", "resolve_launcher",
    "run_comparison", "run_plan_job", "seed_record", "train_and_evaluate", "write_done",
]


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
    facts: dict[str, LossFacts] = {}
    weights = preflight(plans, facts)  # every TrainConfig validated and loss built, once
    with ComparisonLock(out):
        write_text_atomic(out / EXPERIMENT_FILE, resolved.to_yaml())
        timings: dict[str, float] = {}
        run_timings: dict[str, dict[str, float]] = {}
        failures: dict[str, str] = {}
        clock = time.perf_counter()
        if chosen.name == "local" and chosen.jobs == 1:
            outcomes = train_all(plans, resolved.name, progress=progress, verbose=verbose)
        else:
            # finished runs are checked here, so a reused run starts no process and no job
            todo = [plan for plan in plans if not is_reusable(plan)]
            if chosen.name == "slurm":
                outcomes, failures = train_submitit(todo, out, chosen, progress=progress,
                                                    cluster=submitit_cluster)
            else:
                outcomes, failures = train_local_jobs(todo, resolved.name, chosen,
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
            baseline_dir = out / RUNS_DIR / baseline.run_name
            evaluate_baseline(train_config(plans[0]), baseline_dir)
            write_done(baseline_dir, DoneMarker(
                label=baseline.label, baseline=True, description=baseline.description,
                finished=time.strftime("%Y-%m-%dT%H:%M:%S")).dump())
            timings["baseline"] = time.perf_counter() - clock

        clock = time.perf_counter()
        probe_notes = run_probe(entries, out, probe_image_size, facts) if probe else {
            plan.run_name: {"spec": None, "note": "probe skipped (probe=False)"}
            for plan in entries}
        if probe:
            timings["probe"] = time.perf_counter() - clock
        if metamers:
            clock = time.perf_counter()
            run_metamers(entries, out, metamer_image_size, metamer_steps, facts)
            timings["metamers"] = time.perf_counter() - clock
        table = collect_metrics(plans, out, baseline)
        write_json_atomic(out / METRICS_FILE, table)
        write_metrics_csv(out / METRICS_CSV, table, first_columns=("name", "run_dir", "loss"))
        timings["total"] = time.perf_counter() - started
        record = comparison_record(
            resolved.name, resolved.perceptual_weights, plans, baseline,
            [entry_record(group, weights, probe_notes, table, run_timings)
             for group in entry_groups(plans)],
            trained=trained, failed=failures, timings=timings)
        write_json_atomic(out / COMPARISON_FILE, record.dump())
    if progress:
        print(f"{resolved.name}: time: {_timing_line(timings)}", file=sys.stderr)
    if failures:
        raise RunsFailedError(out, failures)
    return out
