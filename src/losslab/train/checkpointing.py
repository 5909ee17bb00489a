"""Crash-safe checkpoints, resume checks and logs that survive a resume.

- :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file in the same directory
  and renames it over the target (``os.replace`` is atomic on POSIX and Windows), so a process
  killed mid-write leaves the previous ``last.ckpt`` intact instead of a truncated one.
- :func:`check_resumable` refuses to resume from a checkpoint written for another config and
  names the differing fields.
- :class:`AppendingCSVLogger` keeps ``metrics.csv`` across resumes (Lightning's CSV logger deletes
  it) and drops rows logged after the checkpoint being resumed.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.plugins.io import TorchCheckpointIO

from losslab._atomic import atomic_path
from losslab._serialization import load_torch_file
from losslab.train.config import TrainConfig, config_differences


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
    containers are refused with an :class:`~losslab._serialization.UnreadableFileError`
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
            + f"\nUse the stored config (losslab train --config {Path(path).parents[1] / 'config.yaml'}), "
            "choose a new out directory, or set checkpoint.resume: false with a new out."
        )
    return info["global_step"]


class _AppendingWriter(ExperimentWriter):
    """Keeps an existing ``metrics.csv`` (header included) instead of deleting it."""

    def __init__(self, log_dir: str, drop_from_step: int | None) -> None:  # no super(): it deletes
        self.hparams: dict[str, Any] = {}
        self.metrics: list[dict[str, float]] = []
        self.metrics_keys: list[str] = []
        self.log_dir = log_dir
        self._fs = get_filesystem(log_dir)
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        os.makedirs(log_dir, exist_ok=True)
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as file:
                reader = csv.DictReader(file)
                self.metrics_keys = list(reader.fieldnames or [])
                rows = list(reader)
            if drop_from_step is not None:  # rows logged after the checkpoint are replayed
                rows = [r for r in rows if not r.get("step") or int(float(r["step"])) < drop_from_step]
                with open(self.metrics_file_path, "w", newline="") as file:
                    writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
                    writer.writeheader()
                    writer.writerows(rows)


class AppendingCSVLogger(CSVLogger):
    """``CSVLogger`` that appends to an existing ``metrics.csv`` (for resumed runs).

    Args:
        drop_from_step: when resuming from a checkpoint at step ``s``, rows with ``step >= s``
            (logged by the interrupted run after its checkpoint) are removed first.
    """

    def __init__(self, *args: Any, drop_from_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drop_from_step = drop_from_step

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._experiment = _AppendingWriter(self.log_dir, self._drop_from_step)
        return self._experiment
