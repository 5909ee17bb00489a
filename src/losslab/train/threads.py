"""Share the CPU cores between concurrent losslab processes instead of oversubscribing them.

torch starts one intra-op thread per core in every process. Two training processes on a 2-core
machine then run 4 busy threads on 2 cores, and each ran 7x slower than alone (issue 11), far
worse than the 2x that sharing the cores would cost. The rule:

    threads = max(1, usable cores // losslab trainings running)

Every losslab training process registers its PID in a per-user folder under the system's
temporary directory; the count is re-read every 5 s during training (dead PIDs are removed), so a
process that starts beside another drops to its share and a process left alone takes the whole
machine again. Data-loader workers (``data.num_workers``, default 0) are separate processes that
torch limits to one thread each.

The rule only knows about losslab processes. An earlier version also subtracted the 1-minute load
average (other programs' busy cores); it was removed because the load average still counts
processes that ended up to minutes ago (and a container may see the host's), which cut a lone
``compare colors`` on a quiet machine to one thread and doubled its time. When other heavy
programs share the machine, set ``OMP_NUM_THREADS`` (or ``LOSSLAB_THREADS``): either switches the
rule off and fixes the thread count. A fixed count also makes runs bit-for-bit repeatable across
machine loads (torch's CPU kernels may sum in a different order with another thread count).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

#: Environment variables that fix the thread count (the rule then stays out of the way).
FIXED_THREADS_ENV = ("LOSSLAB_THREADS", "OMP_NUM_THREADS")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def registry_dir() -> Path:
    """The per-user folder holding one file per running losslab training process."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"losslab-{user}" / "training"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process with the same PID: alive
        return True
    except OSError:
        return False
    return True


def running_processes(directory: Path | None = None) -> int:
    """How many registered losslab training processes are alive (stale entries are removed)."""
    directory = registry_dir() if directory is None else directory
    count = 0
    try:
        entries = list(directory.iterdir())
    except OSError:
        return 0
    for entry in entries:
        try:
            pid = int(entry.name)
        except ValueError:
            continue
        if _alive(pid):
            count += 1
        else:
            entry.unlink(missing_ok=True)
    return count


def fair_threads(cores: int, processes: int) -> int:
    """Threads for one of ``processes`` concurrent losslab trainings on ``cores`` cores:
    ``max(1, cores // processes)``."""
    return max(1, cores // max(1, processes))


class ShareCores(L.Callback):
    """Keep this process's torch threads at its fair share while it trains (see module doc).

    Args:
        every: seconds between re-counts of the running losslab processes.
        directory: the registry folder (default :func:`registry_dir`; tests pass their own).
    """

    def __init__(self, every: float = 5.0, directory: Path | None = None) -> None:
        self.every = every
        self.directory = registry_dir() if directory is None else directory
        self.fixed = any(os.environ.get(name) for name in FIXED_THREADS_ENV)
        self._entry: Path | None = None
        self._checked = 0.0
        self._original = torch.get_num_threads()

    def register(self) -> None:
        """Add this process to the registry and take its share now."""
        if self.fixed:
            threads = os.environ.get("LOSSLAB_THREADS")
            if threads and threads.isdigit() and int(threads) > 0:
                torch.set_num_threads(int(threads))
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._entry = self.directory / str(os.getpid())
            self._entry.touch()
        except OSError:  # an unwritable temp dir: keep torch's default
            self._entry = None
            return
        self.rebalance()

    def rebalance(self) -> int:
        """Set torch's thread count to the fair share now; returns it."""
        self._checked = time.monotonic()
        threads = fair_threads(usable_cores(), running_processes(self.directory))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        return threads

    def unregister(self) -> None:
        """Leave the registry and restore the thread count found at construction."""
        if self._entry is not None:
            self._entry.unlink(missing_ok=True)
            self._entry = None
            torch.set_num_threads(self._original)

    # -- Lightning hooks ------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self.register()

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        if self._entry is not None and time.monotonic() - self._checked >= self.every:
            self.rebalance()

    def teardown(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self.unregister()


__all__ = ["ShareCores", "fair_threads", "registry_dir", "running_processes",
           "usable_cores"]
