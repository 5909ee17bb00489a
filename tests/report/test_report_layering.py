"""The report reads runs from disk: it imports only core/ (and metrics/) from losslab, and the
experiments package does not import it (siblings; ``losslab compare`` in cli.py joins them)."""

from __future__ import annotations

import ast
from pathlib import Path

import losslab

PACKAGE = Path(losslab.__file__).parent


def _losslab_imports(package: str) -> dict[str, set[str]]:
    """``{file: {imported losslab module, ...}}`` for every module of ``losslab.<package>``,
    function-level imports included."""
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[path.name] = {n for n in names if n == "losslab" or n.startswith("losslab.")}
    return found


def test_report_imports_only_core_metrics_and_itself() -> None:
    imports = _losslab_imports("report")
    assert imports, "no report modules found"
    allowed = ("losslab.core", "losslab.metrics", "losslab.report")
    for name, modules in imports.items():
        wrong = {m for m in modules if not m.startswith(allowed)}
        assert not wrong, f"report/{name} imports {sorted(wrong)}: the report reads from disk"


def test_experiments_do_not_import_the_report() -> None:
    for name, modules in _losslab_imports("experiments").items():
        assert not any(m.startswith("losslab.report") for m in modules), (
            f"experiments/{name} imports the report: build it in cli.py after the runner")
