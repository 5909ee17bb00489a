"""Bit-for-bit reruns: a fixed thread count and ``deterministic: true`` give the same numbers.

What does and does not repeat bit for bit is written down in ``docs/reproducibility.md``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_helpers import tiny_config

from losslab.train import train
from losslab.train.checkpointing import load_checkpoint

pytestmark = pytest.mark.slow


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]
    return {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}


@pytest.mark.parametrize("loss", ["l1", "mse + 0.05*adversarial(start=2)"])
def test_two_runs_with_fixed_threads_and_deterministic_true_are_identical(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loss: str) -> None:
    monkeypatch.setenv("LOSSLAB_THREADS", "1")  # the thread rule stays out of the way
    results = [train(tiny_config(tmp_path / name, loss=loss, deterministic=True, steps=5))
               for name in ("first", "second")]
    assert torch.are_deterministic_algorithms_enabled()  # Lightning switched torch's on
    first, second = results
    assert first.metrics == second.metrics  # every logged value, to the last bit
    a, b = _weights(first.run_dir), _weights(second.run_dir)
    assert a.keys() == b.keys() and len(a) > 0
    assert all(torch.equal(a[key], b[key]) for key in a)
    # and the seed does matter: another seed gives other weights (the check can fail)
    other = train(tiny_config(tmp_path / "other", loss=loss, deterministic=True, steps=5,
                              seed=1))
    c = _weights(other.run_dir)
    assert not all(torch.equal(a[key], c[key]) for key in a)
