"""One ``losslab compare`` per comparison directory at a time: ``DIR/.lock``.

Two processes training into the same ``--out`` would write the same run directories (the same
checkpoints, the same ``DONE`` markers). The first takes the lock: ``DIR/.lock`` is created
exclusively (``O_CREAT | O_EXCL``, atomic on local file systems) and holds the holder's PID,
host and start time as JSON. A second process is refused with one line naming the holder. A
lock whose holder is gone (same host, PID no longer alive) is stale: it is removed and taken.
A lock from another host cannot be checked from here; the message says how to remove it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from losslab.experiments.schema import ExperimentError

LOCK_FILE = ".lock"


class ComparisonLocked(ExperimentError):
    """Another live process holds the comparison directory's lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except OSError:
        return False
    return True


def _ddp_child() -> bool:
    return any(os.environ.get(name, "0") not in ("", "0") for name in ("LOCAL_RANK", "NODE_RANK"))


class ComparisonLock:
    """Context manager holding ``DIR/.lock`` while a comparison trains into ``DIR``.

    Raises:
        ComparisonLocked: (on enter) a live process on this host, or any process on another
            host, holds it; the message names its PID, host and start time.
    """

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / LOCK_FILE
        self.held = False

    def _holder(self) -> dict[str, object] | None:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def acquire(self) -> None:
        """Take the lock, removing a stale one first (see the module doc).

        A DDP rank other than 0 (``LOCAL_RANK`` or ``NODE_RANK`` set and not 0) takes no lock:
        Lightning starts it by running the locked command again, under its parent's lock.
        """
        if _ddp_child():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        for _ in range(3):  # a stale lock removed by two processes at once: try again
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None:  # being written right now, or garbage: look once more
                    time.sleep(0.05)
                    holder = self._holder()
                pid, host = (holder or {}).get("pid"), (holder or {}).get("host")
                here = host == socket.gethostname()
                if holder is None or (here and isinstance(pid, int) and not _alive(pid)):
                    self.path.unlink(missing_ok=True)  # stale: its holder is gone
                    continue
                where = "this machine" if here else f"host {host}"
                raise ComparisonLocked(
                    f"{self.path.parent} is in use by losslab process {pid} on {where} (since "
                    f"{holder.get('started', '?')}); wait for it, use another --out, or delete "
                    f"{self.path} if that process is gone.") from None
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(payload + "\n")
            self.held = True
            return
        raise ComparisonLocked(f"could not take {self.path}: other processes keep replacing it.")

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self.held:
            holder = self._holder()
            if holder is None or holder.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> ComparisonLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()


__all__ = ["LOCK_FILE", "ComparisonLock", "ComparisonLocked"]
