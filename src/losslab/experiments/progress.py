"""The progress loop: train the planned runs one at a time, in worker processes or as cluster
jobs, under one progress display with one line per finished run."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from losslab.core.records import METRICS_FILE
from losslab.experiments.parallel import Job, JobResult, run_local, run_submitit, submitit_executor
from losslab.experiments.planning import PlannedRun
from losslab.experiments.schema import Launcher
from losslab.experiments.training import RunOutcome, run_plan_job, train_and_evaluate
from losslab.train import StepReporter, quiet_lightning


def _progress_bar(total: int, *, progress: bool, verbose: bool) -> Any:
    # On a terminal the line is redrawn in place; in a log file (CI, nohup) every redraw is a new
    # line, so redraw at most every 30 s there instead of every few steps.
    interactive = sys.stderr.isatty()
    return tqdm(total=total, unit="step", disable=not progress or verbose, dynamic_ncols=True,
                mininterval=0.2 if interactive else 30.0, miniters=1,
                bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")


def train_all(plans: list[PlannedRun], name: str, *, progress: bool, verbose: bool
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


def train_local_jobs(plans: list[PlannedRun], name: str, launcher: Launcher, *,
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
        line = _record_result(result, plan, outcomes, failures)
        redraw()
        if progress:
            bar.write(f"[{finished}/{len(plans)}] {plan.display}: {line}")

    jobs = [Job(plan.run_name, run_plan_job, (plan,)) for plan in plans]
    run_local(jobs, launcher.jobs, devices_per_job=launcher.devices_per_job,
              on_message=on_message, on_result=on_result, available_gpus=available_gpus)
    bar.close()
    return outcomes, failures


def train_submitit(plans: list[PlannedRun], out: Path, launcher: Launcher, *, progress: bool,
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
        line = _record_result(result, plan, outcomes, failures)
        if progress:
            print(f"[{counter}/{len(plans)}] {plan.display}: {line}", file=sys.stderr)

    jobs = [Job(plan.run_name, run_plan_job, (plan,)) for plan in plans]
    run_submitit(jobs, executor, on_result=on_result, on_submitted=on_submitted,
                 poll=0.5 if cluster == "local" else 10.0)
    return outcomes, failures


def _record_result(result: JobResult, plan: PlannedRun, outcomes: list[RunOutcome],
                   failures: dict[str, str]) -> str:
    """File a finished job under ``outcomes`` or ``failures`` (by run name); returns the line
    the progress display prints for it (both launchers use the same wording)."""
    if result.error is not None:
        failures[result.key] = result.error
        return f"FAILED: {result.error}"
    outcomes.append(result.value)
    return _status(result.value.fresh, result.value.timings) + _summary(plan)


def _summary(plan: PlannedRun) -> str:
    """``", PSNR 24.1 dB, SSIM 0.812"`` from the run's metrics.json (empty if unreadable)."""
    path = Path(plan.config["out"]) / METRICS_FILE
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


