"""One losslab compare per comparison directory: DIR/.lock with the holder's PID and host."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from losslab.cli import main
from losslab.experiments.lock import LOCK_FILE, ComparisonLock, ComparisonLocked


def _write_lock(directory: Path, pid: int, host: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    path.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                "started": "2026-01-01T00:00:00"}))
    return path


@pytest.fixture
def holder():
    """A live process standing in for another losslab compare."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def test_the_lock_holds_the_pid_and_is_removed_on_exit(tmp_path: Path) -> None:
    with ComparisonLock(tmp_path) as lock:
        stored = json.loads(lock.path.read_text())
        assert stored["pid"] == os.getpid() and stored["host"] == socket.gethostname()
        with pytest.raises(ComparisonLocked, match=rf"in use by losslab process {os.getpid()} "
                                                   "on this machine"):
            ComparisonLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_live_holder_refuses_and_a_dead_one_is_stale(tmp_path: Path, holder) -> None:
    _write_lock(tmp_path, holder.pid)
    with pytest.raises(ComparisonLocked, match=rf"process {holder.pid} on this machine .*delete "):
        ComparisonLock(tmp_path).acquire()
    holder.kill()
    holder.wait()
    with ComparisonLock(tmp_path) as lock:  # the holder is gone: its lock is taken over
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()


def test_a_lock_from_another_host_is_not_second_guessed(tmp_path: Path) -> None:
    _write_lock(tmp_path, 1, host="elsewhere.example")
    with pytest.raises(ComparisonLocked, match=r"process 1 on host elsewhere\.example"):
        ComparisonLock(tmp_path).acquire()


def test_a_second_compare_on_the_same_out_exits_with_one_line(
        tmp_path: Path, holder, capsys: pytest.CaptureFixture[str]) -> None:
    _write_lock(tmp_path, holder.pid)
    code = main(["compare", "colors", "--out", str(tmp_path), "--steps", "1"])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert len(error.splitlines()) == 1
    assert f"is in use by losslab process {holder.pid}" in error
    assert not (tmp_path / "runs").exists()  # nothing trained


def test_a_ddp_rank_started_by_the_locked_command_takes_no_lock(
        tmp_path: Path, holder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning starts ranks 1.. by running the parent's command again, under its lock."""
    path = _write_lock(tmp_path, holder.pid)
    monkeypatch.setenv("LOCAL_RANK", "1")
    with ComparisonLock(tmp_path) as lock:
        assert not lock.held
    assert json.loads(path.read_text())["pid"] == holder.pid  # the parent's lock is kept
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ComparisonLocked):
        ComparisonLock(tmp_path).acquire()
