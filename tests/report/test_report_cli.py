"""``losslab compare`` and ``losslab report``: the CLI runs the comparison, then builds the report.

The runner (experiments/) writes results only and never imports the report; these tests pin the
CLI's side of that contract with a stand-in runner that writes the synthetic comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import losslab.experiments
from losslab.cli import main


class FakeRunner:
    """Stands in for ``run_comparison``: records its calls and writes a finished comparison."""

    def __init__(self, write: Callable[[Path], Path], interrupt: bool = False) -> None:
        self.calls: list[tuple[Any, Path, dict[str, Any]]] = []
        self.write = write
        self.interrupt = interrupt

    def __call__(self, experiment: Any, out_dir: Path, **options: Any) -> Path:
        self.calls.append((experiment, out_dir, options))
        if self.interrupt:
            raise KeyboardInterrupt
        if not (out_dir / "runs").exists():
            self.write(out_dir)
        return out_dir


def test_compare_writes_the_report_after_the_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    write_comparison: Callable[[Path], Path],
) -> None:
    runner = FakeRunner(write_comparison)
    monkeypatch.setattr(losslab.experiments, "run_comparison", runner)
    out = tmp_path / "comparison"
    assert main(["compare", "colors", "--out", str(out), "--steps", "3"]) == 0
    index = out / "report" / "index.html"
    assert capsys.readouterr().out.strip() == f"report: {index}"
    assert "Which synthetic run is sharpest?" in index.read_text(encoding="utf-8")
    experiment, out_dir, options = runner.calls[0]
    assert (experiment, out_dir, options["steps"]) == ("colors", out, 3)
    assert "report" not in options  # the runner has no say in the report

    # a second call (a resumed comparison) rebuilds the report from what is on disk now
    (out / "report" / "stale.png").write_bytes(b"old")
    assert main(["compare", "colors", "--out", str(out)]) == 0
    assert not (out / "report" / "stale.png").exists() and index.is_file()
    assert len(runner.calls) == 2


def test_an_interrupted_comparison_writes_no_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_comparison: Callable[[Path], Path]
) -> None:
    monkeypatch.setattr(losslab.experiments, "run_comparison",
                        FakeRunner(write_comparison, interrupt=True))
    out = tmp_path / "comparison"
    assert main(["compare", "colors", "--out", str(out)]) != 0
    assert not (out / "report").exists()


def test_report_command_rebuilds_from_disk(
    comparison_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = comparison_dir
    assert main(["report", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out / 'report' / 'index.html'}"
