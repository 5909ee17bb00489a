"""Training and evaluating one planned run (here, in a worker process or in a cluster job)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from losslab.experiments.evaluate import evaluate_run
from losslab.experiments.parallel import apply_environment
from losslab.experiments.planning import PlannedRun, train_config
from losslab.experiments.reuse import done_payload, is_reusable, other_sample_count, write_done
from losslab.train import StepReporter, quiet_lightning, train
from losslab.train.config import save_config


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
    if is_reusable(plan):
        if other_sample_count(run_dir, plan.samples):  # evaluation only; the training stands
            evaluate_run(run_dir, samples=plan.samples)
        return False
    config = train_config(plan)  # validated once, by preflight; this is a copy
    if progress_bar is not None and progress_bar != config.progress_bar:
        config.progress_bar = progress_bar  # a validated assignment of a resume-safe field
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
    write_done(run_dir, done_payload(plan))
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


