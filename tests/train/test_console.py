"""Console output of training: Lightning's noise hidden, losslab's warnings kept, step reports."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import torch
from lightning.fabric.utilities.warnings import PossibleUserWarning
from train_helpers import tiny_config

import losslab
from losslab.losses import RangeMixupWarning
from losslab.train import StepReporter, quiet_lightning, train


def test_quiet_lightning_hides_its_messages_and_keeps_losslab_warnings() -> None:
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level_before = logging.getLogger("lightning.pytorch").level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_lightning():
            assert not rank_zero.isEnabledFor(logging.INFO)  # "GPU available: ...", tips
            warnings.warn("a Lightning hint", PossibleUserWarning, stacklevel=1)
            criterion = losslab.loss("l1", input_range=(-1, 1))
            criterion(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))  # [0, 1] data: mix-up
    assert [w.category for w in caught] == [RangeMixupWarning]
    assert logging.getLogger("lightning.pytorch").level == level_before  # restored


def test_step_reporter_sees_every_step_and_the_loss(tmp_path: Path) -> None:
    seen: list[tuple[int, float | None]] = []
    train(tiny_config(tmp_path / "run", steps=4, val_every=2),
          callbacks=[StepReporter(lambda step, loss: seen.append((step, loss)))])
    assert [step for step, _ in seen] == [0, 1, 2, 3, 4]
    assert seen[0][1] is None and all(isinstance(loss, float) for _, loss in seen[1:])


def test_compare_prints_one_line_per_run_and_no_lightning_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from losslab.experiments import experiment_from_dict, run_comparison

    experiment = experiment_from_dict({
        "name": "tiny", "question": "Quiet?", "task": "reconstruct", "data": "bundled",
        "model_options": {"width": 8, "depth": 2, "code_channels": 4},
        "budget": {"steps": 3, "batch_size": 4, "crop_size": 16, "lr": 0.01},
        "train_options": {"val_every": 3, "sample_every": 0, "grad_share_every": 0,
                          "accelerator": "cpu", "data": {"val_items": 4}},
        "entries": [{"loss": "l1"}, {"loss": "mse"}],
    })
    run_comparison(experiment, tmp_path, probe=False)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    finished = [line for line in output.replace("\r", "\n").splitlines() if line.startswith("[")]
    assert [line.split(":")[0] for line in finished] == ["[1/2] l1", "[2/2] mse"]
    assert "GPU available" not in output and "Epoch 0" not in output and "Tip" not in output


def test_losslab_train_shows_one_progress_line_and_no_lightning_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from losslab.cli import main

    out = tmp_path / "tiny"
    argv = ["train", "--steps", "4", "--out", str(out), "--crop-size", "32", "--batch-size", "4",
            "--accelerator", "cpu", "--set", "val_every=2", "--set", "sample_every=0",
            "--set", "grad_share_every=0", "--set", "data.val_items=4",
            "--set", "data.options={val_size: 4}", "--set", "model.options={width: 8, depth: 2}"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    output = (captured.out + captured.err).replace("\r", "\n")
    for lightning in ("Epoch 0", "Validation", "Sanity Checking", "GPU available", "v_num"):
        assert lightning not in output, output
    assert "tiny 100%" in output and "step 4/4 loss" in output and " val " in output, output
    assert captured.out.strip().splitlines() == [f"run finished: {out}"]


def test_step_progress_starts_a_resumed_run_at_its_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from losslab.train import StepProgress

    train(tiny_config(tmp_path / "run", steps=2, val_every=2))
    capsys.readouterr()
    train(tiny_config(tmp_path / "run", steps=4, val_every=2), callbacks=[StepProgress("again")])
    lines = capsys.readouterr().err.replace("\r", "\n").splitlines()
    drawn = [line for line in lines if line.startswith("again")]
    assert any(" 50%" in line and "step 2/4" in line for line in drawn), lines  # resumed at 2
    assert "step 4/4" in drawn[-1], lines
