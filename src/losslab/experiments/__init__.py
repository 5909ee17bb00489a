"""Loss comparisons: experiment files, the runner, and run evaluation.

- :func:`run_comparison` (``losslab compare``): one run per loss, evaluated, probed, reported.
- :func:`evaluate_run` (``losslab evaluate RUN_DIR``): metrics and evaluation files of one run.
- :func:`resolve_experiment` / :func:`list_experiments`: shipped experiments by name or files.
- :func:`load_experiment` / :func:`experiment_from_dict`: validate an experiment (see
  ``docs/experiments.md`` for the schema).
- :func:`json_schema`: the JSON Schema of training configs or experiment files
  (``losslab schema train|experiment``).
"""

from losslab.experiments.evaluate import METRIC_KEYS, NotARunError, evaluate_run
from losslab.experiments.runner import plan_runs, resolve_budget, run_comparison
from losslab.experiments.schema import (
    Budget,
    Entry,
    Experiment,
    ExperimentError,
    experiment_from_dict,
    json_schema,
    list_experiments,
    load_experiment,
    resolve_experiment,
)

__all__ = [
    "METRIC_KEYS",
    "Budget",
    "Entry",
    "Experiment",
    "ExperimentError",
    "NotARunError",
    "evaluate_run",
    "experiment_from_dict",
    "json_schema",
    "list_experiments",
    "load_experiment",
    "plan_runs",
    "resolve_budget",
    "resolve_experiment",
    "run_comparison",
]
