"""Build ``DIR/report/index.html`` from a comparison directory on disk.

The page is self-contained: inline CSS, no script, every figure a PNG beside ``index.html`` in
``DIR/report/`` (copy the folder anywhere and it still opens, offline). Every figure has a
caption that says what to look for.

The content is gathered as plain data by :mod:`losslab.report.sections` (one function per
section) and rendered by the Jinja2 template ``templates/report.html.j2`` (its CSS,
``templates/report.css``, is inlined at render time). Autoescaping is on: run labels, loss specs
and notes are user text and can never become markup.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import jinja2

from losslab.core.atomic import write_text_atomic
from losslab.report.data import load_comparison
from losslab.report.sections import ReportPage, report_page

#: The page template, found in the installed package (``report/templates/``, shipped as package
#: data), not the source tree, so a wheel install renders the same page.
TEMPLATE = "report.html.j2"


def format_number(value: Any) -> str:
    """A table value as text: 4 significant digits below 1000, whole numbers above.

    Non-numbers, booleans and non-finite floats are shown as Python prints them.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"


@functools.cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report: package templates, autoescaping, strict names.

    ``StrictUndefined`` makes a misspelt field in the template an error instead of an empty
    cell; ``trim_blocks``/``lstrip_blocks`` keep block tags from leaving blank lines.
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("losslab.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["format_number"] = format_number
    return env


def render_page(page: ReportPage) -> str:
    """The HTML text of the report page for ``page`` (see :func:`sections.report_page`)."""
    return environment().get_template(TEMPLATE).render(page=page)


def build_report(directory: str | Path) -> Path:
    """Write ``DIR/report/index.html`` (and its PNG figures) from the comparison on disk.

    Only reads: runs, evaluation files, logs and probe results written by ``losslab compare``.
    Figures from an earlier build are removed first, so none outlives its data. The page is
    written atomically (a reader never sees half a page). Returns the path of ``index.html``.

    Raises:
        NotAComparisonError: ``directory`` holds no comparison.
    """
    comparison = load_comparison(directory)
    out = comparison.directory / "report"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.png"):
        stale.unlink()
    page = report_page(comparison, out)
    return write_text_atomic(out / "index.html", render_page(page))
