"""Nothing losslab reads can run code: checkpoints are loaded with ``weights_only=True``.

A crafted ``checkpoints/last.ckpt`` whose pickle calls ``os.system`` is planted in a real run
directory; resuming (``losslab train``), evaluating (``losslab evaluate``) and loading the run must
refuse it with a one-line error naming the file, and the command must not have run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_config

from losslab.cli import main
from losslab.train import train
from losslab.train.checkpointing import load_checkpoint
from losslab.train.run import load_run


class _RunsCommand:
    """Unpickling this object calls ``os.system(command)``: a classic pickle payload."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return (os.system, (self.command,))


def _plant(checkpoint: Path, marker: Path) -> None:
    payload = {"state_dict": {}, "global_step": 1, "exploit": _RunsCommand(f"touch {marker}")}
    torch.save(payload, checkpoint)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    train(tiny_config(out, steps=3, val_every=3))
    return out


@pytest.fixture
def poisoned_run(trained_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    marker = tmp_path / "pwned"
    for name in ("last", "best"):
        _plant(run / "checkpoints" / f"{name}.ckpt", marker)
    # the config's out must point at the copy so that `train` resumes this directory
    config = (run / "config.yaml").read_text().replace(str(trained_run), str(run))
    (run / "config.yaml").write_text(config)
    return run, marker


def test_own_checkpoints_load_with_weights_only(trained_run: Path) -> None:
    checkpoint = load_checkpoint(trained_run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 3 and "losslab" in checkpoint
    model, _ = load_run(trained_run)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_the_planted_payload_is_live(poisoned_run: tuple[Path, Path]) -> None:
    """Guards the tests below: an unsafe load of the planted file does run the command."""
    run, marker = poisoned_run
    torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert marker.exists()


def test_loading_a_crafted_checkpoint_runs_nothing(poisoned_run: tuple[Path, Path]) -> None:
    run, marker = poisoned_run
    path = run / "checkpoints" / "last.ckpt"
    with pytest.raises(ValueError, match="refused to load checkpoint") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value) and "weights_only=False" not in str(error.value)
    with pytest.raises(ValueError, match="refused to load"):
        load_run(run)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_cli_refuses_a_crafted_checkpoint_in_one_line(
    poisoned_run: tuple[Path, Path], command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run, marker = poisoned_run
    argv = (["train", "--config", str(run / "config.yaml")] if command == "train"
            else ["evaluate", str(run)])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert not marker.exists()
    assert "refused to load checkpoint" in err and ("last.ckpt" in err or "best.ckpt" in err)
    assert "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", b"PK\x03\x04truncated"])
def test_empty_or_garbage_checkpoints_get_a_one_line_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "last.ckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"last\.ckpt") as error:
        load_checkpoint(path)
    message = str(error.value)
    assert len(message.splitlines()) == 1 and "weights_only=False" not in message
    assert "delete it" in message
