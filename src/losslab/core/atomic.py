"""Atomic file writes: nothing losslab writes is ever seen half-written.

Every file (configs, checkpoints, ``DONE`` markers, metrics, installed weights) is written to a
temporary name beside its target and renamed over it with ``os.replace``, which is atomic on
POSIX and Windows. A crash leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it over ``target``.

    The caller writes the temporary path in the ``with`` block (any writer: ``torch.save``,
    ``shutil.copyfile``, ...). On an exception the temporary file is removed and ``target`` is
    untouched. Parent directories are created.
    """
    destination = Path(target)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically; returns the target path."""
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(target)
