"""The record of a comparison: the metric table (``metrics.json``/``csv``) and
``comparison.json`` (:class:`losslab.core.records.ComparisonRecord`), from the runs on disk."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from losslab.core.records import (
    METRICS_FILE,
    RECORD_VERSION,
    RUNS_DIR,
    ComparisonRecord,
    RunEntry,
)
from losslab.experiments.evaluate import METRIC_KEYS
from losslab.experiments.planning import PlannedBaseline, PlannedRun, entry_groups
from losslab.experiments.seeds import combine, headline_metric, median_seed
from losslab.metrics import SAMPLE_KEYS


def _run_metrics(out_dir: Path, run_name: str) -> dict[str, Any]:
    path = out_dir / RUNS_DIR / run_name / METRICS_FILE
    try:
        metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        metrics = {}
    return metrics if isinstance(metrics, dict) else {}


def _metric_row(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A run's row of the metric table; the optional rows (psnr_plausible, the sample rows of
    stochastic runs) only where the run has them."""
    return {key: metrics.get(key) for key in METRIC_KEYS
            if key in metrics or key not in ("psnr_plausible", *SAMPLE_KEYS)}


def seed_record(group: Sequence[PlannedRun], out_dir: Path) -> dict[str, Any]:
    """The seeds of one entry combined (an entry of several seeds; see
    :mod:`losslab.experiments.seeds`).

    Returns ``{"seeds": {seed: {"run_dir", metric: value...}}, "spread": {metric: {"mean", "sd",
    "min", "max", "n"}}, "headline_metric", "median_seed", "median_run_dir", "means": {...}}``;
    seeds as strings (JSON keys). A seed without ``metrics.json`` (failed) has only its
    ``run_dir`` and counts in no spread.
    """
    per_seed = {plan.seed: _run_metrics(out_dir, plan.run_name) for plan in group}
    headline = headline_metric({seed: m for seed, m in per_seed.items() if m})
    middle = median_seed(per_seed, headline)
    means, spreads = combine(per_seed, METRIC_KEYS)
    run_dirs = {plan.seed: plan.run_name for plan in group}
    return {
        "seeds": {str(seed): {"run_dir": run_dirs[seed], **_metric_row(metrics)}
                  for seed, metrics in per_seed.items()},
        "spread": spreads, "headline_metric": headline, "median_seed": middle,
        "median_run_dir": run_dirs[middle], "means": means,
    }


def collect_metrics(plans: list[PlannedRun], out_dir: Path,
                    baseline: PlannedBaseline | None = None) -> dict[str, dict[str, Any]]:
    """``{label: {"run_dir", "loss", metric: value...}}`` from each run's ``metrics.json``
    (the baseline first, with ``"baseline": true`` and an empty ``loss``).

    An entry trained with several seeds gets the mean over its seeds as each metric's value,
    ``run_dir`` = its median seed's run (the one the report's images show), and the fields of
    :func:`seed_record` (``seeds``, ``spread``, ``headline_metric``, ``median_seed``); its
    ``unavailable`` and ``notes`` are the median seed's. One seed: exactly as before.
    """
    table: dict[str, dict[str, Any]] = {}
    if baseline is not None:
        metrics = _run_metrics(out_dir, baseline.run_name)
        table[baseline.label] = {"run_dir": baseline.run_name, "loss": "", "baseline": True,
                                 **_metric_row(metrics),
                                 "unavailable": metrics.get("unavailable", {}),
                                 "notes": metrics.get("notes", {})}
    for group in entry_groups(plans):
        first = group[0]
        if len(group) == 1:
            metrics = _run_metrics(out_dir, first.run_name)
            row: dict[str, Any] = {"run_dir": first.run_name, "loss": first.loss,
                                   **_metric_row(metrics)}
        else:
            record = seed_record(group, out_dir)
            metrics = _run_metrics(out_dir, record["median_run_dir"])
            means = record.pop("means")
            row = {"run_dir": record["median_run_dir"], "loss": first.loss,
                   **{key: means.get(key) for key in _metric_row(metrics) | means}}
            row.update({key: record[key] for key in ("headline_metric", "median_seed")})
            row["seed_list"] = ",".join(str(plan.seed) for plan in group)  # a CSV column
            row["seeds"] = record["seeds"]
            row["spread"] = record["spread"]
        row["unavailable"] = metrics.get("unavailable", {})
        row["notes"] = metrics.get("notes", {})
        table[first.label] = row
    return table


def entry_record(group: Sequence[PlannedRun], weights: Mapping[str, list[str]],
                 probe_notes: Mapping[str, Mapping[str, Any]],
                 table: Mapping[str, Mapping[str, Any]],
                 timings: Mapping[str, Mapping[str, float]]) -> RunEntry:
    """The ``comparison.json`` row of one entry (``group``: its seeds' plans).

    ``weights``: each run's feature-network descriptions (:func:`preflight`); ``probe_notes``:
    ``{run_name: {"spec", "note"}}``; ``table``: :func:`collect_metrics`; ``timings``:
    ``{run_name: {"training", "evaluation"}}`` seconds of the runs trained this call.
    """
    first = group[0]
    item: dict[str, Any] = {
        "label": first.label, "run_dir": first.run_name, "loss": first.loss, "baseline": False,
        "hypotheses": first.hypotheses, "note": first.note, "steps": first.config["steps"],
        "weights": weights.get(first.run_name, []),
        "probe_spec": probe_notes[first.run_name]["spec"],
        "probe_note": probe_notes[first.run_name]["note"],
    }
    if len(group) > 1:  # several seeds: the record of every seed, the spread, the median run
        row = table[first.label]
        item["run_dir"] = row["run_dir"]
        item.update({key: row[key] for key in ("seeds", "spread", "headline_metric",
                                               "median_seed")})
        item["entry_dir"] = first.entry_run_name
    seconds = {plan.run_name: dict(timings[plan.run_name]) for plan in group
               if timings.get(plan.run_name)}
    if seconds:
        item["timings"] = seconds
    return RunEntry(**item)


def baseline_record(baseline: PlannedBaseline) -> RunEntry:
    """The ``comparison.json`` row of the task's untrained baseline."""
    return RunEntry(label=baseline.label, run_dir=baseline.run_name, loss="", baseline=True,
                    hypotheses=1, note=baseline.description, steps=0, weights=[],
                    probe_spec=None, probe_note="")


def comparison_record(name: str, perceptual_weights: str | None, plans: Sequence[PlannedRun],
                      baseline: PlannedBaseline | None, entries: Sequence[RunEntry], *,
                      trained: Sequence[str], failed: Mapping[str, str],
                      timings: Mapping[str, float]) -> ComparisonRecord:
    """``DIR/comparison.json``: the baseline row first, then one row per entry (``entries``,
    from :func:`entry_record`), what this call trained and what failed, and its seconds
    (rounded to 0.01 s)."""
    return ComparisonRecord(
        version=RECORD_VERSION,  # set, so that the file names it
        experiment=name,
        perceptual_weights=perceptual_weights,
        seeds=[plan.seed for plan in entry_groups(plans)[0]],
        runs=([] if baseline is None else [baseline_record(baseline)]) + list(entries),
        trained_this_call=list(trained),
        failed=dict(failed),
        timings={key: round(value, 2) for key, value in timings.items()},
    )
