"""Crash-safe checkpoints, resume checks and logs that survive a resume.

- :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file in the same directory
  and renames it over the target (``os.replace`` is atomic on POSIX and Windows), so a process
  killed mid-write leaves the previous ``last.ckpt`` intact instead of a truncated one.
- :func:`check_resumable` refuses to resume from a checkpoint written for another config and
  names the differing fields.
- :class:`CrashSafeCSVLogger` writes ``metrics.csv`` row by row (a killed run keeps every logged
  row), keeps it across resumes and drops the rows logged after the checkpoint being resumed.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only

from losslab.core.atomic import atomic_path
from losslab.core.serialization import load_torch_file
from losslab.train.config import RESUME_SAFE_FIELDS, TrainConfig, config_differences


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes ``path.tmp-<pid>`` first, then renames it to ``path``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        with atomic_path(path) as temporary:
            super().save_checkpoint(checkpoint, temporary, storage_options)

    def load_checkpoint(self, path: Any, map_location: Any = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        """Lightning's resume path: always ``weights_only=True`` (see :func:`load_checkpoint`)."""
        return load_checkpoint(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A losslab checkpoint as a dict, loaded with ``weights_only=True`` onto the CPU.

    Nothing in a checkpoint can run code: files that ask for anything beyond tensors and plain
    containers are refused with an :class:`~losslab.core.serialization.UnreadableFileError`
    (a ``ValueError``) naming the file, as are empty, truncated and non-torch files.
    """
    remedy = ("delete it (losslab then starts that run from scratch) or point at another "
              "checkpoint")
    checkpoint = load_torch_file(path, what="checkpoint", remedy=remedy)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"checkpoint {str(path)!r} holds a {type(checkpoint).__name__}, not a "
                         f"checkpoint dict; {remedy}.")
    return checkpoint


def read_checkpoint_info(path: str | Path) -> dict[str, Any]:
    """The ``losslab`` entry (config, fingerprint, metrics) and ``global_step`` of a checkpoint."""
    checkpoint = load_checkpoint(path)
    info = dict(checkpoint.get("losslab", {}))
    info["global_step"] = int(checkpoint.get("global_step", 0))
    return info


def check_resumable(path: str | Path, config: TrainConfig) -> int:
    """Raise a ``ValueError`` naming the differences if ``path`` was written for another config.

    Fields in :data:`~losslab.train.config.RESUME_SAFE_FIELDS` (``steps``, ``devices``, ...) may
    differ. Returns the checkpoint's global step.
    """
    info = read_checkpoint_info(path)
    stored = info.get("config")
    if stored is None:
        raise ValueError(f"checkpoint {str(path)!r} was not written by losslab.train (no stored "
                         "config); remove it or choose another out directory.")
    stored_config = TrainConfig.from_dict(stored)
    if stored_config.fingerprint() != config.fingerprint():
        differences = config_differences(stored_config, config)
        raise ValueError(
            f"{str(path)!r} belongs to a run with a different config, so it cannot be resumed:\n  "
            + "\n  ".join(differences)
            + f"\nOnly these may change on resume: {', '.join(sorted(RESUME_SAFE_FIELDS))}. "
            f"Use the stored config (losslab train --config {Path(path).parents[1] / 'config.yaml'}), "
            "choose a new out directory, or set checkpoint.resume: false with a new out."
        )
    return info["global_step"]


class CrashSafeCSVLogger(Logger):
    """``metrics.csv`` written row by row, so a killed run keeps every row it logged.

    Lightning's ``CSVLogger`` buffers rows and flushes every 100 steps (a SIGKILL at step 170
    left no file at all) and deletes the file on a new run. This logger, built on Lightning's
    public :class:`~lightning.pytorch.loggers.Logger` base only:

    - appends each :meth:`log_metrics` call as one CSV row and flushes it to the operating system
      at once (a killed *process* loses nothing; the kernel writes the page cache out);
    - rewrites the whole file atomically (temporary file, then rename) when a row brings a new
      column, so the header always names every column and a kill mid-rewrite keeps the old file;
    - on resume from a checkpoint taken after ``resume_step`` updates, drops the rows the
      interrupted run logged *after* that checkpoint (training rows with ``step >= resume_step``;
      they are logged again, identically, as training replays those steps), but keeps the
      validation row at ``resume_step`` (written before that checkpoint, never replayed). A run
      that starts from scratch (``resume_step=None``) starts an empty file.

    Rows are ``step`` plus one column per logged name; cells a row does not set are empty.

    Args:
        directory: where ``metrics.csv`` goes (``<run>/logs/csv``).
        resume_step: the global step of the checkpoint being resumed, or ``None``.
    """

    FILE_NAME = "metrics.csv"

    def __init__(self, directory: str | Path, *, resume_step: int | None = None) -> None:
        super().__init__()
        self._directory = Path(directory)
        self._resume_step = resume_step
        self._keys: list[str] = ["step"]
        self._rows: list[dict[str, str]] = []
        self._handle: Any = None
        self._started = False

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    @property
    def root_dir(self) -> str:
        return str(self._directory)

    @property
    def log_dir(self) -> str:
        return str(self._directory)

    @property
    def save_dir(self) -> str:
        return str(self._directory)

    @property
    def path(self) -> Path:
        """The CSV file."""
        return self._directory / self.FILE_NAME

    def _start(self) -> None:
        """Read the rows a previous (interrupted) process left, keep those before the resume."""
        self._started = True
        self._directory.mkdir(parents=True, exist_ok=True)
        if self._resume_step is not None and self.path.is_file():
            with open(self.path, newline="") as file:
                reader = csv.DictReader(file)
                keys = list(reader.fieldnames or [])
                rows = [row for row in reader if self._kept(row)]
            self._keys = ["step", *(k for k in keys if k != "step")]
            self._rows = [{k: v for k, v in row.items() if k is not None and v} for row in rows]
        self._rewrite()

    def _kept(self, row: dict[str, str]) -> bool:
        step = row.get("step")
        if not step:
            return False
        step_number = int(float(step))
        resume = int(self._resume_step or 0)
        if step_number < resume:
            return True
        # The validation at `resume` ran before its checkpoint was written: it is not replayed.
        return step_number == resume and any(k.startswith("val/") and v for k, v in row.items()
                                             if k is not None)

    def _rewrite(self) -> None:
        if self._handle is not None:
            self._handle.close()
        with atomic_path(self.path) as temporary, open(temporary, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self._keys, restval="")
            writer.writeheader()
            writer.writerows(self._rows)
        self._handle = open(self.path, "a", newline="")  # noqa: SIM115 (kept open: one row per call)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Write one row: ``step`` (default: rows so far) and each metric as a float."""
        if not self._started:
            self._start()
        row = {"step": str(len(self._rows) if step is None else int(step))}
        row |= {key: str(float(value)) for key, value in metrics.items()}
        self._rows.append(row)
        new_keys = [key for key in row if key not in self._keys]
        if new_keys:
            self._keys.extend(new_keys)
            self._rewrite()
        else:
            csv.DictWriter(self._handle, fieldnames=self._keys, restval="").writerow(row)
        self._handle.flush()

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Nothing to do: the run's ``config.yaml`` holds every setting."""

    @rank_zero_only
    def save(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
