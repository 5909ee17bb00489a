"""Helpers for the training tests: tiny, fast configs on the bundled photos (CPU, one thread)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from losslab.train import TrainConfig, config_from_overrides


def tiny_config(out: Path, **overrides: Any) -> TrainConfig:
    """A run of a few steps on 32x32 bundled crops that takes about a second on one CPU thread."""
    values: dict[str, Any] = {
        "task": "reconstruct", "data": "bundled", "loss": "l1", "steps": 6, "out": str(out),
        "crop_size": 32, "batch_size": 4, "val_every": 3, "sample_every": 0,
        "grad_share_every": 0, "log_every": 1, "accelerator": "cpu",
        "data.val_items": 4, "data.sample_count": 2, "data.options": {"val_size": 4},
        "model.options": {"width": 8, "depth": 2}, "progress_bar": False,
    }
    values.update(overrides)
    return config_from_overrides(None, values)


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    """The rows of ``logs/csv/metrics.csv`` (empty cells are empty strings)."""
    with open(run_dir / "logs" / "csv" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def column(rows: list[dict[str, str]], name: str) -> dict[int, float]:
    """``{step: value}`` of one CSV column, rows where it is set."""
    return {int(float(r["step"])): float(r[name]) for r in rows if r.get(name)}
