"""Subnormal floats are flushed to zero during training only."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from train_helpers import tiny_config

from losslab.train import train
from losslab.train.denormals import FlushDenormals

TINY = 1e-40  # subnormal in float32 (the smallest normal float32 is 1.2e-38)


def _stored(value: float) -> float:
    """``value`` through a float32 multiply (where flushing acts)."""
    return float(torch.tensor([value], dtype=torch.float32) * 1.0)


def test_flushed_inside_the_fit_and_restored_after() -> None:
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush subnormals")
    torch.set_flush_denormal(False)
    assert _stored(TINY) > 0.0  # torch's default keeps subnormals
    callback = FlushDenormals()
    callback.setup(None, None, "fit")  # type: ignore[arg-type]
    try:
        assert _stored(TINY) == 0.0
        assert _stored(1e-30) == pytest.approx(1e-30, rel=1e-6)  # normal floats untouched
    finally:
        callback.teardown(None, None, "fit")  # type: ignore[arg-type]
    assert _stored(TINY) > 0.0


def test_a_fit_that_raises_leaves_subnormals_as_they_were(tmp_path: Path) -> None:
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush subnormals")
    torch.set_flush_denormal(False)

    class Fail(L.Callback):  # a training that stops with an error (as a diverged one does)
        def on_train_batch_end(self, *args: object) -> None:
            assert _stored(TINY) == 0.0  # flushed while training
            raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        train(tiny_config(tmp_path / "run", steps=4), callbacks=[Fail()])
    assert _stored(TINY) > 0.0
