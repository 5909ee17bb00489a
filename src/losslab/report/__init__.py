"""The comparison report: ``build_report(DIR)`` writes ``DIR/report/index.html`` from disk.

The report only reads what ``losslab compare`` wrote (``docs/architecture.md``, "Evaluated runs
and comparisons on disk"); ``losslab report DIR`` rebuilds it without training. It imports
nothing from training or experiments: :mod:`~losslab.report.data` reads the files,
:mod:`~losslab.report.sections` turns them into one plain dataclass per section,
:mod:`~losslab.report.figures` draws the PNGs and the Jinja2 template
``templates/report.html.j2`` writes the page.
"""

from losslab.report.build import build_report, render_page
from losslab.report.data import Comparison, NotAComparisonError, RunRecord, load_comparison
from losslab.report.sections import (
    METRIC_DIRECTIONS,
    MetricColumn,
    ReportPage,
    best_per_metric,
    metric_columns,
    report_page,
)

__all__ = [
    "METRIC_DIRECTIONS",
    "Comparison",
    "MetricColumn",
    "NotAComparisonError",
    "ReportPage",
    "RunRecord",
    "best_per_metric",
    "build_report",
    "load_comparison",
    "metric_columns",
    "render_page",
    "report_page",
]
