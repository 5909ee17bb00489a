"""Crash-safe checkpoint writes and CSV logs that survive a resume."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning.fabric.plugins.io.torch_io as torch_io
import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from losslab.train.checkpointing import AtomicCheckpointIO, CrashSafeCSVLogger


def _interrupted_write(checkpoint: dict, filepath: object) -> None:
    Path(str(filepath)).write_bytes(b"half a checkpoint")
    raise OSError("killed while writing")


@pytest.mark.parametrize("io_class", [AtomicCheckpointIO, TorchCheckpointIO])
def test_interrupted_write_keeps_the_previous_checkpoint_only_when_atomic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, io_class: type
) -> None:
    path = tmp_path / "last.ckpt"
    io_class().save_checkpoint({"global_step": 1}, path)
    monkeypatch.setattr(torch_io, "_atomic_save", _interrupted_write)
    with pytest.raises(OSError, match="killed"):
        io_class().save_checkpoint({"global_step": 2}, path)
    if io_class is AtomicCheckpointIO:
        assert torch.load(path, weights_only=False) == {"global_step": 1}
        assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left
    else:  # Lightning's own IO writes in place: the old checkpoint is gone
        assert path.read_bytes() == b"half a checkpoint"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_csv_logger_writes_each_row_at_once(tmp_path: Path) -> None:
    """Issue 11: Lightning's CSV logger buffered 100 steps; a kill lost them all."""
    logger = CrashSafeCSVLogger(tmp_path / "csv")
    logger.log_metrics({"train/loss": 0.5}, step=0)
    assert _rows(logger.path) == [{"step": "0", "train/loss": "0.5"}]  # no save(), no finalize()
    logger.log_metrics({"train/loss": 0.25}, step=10)
    logger.log_metrics({"val/loss": 0.125}, step=10)  # a new column: the header is rewritten
    assert _rows(logger.path) == [{"step": "0", "train/loss": "0.5", "val/loss": ""},
                                  {"step": "10", "train/loss": "0.25", "val/loss": ""},
                                  {"step": "10", "train/loss": "", "val/loss": "0.125"}]
    assert sorted(p.name for p in logger.path.parent.iterdir()) == ["metrics.csv"]  # no temp file


def test_csv_logger_resume_drops_replayed_rows_and_keeps_the_checkpoints_validation(
    tmp_path: Path,
) -> None:
    first = CrashSafeCSVLogger(tmp_path)
    for step in range(8):
        first.log_metrics({"train/loss": float(step)}, step=step)
        if step in (0, 5):
            first.log_metrics({"val/loss": 10.0 + step}, step=step)
    # killed here, without finalize(); the checkpoint was written after the validation at step 5
    resumed = CrashSafeCSVLogger(tmp_path, resume_step=5)
    resumed.log_metrics({"train/loss": 5.0}, step=5)
    rows = _rows(tmp_path / "metrics.csv")
    train = [(r["step"], r["train/loss"]) for r in rows if r["train/loss"]]
    assert train == [(str(s), str(float(s))) for s in range(6)]  # no gap, no duplicate
    assert [(r["step"], r["val/loss"]) for r in rows if r["val/loss"]] == [("0", "10.0"),
                                                                            ("5", "15.0")]


def test_csv_logger_of_a_fresh_run_starts_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text("step,train/loss\n0,9.0\n")  # killed before a checkpoint
    CrashSafeCSVLogger(tmp_path).log_metrics({"train/loss": 1.0}, step=0)
    assert _rows(tmp_path / "metrics.csv") == [{"step": "0", "train/loss": "1.0"}]


@pytest.mark.parametrize("cls", [CrashSafeCSVLogger, AtomicCheckpointIO])
def test_log_and_checkpoint_writers_build_on_public_lightning_classes_only(cls: type) -> None:
    """No private Lightning base (the first CSV writer subclassed one; a Lightning release may
    rename or remove those without notice)."""
    lightning_bases = [base for base in cls.__mro__[1:] if base.__module__.startswith("lightning")]
    assert lightning_bases
    for base in lightning_bases:
        private = [part for part in (*base.__module__.split("."), base.__name__)
                   if part.startswith("_")]
        assert not private, f"{cls.__name__} builds on {base.__module__}.{base.__name__}"
