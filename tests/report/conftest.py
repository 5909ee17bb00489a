"""A synthetic comparison directory, written in the on-disk format the report reads.

Three runs on the same 6 validation images (16x16):

- ``sharp``: the targets plus small noise everywhere;
- ``blurry``: the targets, except a bright 4x4 square of error in image 0 at rows 8..11,
  columns 2..5 (the crop chooser must find it);
- ``two guesses``: 2 hypotheses (``(N, K, C, H, W)`` outputs), colorize-like 1-channel inputs.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

ERROR_BOX = (8, 2)  # (row, column) of the error square planted in run "blurry", image 0


def _write_run(directory: Path, name: str, label: str, loss: str, outputs: torch.Tensor,
               inputs: torch.Tensor, targets: torch.Tensor, metrics: dict, *,
               log_columns: tuple[str, ...] = ("train/loss",), neighbours: bool = False) -> None:
    run = directory / "runs" / name
    (run / "evaluation").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run / "config.yaml").write_text(yaml.safe_dump({"task": "colorize", "loss": loss,
                                                     "name": label, "steps": 5}))
    torch.save({"inputs": inputs, "outputs": outputs, "targets": targets},
               run / "evaluation" / "predictions.pt")
    (run / "metrics.json").write_text(json.dumps(metrics))
    frequency = [0.125, 0.375, 0.625, 0.875]
    (run / "evaluation" / "spectrum.json").write_text(json.dumps(
        {"frequency": frequency, "output": [1.0, 0.1, 0.01, 0.001],
         "target": [1.0, 0.2, 0.04, 0.008]}))
    if neighbours:
        (run / "evaluation" / "neighbours.json").write_text(json.dumps(
            {"k": 2, "indices": [[1, 2], [0, 2], [0, 1], [4, 5], [3, 5], [3, 4]],
             "distances": [[0.1, 0.2]] * 6}))
    logs = run / "logs" / "csv"
    logs.mkdir(parents=True)
    with (logs / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "step", *log_columns, "val/loss"])
        for step in range(10):
            values = [f"{1.0 / (step + 1) + 0.01 * i:.4f}" for i in range(len(log_columns))]
            writer.writerow([0, step, *values, "" if step % 5 else "0.5"])
    (run / "DONE").write_text("{}")


def _metrics(psnr: float, hf: float, err: tuple[float, ...]) -> dict:
    keys = ("err_red", "err_green", "err_blue", "err_luma", "err_chroma")
    metrics = {"psnr": psnr, "ssim": psnr / 40, "lpips": None, "hf_ratio": hf,
               "chroma_ratio": 0.8, **dict(zip(keys, err, strict=True))}
    metrics["unavailable"] = {"lpips": "LPIPS weights are missing (synthetic test)"}
    return metrics


def make_comparison(directory: Path) -> Path:
    """Write the synthetic comparison into ``directory`` (see the module docstring)."""
    generator = torch.Generator().manual_seed(1)
    base = torch.rand(6, 3, 4, 4, generator=generator)
    targets = torch.nn.functional.interpolate(base, size=(16, 16), mode="bilinear",
                                              align_corners=False)
    luma = targets.mean(dim=1, keepdim=True)
    sharp = (targets + 0.02 * torch.randn(targets.shape, generator=generator)).clamp(0, 1)
    blurry = targets.clone()
    row, column = ERROR_BOX
    blurry[0, :, row : row + 4, column : column + 4] = 1.0 - targets[0, :, row : row + 4,
                                                                      column : column + 4]
    guesses = torch.stack([targets, targets.flip(1)], dim=1)  # (N, 2, 3, H, W)
    _write_run(directory, "sharp", "sharp", "l1", sharp, luma, targets,
               _metrics(30.0, 0.95, (0.02, 0.02, 0.02, 0.02, 0.01)),
               log_columns=("train/loss", "train/l1", "grad_share/l1"), neighbours=True)
    _write_run(directory, "blurry", "blurry", "mse", blurry, luma, targets,
               _metrics(25.0, 0.40, (0.05, 0.30, 0.30, 0.04, 0.25)))
    _write_run(directory, "two-guesses", "two guesses", "mse", guesses, luma, targets,
               _metrics(28.0, 1.30, (0.03, 0.03, 0.03, 0.03, 0.02)), log_columns=())
    experiment = {
        "name": "synthetic", "question": "Which synthetic run is sharpest?", "task": "colorize",
        "data": "dead_leaves", "budget": {"steps": 5, "batch_size": 2, "crop_size": 16,
                                          "lr": 0.001, "seed": 0},
        "perceptual_weights": "random",
        "entries": [{"name": "sharp", "loss": "l1"}, {"name": "blurry", "loss": "mse"},
                    {"name": "two guesses", "loss": "mse", "hypotheses": 2}],
    }
    (directory / "experiment.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    runs = [
        {"label": "sharp", "run_dir": "sharp", "loss": "l1", "hypotheses": 1, "steps": 5,
         "weights": [], "probe_spec": "l1", "probe_note": ""},
        {"label": "blurry", "run_dir": "blurry", "loss": "mse + 0.1*perceptual(weights=random)",
         "hypotheses": 1, "steps": 5, "weights": ["random (seed 0)"],
         "probe_spec": "mse", "probe_note": "probed without the adversarial term"},
        {"label": "two guesses", "run_dir": "two-guesses", "loss": "mse", "hypotheses": 2,
         "steps": 5, "weights": [], "probe_spec": "mse", "probe_note": ""},
    ]
    (directory / "comparison.json").write_text(json.dumps({"runs": runs,
                                                           "perceptual_weights": "random"}))
    (directory / "probe.json").write_text(json.dumps({
        "l1": {"hue": {"raw": 0.1, "normalised": 1.0}, "blur": {"raw": 0.05, "normalised": 0.5}},
        "mse": {"hue": {"raw": 0.01, "normalised": 1.0}, "blur": {"raw": 0.01, "normalised": 1.0}},
    }))
    return directory


@pytest.fixture
def write_comparison() -> Callable[[Path], Path]:
    """:func:`make_comparison` itself, for tests that write comparisons into folders they pick
    (``from conftest import`` could find another test folder's ``conftest`` module)."""
    return make_comparison


@pytest.fixture
def comparison_dir(tmp_path: Path) -> Path:
    """A fresh synthetic comparison per test (for tests that change it)."""
    return make_comparison(tmp_path / "comparison")


@pytest.fixture(scope="module")
def built_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``index.html`` of the synthetic comparison, built once per module (read-only use)."""
    from losslab.report import build_report

    return build_report(make_comparison(tmp_path_factory.mktemp("built") / "comparison"))
