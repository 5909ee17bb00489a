"""The thread rule for concurrent losslab processes: each takes cores // processes threads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from losslab.train.threads import ShareCores, fair_threads, running_processes


def test_fair_share_divides_the_cores_and_never_drops_below_one() -> None:
    assert [fair_threads(8, n) for n in (0, 1, 2, 3, 4, 16)] == [8, 8, 4, 2, 2, 1]
    assert fair_threads(2, 2) == 1 and fair_threads(1, 1) == 1


def test_dead_entries_are_removed_and_live_ones_counted(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    (tmp_path / finished.stdout.strip()).touch()  # a process that has exited
    (tmp_path / str(os.getpid())).touch()
    (tmp_path / "not-a-pid").touch()
    assert running_processes(tmp_path) == 1
    assert not (tmp_path / finished.stdout.strip()).exists()


def test_a_second_process_halves_the_threads_and_leaving_restores_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OMP_NUM_THREADS", "LOSSLAB_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("losslab.train.threads.usable_cores", lambda: 4)
    before = torch.get_num_threads()
    share = ShareCores(every=0.0, directory=tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        share.register()
        assert torch.get_num_threads() == 4  # alone: every core
        (tmp_path / str(other.pid)).touch()  # another losslab training starts
        assert share.rebalance() == 2 and torch.get_num_threads() == 2
        other.kill()
        other.wait()
        assert share.rebalance() == 4  # alone again
    finally:
        other.kill()
        share.unregister()
    assert torch.get_num_threads() == before
    assert list(tmp_path.iterdir()) == []


def test_a_fixed_thread_count_switches_the_rule_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOSSLAB_THREADS", "1")
    before = torch.get_num_threads()
    share = ShareCores(directory=tmp_path)
    try:
        share.register()
        assert torch.get_num_threads() == 1 and list(tmp_path.iterdir()) == []
    finally:
        torch.set_num_threads(before)
