"""The comparison report: ``build_report(DIR)`` writes ``DIR/report/index.html`` from disk.

The report only reads what ``losslab compare`` wrote (``docs/architecture.md``, "Evaluated runs
and comparisons on disk"); ``losslab report DIR`` rebuilds it without training.
"""

from losslab.report.build import METRIC_DIRECTIONS, best_per_metric, build_report
from losslab.report.data import Comparison, NotAComparisonError, RunRecord, load_comparison

__all__ = [
    "METRIC_DIRECTIONS",
    "Comparison",
    "NotAComparisonError",
    "RunRecord",
    "best_per_metric",
    "build_report",
    "load_comparison",
]
