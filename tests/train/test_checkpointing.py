"""Crash-safe checkpoint writes and CSV logs that survive a resume."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning.fabric.plugins.io.torch_io as torch_io
import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from losslab.train.checkpointing import AppendingCSVLogger, AtomicCheckpointIO


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


def test_csv_logger_appends_and_drops_rows_after_the_resumed_step(tmp_path: Path) -> None:
    first = AppendingCSVLogger(save_dir=tmp_path, name="", version="csv")
    for step in range(8):
        first.log_metrics({"train/loss": float(step)}, step=step)
    first.save()
    resumed = AppendingCSVLogger(save_dir=tmp_path, name="", version="csv", drop_from_step=5)
    resumed.log_metrics({"train/loss": 50.0, "val/loss": 1.0}, step=5)
    resumed.save()
    with open(tmp_path / "csv" / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["step"], r["train/loss"]) for r in rows] == [
        *((str(s), str(float(s))) for s in range(5)), ("5", "50.0")]
    assert rows[-1]["val/loss"] == "1.0" and rows[0]["val/loss"] == ""
