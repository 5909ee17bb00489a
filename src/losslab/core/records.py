"""The on-disk contract between the comparison runner (writes) and the report (reads).

One module both sides import (the report may import only ``core`` and ``metrics``): the file
names of a comparison directory and of a run directory, the typed records of ``comparison.json``
and of a run's ``DONE`` marker, and the per-task captions. The layout is the one in
``docs/architecture.md`` ("Evaluated runs and comparisons on disk")::

    DIR/experiment.yaml  DIR/comparison.json  DIR/metrics.json|csv
    DIR/probe.json|csv|png  DIR/metamers.json|png
    DIR/runs/<run>/config.yaml  metrics.json|csv  DONE  checkpoints/last.ckpt  logs/
    DIR/runs/<run>/evaluation/predictions.pt|spectrum.json|neighbours.json

Records are pydantic v2 models like the training configs (:mod:`losslab.train.config`). Reading
is tolerant of keys it does not know (files written by another losslab version) and of keys
that older files lack (their defaults); a malformed file (wrong type, a newer
:data:`RECORD_VERSION`) is refused with one line naming the file, the key and the fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# -- file names -----------------------------------------------------------------------------

#: A comparison directory's files.
EXPERIMENT_FILE = "experiment.yaml"  # the resolved experiment (budget after --steps, weights)
COMPARISON_FILE = "comparison.json"  # ComparisonRecord: the runs in order, written last
METRICS_FILE = "metrics.json"  # {label: {metric: value}} here; {metric: value} in a run
METRICS_CSV = "metrics.csv"
RUNS_DIR = "runs"
PROBE_JSON, PROBE_CSV, PROBE_PNG = "probe.json", "probe.csv", "probe.png"
METAMERS_JSON, METAMERS_PNG = "metamers.json", "metamers.png"
REPORT_DIR = "report"

#: A run directory's files (``DIR/runs/<run>/``).
CONFIG_FILE = "config.yaml"  # the run's TrainConfig
DONE_FILE = "DONE"  # DoneMarker, written last: the run is finished and evaluated
CHECKPOINT_FILE = "checkpoints/last.ckpt"
LOGS_DIR = "logs"  # Lightning CSVLogger versions, each with a metrics.csv
EVALUATION_DIR = "evaluation"
PREDICTIONS_FILE = "predictions.pt"  # under evaluation/: inputs, outputs, targets (+ samples)
SPECTRUM_FILE = "spectrum.json"  # under evaluation/
NEIGHBOURS_FILE = "neighbours.json"  # under evaluation/

#: The version of the records written now. Files without ``version`` are version 1.
RECORD_VERSION = 1

#: What the report's image grid shows in its input row, per task (``TrainConfig.task``).
TASK_INPUT_CAPTIONS: dict[str, str] = {
    "super_resolve": "the low-resolution input (shown enlarged, nearest neighbour)",
    "colorize": "the luma-only input",
    "predict_next": "the last input frame",
    "reconstruct": "the input (identical to the target, so not shown)",
}


class RecordError(ValueError):
    """A record file that exists but is not a valid record (one line: file, key, fix)."""


class _Record(BaseModel):
    # ignore unknown keys: a file written by another losslab version still reads
    model_config = ConfigDict(extra="ignore")

    def dump(self) -> dict[str, Any]:
        """The JSON values: every field set when the record was made, in field order."""
        return self.model_dump(exclude_unset=True)


class RunEntry(_Record):
    """One row of ``comparison.json`` ``runs``: an entry (or the baseline) of a comparison.

    Attributes:
        label: the entry's name (its loss spec unless named); the baseline's ``"<name> (baseline)"``.
        run_dir: its run directory relative to ``DIR/runs`` (the median seed's for several seeds).
        loss: the loss spec it was trained with (``""`` for the baseline).
        baseline: an untrained baseline row (bicubic, copy of the last frame, grey).
        hypotheses: ``K`` outputs per input (1 = ordinary model; ``None`` = unknown, read the
            run's ``config.yaml``).
        note: the entry's note from the experiment file (the baseline's description).
        steps: its step budget (0 for the baseline; ``None`` = unknown).
        weights: descriptions of the feature networks its loss used.
        probe_spec / probe_note: what the loss probe measured for it and what was left out.
        seeds: several seeds: ``{seed: {"run_dir", metric: value}}`` (seeds as strings).
        spread: ``{metric: {"mean", "sd", "min", "max", "n"}}`` over the seeds.
        headline_metric / median_seed: which seed ``run_dir`` is, and by which metric.
        entry_dir: the entry's own directory (its first seed's) when it has several seeds.
        timings: ``{run_dir: {"training", "evaluation"}}`` seconds of the runs trained this call.
    """

    label: str = ""
    run_dir: str
    loss: str = ""
    baseline: bool = False
    hypotheses: int | None = None
    note: str = ""
    steps: int | None = None
    weights: list[str] = Field(default_factory=list)
    probe_spec: str | None = None
    probe_note: str = ""
    seeds: dict[str, dict[str, Any]] = Field(default_factory=dict)
    spread: dict[str, dict[str, Any]] = Field(default_factory=dict)
    headline_metric: str = ""
    median_seed: int | None = None
    entry_dir: str | None = None
    timings: dict[str, dict[str, float]] = Field(default_factory=dict)


class ComparisonRecord(_Record):
    """``DIR/comparison.json``: the comparison's runs in order and what this call did.

    Attributes:
        version: :data:`RECORD_VERSION` of the writer.
        experiment: the experiment's name.
        perceptual_weights: the resolved weights of ``perceptual`` terms (``imagenet``,
            ``random`` or a file path); ``None`` = unknown (read ``experiment.yaml``).
        seeds: the training seeds of every entry.
        runs: the baseline first (when the task has one), then one row per entry.
        trained_this_call: run directories trained by the call that wrote the file.
        failed: ``{run_dir: one-line error}`` of runs that failed (``--jobs``, slurm).
        timings: wall-clock seconds: ``runs``, ``training``, ``evaluation``, ``baseline``,
            ``probe``, ``metamers``, ``total``.
    """

    version: int = RECORD_VERSION
    experiment: str = ""
    perceptual_weights: str | None = None
    seeds: list[int] = Field(default_factory=list)
    runs: list[RunEntry] = Field(default_factory=list)
    trained_this_call: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)


class DoneMarker(_Record):
    """A run's ``DONE`` marker: the run is finished (trained and evaluated, or a baseline).

    Attributes:
        label: the entry's label.
        loss: the loss spec (trained runs).
        config: the planned ``TrainConfig`` values without ``out`` (trained runs), compared with
            :func:`losslab.train.config.run_identity` to decide whether the run is reused.
        baseline / description: a baseline row and what it does.
        finished: local time ``YYYY-MM-DDTHH:MM:SS``.
    """

    label: str = ""
    loss: str | None = None
    baseline: bool | None = None
    description: str | None = None
    config: dict[str, Any] | None = None
    finished: str = ""


def parse_record(kind: type[_Record], values: Any, path: str | Path) -> Any:
    """``kind`` validated from decoded JSON; :class:`RecordError` (one line) if malformed."""
    if not isinstance(values, dict):
        raise RecordError(f"{path} is not a losslab {kind.__name__} (a JSON object expected, got "
                          f"{type(values).__name__}); delete it and re-run the comparison.")
    version = values.get("version", 1)
    if isinstance(version, int) and version > RECORD_VERSION:
        raise RecordError(f"{path} was written by a newer losslab (record version {version}, this "
                          f"one reads up to {RECORD_VERSION}); upgrade losslab to read it.")
    try:
        return kind.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise RecordError(f"{path}: {key}: {first['msg']} (got {first.get('input')!r}); delete "
                          "the file and re-run the comparison to rewrite it.") from None


def read_record(kind: type[_Record], path: str | Path) -> Any:
    """Read ``path`` as a ``kind`` record; ``None`` when the file does not exist.

    Raises:
        RecordError: the file is not valid JSON or not a valid record (one line).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise RecordError(f"{path} is not valid JSON ({error}); delete it and re-run the "
                          "comparison to rewrite it.") from None
    return parse_record(kind, values, path)


def record_json(record: _Record) -> str:
    """The record as the JSON text written to disk (indented, newline-terminated)."""
    return json.dumps(record.dump(), indent=2) + "\n"
