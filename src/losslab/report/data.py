"""Read a comparison directory from disk (the report never trains or evaluates).

The layout is the one in ``docs/architecture.md`` ("Evaluated runs and comparisons on disk").
Every file but a run's ``config.yaml`` is optional: a missing file leaves its section of the
report with a note saying what is missing and which command makes it.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from losslab.core.records import (
    COMPARISON_FILE,
    CONFIG_FILE,
    DONE_FILE,
    EVALUATION_DIR,
    EXPERIMENT_FILE,
    LOGS_DIR,
    METAMERS_JSON,
    METRICS_CSV,
    METRICS_FILE,
    NEIGHBOURS_FILE,
    PREDICTIONS_FILE,
    PROBE_JSON,
    RUNS_DIR,
    SPECTRUM_FILE,
    ComparisonRecord,
    RunEntry,
    parse_record,
    read_record,
)
from losslab.core.serialization import load_torch_file
from losslab.core.yaml_io import load_yaml


class NotAComparisonError(ValueError):
    """A directory that holds no comparison (no ``runs/`` with a run in it)."""


@dataclass
class RunRecord:
    """One run of a comparison as found on disk.

    Attributes:
        label: the human name (the entry's name or its loss spec).
        run_dir: the run's directory.
        loss: the loss spec it was trained with.
        hypotheses: ``K`` outputs per input (1 = ordinary model).
        note: the entry's note from the experiment file.
        steps: its step budget (``None`` when unknown).
        weights: descriptions of the feature networks its loss used (``perceptual`` terms).
        probe_spec / probe_note: what the loss probe measured for it, and what was left out.
        metrics: ``metrics.json`` (``{}`` when the run was not evaluated).
        done: whether its ``DONE`` marker exists.
        baseline: an untrained baseline row (bicubic, copy of the last frame, grey), not a
            trained model: it has no loss, no training log and no probe row.
        seeds: an entry trained with several seeds: ``{seed: {"run_dir", metric: value}}``
            (``{}`` for one seed). ``run_dir`` is then the median seed's run (by
            ``headline_metric``), whose images and curves the report shows, and ``metrics``
            holds that run's ``metrics.json`` with every scalar metric replaced by its mean
            over the seeds.
        spread: ``{metric: {"mean", "sd", "min", "max", "n"}}`` over the seeds (``{}`` for one).
        median_seed / headline_metric: which seed ``run_dir`` is, and by which metric.
    """

    label: str
    run_dir: Path
    loss: str = ""
    hypotheses: int = 1
    note: str = ""
    steps: int | None = None
    weights: list[str] = field(default_factory=list)
    probe_spec: str | None = None
    probe_note: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    done: bool = False
    baseline: bool = False
    seeds: dict[str, dict[str, Any]] = field(default_factory=dict)
    spread: dict[str, dict[str, float]] = field(default_factory=dict)
    median_seed: int | None = None
    headline_metric: str = ""

    @property
    def name(self) -> str:
        """The run directory relative to ``runs/`` (``l1``, or ``l1/seed-2`` for a seed)."""
        if self.run_dir.name.startswith("seed-"):  # the runner's layout for another seed
            return f"{self.run_dir.parent.name}/{self.run_dir.name}"
        return self.run_dir.name

    @property
    def stochastic(self) -> bool:
        """Whether the run was evaluated on samples of a stochastic model (its metrics.json has
        a ``"samples"`` block)."""
        return isinstance(self.metrics.get("samples"), dict)

    def _saved(self) -> dict[str, Any] | None:
        path = self.run_dir / EVALUATION_DIR / PREDICTIONS_FILE
        if not path.is_file():
            return None
        loaded = load_torch_file(path, what="saved predictions",
                                 remedy="re-run the comparison to evaluate this run again")
        if not isinstance(loaded, dict) or not all(
                isinstance(loaded.get(key), Tensor) for key in ("inputs", "outputs", "targets")):
            raise ValueError(f"{str(path)!r} does not hold the tensors inputs, outputs and "
                             "targets; re-run the comparison to evaluate this run again.")
        return loaded

    def predictions(self) -> dict[str, Tensor] | None:
        """``evaluation/predictions.pt`` (``inputs``, ``outputs``, ``targets``) or ``None``."""
        loaded = self._saved()
        if loaded is None:
            return None
        return {key: loaded[key].float() for key in ("inputs", "outputs", "targets")}

    def samples(self) -> dict[str, Tensor] | None:
        """A stochastic run's saved draws, or ``None`` (deterministic, or not evaluated).

        Keys: ``samples`` ``(M, S, 3, H, W)`` (the first ``M`` validation inputs), ``sample_mean``
        ``(N, 3, H, W)``, ``inputs``, ``outputs`` (sample 0 of each input), ``targets`` and, when
        the data knows them, ``plausible`` ``(N, P, 3, H, W)``; all in ``[0, 1]``.
        """
        loaded = self._saved()
        if loaded is None or not isinstance(loaded.get("samples"), Tensor) \
                or not isinstance(loaded.get("sample_mean"), Tensor):
            return None
        keys = ("inputs", "outputs", "targets", "samples", "sample_mean", "plausible")
        return {key: loaded[key].float() for key in keys if isinstance(loaded.get(key), Tensor)}

    def spectrum(self) -> dict[str, list[float]] | None:
        return _read_json(self.run_dir / EVALUATION_DIR / SPECTRUM_FILE)

    def neighbours(self) -> dict[str, Any] | None:
        return _read_json(self.run_dir / EVALUATION_DIR / NEIGHBOURS_FILE)

    def training_log(self) -> dict[str, list[tuple[float, float]]]:
        """Every numeric column of the run's Lightning CSV logs as ``(step, value)`` pairs."""
        return read_training_log(self.run_dir)


@dataclass
class Comparison:
    """A comparison directory: the resolved experiment, its runs, the probe results and the
    loss metamers (``metamers.json``, written beside ``metamers.png`` by the runner)."""

    directory: Path
    experiment: dict[str, Any]
    runs: list[RunRecord]
    perceptual_weights: str | None = None
    probe: dict[str, Any] | None = None
    metamers: dict[str, Any] | None = None

    @property
    def title(self) -> str:
        return str(self.experiment.get("name") or self.directory.name)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it and re-run the "
                         "comparison (or losslab evaluate on that run) to rewrite it.") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    values = load_yaml(path.read_text(encoding="utf-8"), what=f"file {str(path)!r}")
    return values if isinstance(values, dict) else {}


def _version_number(path: Path) -> tuple[int, str]:
    match = re.search(r"version_(\d+)", str(path))
    return (int(match.group(1)) if match else -1, str(path))


def read_training_log(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """Read every Lightning ``CSVLogger`` ``metrics.csv`` under ``run_dir/logs``.

    A resumed run has one CSV per version; they are read in version order and concatenated.
    Returns ``{column: [(step, value), ...]}`` for the numeric columns (``step`` and ``epoch``
    excluded); empty cells are skipped. Missing logs give ``{}``.
    """
    files = sorted((run_dir / LOGS_DIR).rglob(METRICS_CSV), key=_version_number)
    series: dict[str, list[tuple[float, float]]] = {}
    for file in files:
        with file.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                step_text = row.get("step") or ""
                try:
                    step = float(step_text)
                except ValueError:
                    continue
                for column, text in row.items():
                    if column in ("step", "epoch") or column is None or not text:
                        continue
                    try:
                        value = float(text)
                    except (TypeError, ValueError):
                        continue
                    series.setdefault(column, []).append((step, value))
    return series


def _runs_from_listing(directory: Path) -> list[RunEntry]:
    runs = []
    for run_dir in sorted(p for p in (directory / RUNS_DIR).iterdir() if p.is_dir()):
        config = _read_yaml(run_dir / CONFIG_FILE)
        if not config:
            continue
        hypotheses = config.get("hypotheses", {})
        runs.append(RunEntry(
            label=config.get("name") or run_dir.name,
            run_dir=run_dir.name,
            loss=config.get("loss", ""),
            hypotheses=hypotheses.get("count", 1) if isinstance(hypotheses, dict) else 1,
            steps=config.get("steps"),
        ))
    return runs


def load_comparison(directory: str | Path) -> Comparison:
    """Read a comparison directory written by ``losslab compare``.

    Run order and labels come from ``comparison.json``; without it, from ``metrics.json``; without
    either, from the run directories' ``config.yaml`` files.

    Raises:
        NotAComparisonError: the directory does not exist, or has no ``runs/`` folder with at
            least one run.
    """
    path = Path(directory)
    if not path.exists():
        raise NotAComparisonError(
            f"comparison directory {str(path)!r} does not exist; give the --out DIR of a "
            "finished losslab compare EXPERIMENT --out DIR."
        )
    if not (path / "runs").is_dir():
        hint = ""
        if (path / CONFIG_FILE).is_file():
            hint = " It looks like a single run: use losslab evaluate on it instead."
        raise NotAComparisonError(
            f"{str(path)!r} is not a comparison directory: it has no runs/ folder (losslab compare "
            f"EXPERIMENT --out DIR makes one).{hint}"
        )
    experiment = _read_yaml(path / EXPERIMENT_FILE)
    summary: ComparisonRecord | None = read_record(ComparisonRecord, path / COMPARISON_FILE)
    listed = list(summary.runs) if summary is not None else []
    if not listed:
        table = _read_json(path / METRICS_FILE) or {}
        listed = [
            parse_record(RunEntry, {"label": label, "run_dir": row.get("run_dir", label),
                                    "loss": row.get("loss", ""),
                                    "baseline": bool(row.get("baseline", False))},
                         path / METRICS_FILE)
            for label, row in table.items() if isinstance(row, dict)
        ] or _runs_from_listing(path)
    if not listed:
        raise NotAComparisonError(f"{str(path)!r} has a runs/ folder but no run in it; run losslab "
                                  "compare into it first.")
    runs = []
    for item in listed:
        run_dir = path / RUNS_DIR / item.run_dir
        config = _read_yaml(run_dir / CONFIG_FILE)
        metrics = _read_json(run_dir / METRICS_FILE) or {}
        spread = item.spread
        if spread:  # several seeds: the table and the plots show the mean over the seeds
            metrics = {**metrics, **{key: value["mean"] for key, value in spread.items()
                                     if "mean" in value}}
        hypotheses = item.hypotheses
        if hypotheses is None:
            block = config.get("hypotheses", {})
            hypotheses = block.get("count", 1) if isinstance(block, dict) else 1
        runs.append(RunRecord(
            label=item.label or run_dir.name,
            run_dir=run_dir,
            loss=item.loss or str(config.get("loss", "")),
            hypotheses=int(hypotheses),
            note=item.note,
            steps=item.steps if "steps" in item.model_fields_set else config.get("steps"),
            weights=list(item.weights),
            probe_spec=item.probe_spec,
            probe_note=item.probe_note,
            metrics=metrics,
            done=(run_dir / DONE_FILE).is_file(),
            baseline=item.baseline,
            seeds=dict(item.seeds),
            spread=spread,
            median_seed=item.median_seed,
            headline_metric=item.headline_metric,
        ))
    weights = (summary.perceptual_weights if summary is not None
               and "perceptual_weights" in summary.model_fields_set
               else experiment.get("perceptual_weights"))
    return Comparison(
        directory=path,
        experiment=experiment,
        runs=runs,
        perceptual_weights=weights,
        probe=_read_json(path / PROBE_JSON),
        metamers=_read_json(path / METAMERS_JSON),
    )
