"""Run a comparison's trainings side by side: local worker processes or SLURM jobs (submitit).

A comparison is many independent runs (entries x seeds). This module starts them and collects
what each returned or why it failed; it knows nothing about what a run is (the runner passes
one picklable function and its arguments per run).

- :func:`run_local` (``losslab compare --jobs N``): up to ``N`` runs at once on this machine,
  each in its own process. Processes, not threads: torch training holds the GIL in Python code
  between kernels, and the thread rule (:mod:`losslab.train.threads`) counts processes.
  :class:`concurrent.futures.ProcessPoolExecutor` with the ``forkserver`` context (``spawn``
  where there is none: clean processes, no forked copy of a parent that may hold OpenMP or
  CUDA state; see :func:`_context`) and
  ``max_tasks_per_child=1`` (so every run starts a fresh process whose ``CUDA_VISIBLE_DEVICES``
  can still be set before CUDA starts) was chosen over submitit's local executor for this path
  because it streams progress through a queue and needs no job folder; submitit is used for
  clusters, where its job handling is the point.
  With GPUs each job gets ``devices_per_job`` of them (``CUDA_VISIBLE_DEVICES``); on a CPU
  every training process registers with the thread rule, so ``N`` jobs share the cores
  (``cores // N`` threads each unless ``LOSSLAB_THREADS`` / ``OMP_NUM_THREADS`` fix it).
- :func:`run_submitit` (``losslab compare --launcher slurm``): one job per run through
  ``submitit.AutoExecutor`` (cluster ``slurm``; tests pass ``local``, submitit's
  ``LocalExecutor``, so the same code path runs without a cluster).

A failed run never stops the others: its :class:`JobResult` carries a one-line error.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Seconds between looks at the running jobs (progress messages, finished jobs).
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Job:
    """One run to start: a key naming it, a picklable top-level function and its arguments.

    The function is called as ``function(*args, env=..., messages=...)``: ``env`` holds the
    environment variables to set first (``CUDA_VISIBLE_DEVICES``), ``messages`` is a queue for
    progress tuples (``None`` where nobody listens, e.g. on a cluster).
    """

    key: str
    function: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class JobResult:
    """What one job returned, or the one-line error it failed with (``value`` is then ``None``)."""

    key: str
    value: Any = None
    error: str | None = None


def one_line_error(error: BaseException) -> str:
    """``"TypeName: first line of the message"``: what a summary shows for a failed run."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def visible_device_groups(jobs: int, devices_per_job: int,
                          available: int | None = None) -> list[str | None]:
    """One ``CUDA_VISIBLE_DEVICES`` value per job slot (``None``: no GPU, leave it unset).

    ``available`` GPUs (default: what torch sees) are handed out ``devices_per_job`` at a time,
    ``"0,1"``, ``"2,3"``, ...; without GPUs every slot is ``None`` (CPU jobs share the cores by
    the thread rule).

    Raises:
        ValueError: GPUs exist but fewer than ``jobs * devices_per_job``; the message says which
            ``--jobs`` fits.
    """
    if available is None:
        import torch  # only the parent asks, once; torch is imported by then anyway

        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available == 0:
        return [None] * jobs
    if jobs * devices_per_job > available:
        raise ValueError(
            f"--jobs {jobs} with --devices-per-job {devices_per_job} needs "
            f"{jobs * devices_per_job} GPUs; this machine has {available}. Use --jobs "
            f"{max(1, available // devices_per_job)} or fewer devices per job.")
    return [",".join(str(slot * devices_per_job + k) for k in range(devices_per_job))
            for slot in range(jobs)]


def _context(preload: Sequence[str]) -> Any:
    """``forkserver`` where the platform has it, else ``spawn``.

    Both give each worker a clean process (no copy of this one's OpenMP threads, CUDA context
    or locks). ``forkserver`` imports the job functions' modules (torch, Lightning, losslab)
    once in its server and forks every worker from it; under ``spawn`` every worker imports
    them again, which cost about 25 s per run on a busy 2-core machine (measured: a 4-run
    comparison of 0.5 s runs took 128 s with spawn).
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(preload))
        return context
    return multiprocessing.get_context("spawn")


def run_local(jobs: Sequence[Job], workers: int, *, devices_per_job: int = 1,
              on_message: Callable[[Any], None] | None = None,
              on_result: Callable[[JobResult], None] | None = None,
              available_gpus: int | None = None) -> dict[str, JobResult]:
    """Run ``jobs`` in up to ``workers`` fresh processes at once; returns ``{key: result}``.

    Args:
        devices_per_job: GPUs per job (see :func:`visible_device_groups`).
        on_message: called in this process with every progress message a job puts on its queue.
        on_result: called when a job ends (in the order they end).
        available_gpus: GPUs to hand out (default: what torch sees; tests pass 0).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"jobs must be a positive integer; got {workers!r}.")
    workers = min(workers, max(1, len(jobs)))
    free: list[str | None] = visible_device_groups(workers, devices_per_job, available_gpus)
    context = _context(sorted({job.function.__module__ for job in jobs}))
    results: dict[str, JobResult] = {}
    pending = list(jobs)
    running: dict[Future[Any], tuple[Job, str | None]] = {}
    with context.Manager() as manager, ProcessPoolExecutor(
            max_workers=workers, mp_context=context, max_tasks_per_child=1) as pool:
        messages = manager.Queue()

        def drain() -> None:
            while True:
                try:
                    message = messages.get_nowait()
                except (queue_module.Empty, OSError, EOFError):
                    return
                if on_message is not None:
                    on_message(message)

        while pending or running:
            while pending and free:
                job = pending.pop(0)
                devices = free.pop(0)
                env = {} if devices is None else {"CUDA_VISIBLE_DEVICES": devices}
                future = pool.submit(job.function, *job.args, env=env, messages=messages)
                running[future] = (job, devices)
            finished, _ = wait(running, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            drain()
            for future in finished:
                job, devices = running.pop(future)
                free.append(devices)
                error = future.exception()
                result = (JobResult(job.key, error=one_line_error(error)) if error is not None
                          else JobResult(job.key, value=future.result()))
                results[job.key] = result
                if on_result is not None:
                    on_result(result)
        drain()
    return results


def submitit_executor(folder: str | Path, launcher: Any, *, cluster: str = "slurm",
                      name: str = "losslab") -> Any:
    """A configured ``submitit.AutoExecutor`` for ``launcher`` (the experiment's
    :class:`~losslab.experiments.schema.Launcher`): time, GPUs, CPUs, memory, partition.

    ``cluster="local"`` gives submitit's ``LocalExecutor`` (tests, a machine without SLURM);
    the slurm-only options (partition) are then ignored by submitit.
    """
    try:
        import submitit  # an optional dependency, only needed for cluster launches
    except ImportError:
        raise ValueError("--launcher slurm needs the submitit package: pip install "
                         "'losslab[slurm]' (or pip install submitit).") from None

    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    parameters: dict[str, Any] = {
        "name": name, "timeout_min": int(launcher.time), "gpus_per_node": int(launcher.gpus_per_job),
        "cpus_per_task": int(launcher.cpus_per_job), "tasks_per_node": 1, "nodes": 1,
    }
    if launcher.mem_gb is not None:
        parameters["mem_gb"] = int(launcher.mem_gb)
    if launcher.partition is not None:
        parameters["slurm_partition"] = launcher.partition
    executor.update_parameters(**parameters)
    return executor


def run_submitit(jobs: Sequence[Job], executor: Any, *,
                 on_result: Callable[[JobResult], None] | None = None,
                 on_submitted: Callable[[Mapping[str, str]], None] | None = None,
                 poll: float = 2.0) -> dict[str, JobResult]:
    """Submit one job per run through a submitit executor and wait until every one ends.

    ``on_submitted`` gets ``{key: job id}`` once all are submitted (the console names them, so a
    user can follow them with ``squeue``). A job that fails (an exception in the run, a time
    limit, a node failure) gives a :class:`JobResult` with its one-line error.
    """
    submitted = [(job, executor.submit(job.function, *job.args, env={}, messages=None))
                 for job in jobs]
    if on_submitted is not None:
        on_submitted({job.key: str(handle.job_id) for job, handle in submitted})
    results: dict[str, JobResult] = {}
    waiting = list(submitted)
    while waiting:
        still = []
        for job, handle in waiting:
            if not handle.done():
                still.append((job, handle))
                continue
            try:
                result = JobResult(job.key, value=handle.result())
            except Exception as error:  # the run's own error, or submitit's (timeout, node)
                result = JobResult(job.key, error=one_line_error(_unwrap(error)))
            results[job.key] = result
            if on_result is not None:
                on_result(result)
        waiting = still
        if waiting:
            time.sleep(poll)
    return results


def _unwrap(error: BaseException) -> BaseException:
    """submitit re-raises a job's exception inside a ``FailedJobError`` whose message is the
    remote traceback; the last line of that traceback is the run's own one-line error."""
    text = str(error).strip().splitlines()
    if type(error).__name__ == "FailedJobError" and text:
        for line in reversed(text):
            if line and not line.startswith(" ") and ":" in line:
                return RuntimeError(line)
    return error


def apply_environment(env: Mapping[str, str]) -> None:
    """Set a job's environment (``CUDA_VISIBLE_DEVICES``) first thing in its process."""
    os.environ.update(env)


__all__ = ["Job", "JobResult", "apply_environment", "one_line_error", "run_local",
           "run_submitit", "submitit_executor", "visible_device_groups"]
