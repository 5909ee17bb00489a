"""The reuse protocol: a run's ``DONE`` marker, and whether a finished run can be reused.

A run directory with a ``DONE`` marker (:data:`losslab.core.records.DONE_FILE`, JSON, written
last and atomically) is reused when the marker's settings are the ones this comparison plans
(:func:`losslab.train.config.run_identity`: every field but ``out``, so ``steps`` and
``optimizer.lr`` included), its checkpoint has trained the planned steps and its
``metrics.json`` is readable. Without ``DONE`` the run trains (and ``train`` resumes it from its
checkpoint, where ``steps`` and ``optimizer.lr`` may change: :data:`RESUME_SAFE_FIELDS`).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from losslab.core.atomic import write_text_atomic
from losslab.core.records import CHECKPOINT_FILE, DONE_FILE, METRICS_FILE, DoneMarker
from losslab.experiments.planning import PlannedRun
from losslab.experiments.schema import ExperimentError
from losslab.train.checkpointing import read_checkpoint_info
from losslab.train.config import run_identity


def done_payload(plan: PlannedRun) -> dict[str, Any]:
    """The ``DONE`` marker of a trained run: its label, loss and planned settings."""
    return DoneMarker(label=plan.label, loss=plan.loss, config=_planned_settings(plan.config),
                      finished=time.strftime("%Y-%m-%dT%H:%M:%S")).dump()


def _planned_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The planned values as JSON keeps them (tuples as lists), without ``out``: the marker
    stays valid when the comparison directory moves."""
    return {key: value for key, value in json.loads(json.dumps(config)).items() if key != "out"}


def is_reusable(plan: PlannedRun) -> bool:
    """Whether ``plan``'s run is finished (has a ``DONE`` marker) and reusable as it is."""
    run_dir = Path(plan.config["out"])
    return (run_dir / DONE_FILE).is_file() and check_reusable(run_dir, plan)


def check_reusable(run_dir: Path, plan: PlannedRun) -> bool:
    """Whether a run with a ``DONE`` marker can be reused as it is.

    Reused only when ``DONE`` is a losslab marker (JSON with the run's settings), the settings
    match this comparison's (:func:`~losslab.train.config.run_identity`: ``steps`` and
    ``optimizer.lr`` included, a run trained for 4 steps is not the 9-step run asked for),
    ``checkpoints/last.ckpt`` is readable and has trained the planned steps, and
    ``metrics.json`` is readable. A marker with other settings raises an
    :class:`ExperimentError` (retraining would silently discard a finished run); any other
    problem (an empty or foreign ``DONE``, a missing or short checkpoint, missing metrics) warns,
    removes the marker and returns ``False``, so the run is trained (resumed where a checkpoint
    allows) and evaluated again.
    """
    marker = run_dir / DONE_FILE
    try:
        stored = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = None
    previous = stored.get("config") if isinstance(stored, dict) else None
    problem = None
    if not isinstance(previous, dict):
        problem = "its DONE marker is empty or not a losslab marker"
    else:
        before, now = run_identity(previous), run_identity(_planned_settings(plan.config))
        if before != now:
            differences = [
                f"{key}: {before.get(key)!r} -> {now.get(key)!r}"
                for key in sorted(set(before) | set(now))
                if before.get(key) != now.get(key)
            ]
            raise ExperimentError(
                f"{run_dir} finished with other settings than this comparison asks for "
                f"({'; '.join(differences)}). Use another --out directory, or delete that run "
                "directory to retrain it."
            )
        problem = _finished_run_problem(run_dir, int(plan.config["steps"]))
    if problem is None:
        return True
    warnings.warn(f"{run_dir}: {problem}; training and evaluating it again.", stacklevel=3)
    marker.unlink(missing_ok=True)
    return False


def _finished_run_problem(run_dir: Path, steps: int) -> str | None:
    """Why a run marked done is not usable (``None`` if it is): checkpoint and metrics."""
    last = run_dir / CHECKPOINT_FILE
    if not last.is_file():
        return f"its checkpoint {last} is missing"
    try:
        trained = read_checkpoint_info(last)["global_step"]
    except ValueError as error:
        return f"its checkpoint cannot be read ({error})"
    if trained < steps:
        return f"its checkpoint holds {trained} of the {steps} planned steps"
    try:
        metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = None
    if not isinstance(metrics, dict):
        return "its metrics.json is missing or unreadable"
    return None


def other_sample_count(run_dir: Path, samples: int) -> bool:
    """Whether a finished stochastic run was evaluated with another number of samples."""
    try:
        block = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8")).get("samples")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(block, dict) and block.get("count") != samples


def write_done(run_dir: Path, payload: Mapping[str, Any]) -> None:
    """Write the ``DONE`` marker atomically (temporary file, then rename)."""
    write_text_atomic(run_dir / DONE_FILE, json.dumps(payload, indent=2) + "\n")


