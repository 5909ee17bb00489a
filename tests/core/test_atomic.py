"""Atomic writes: a failed write leaves the old file and no temporary behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from losslab.core.atomic import atomic_path, write_text_atomic


def test_success_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "config.yaml"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["config.yaml"]


def test_failure_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    target.write_text("good checkpoint")
    with pytest.raises(RuntimeError, match="killed mid-write"), atomic_path(target) as temporary:
        temporary.write_text("half a checkp")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "good checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
