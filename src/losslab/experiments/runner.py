"""The comparison runner: one training run per loss, evaluated and probed.

The runner writes results only; the HTML report is a separate step that reads them from disk
(:func:`losslab.report.build_report`, called by ``losslab compare`` after the runner and by
``losslab report DIR``), so experiments and report stay independent siblings.

:func:`run_comparison` writes the layout of ``docs/architecture.md`` ("Evaluated runs and
comparisons on disk")::

    DIR/experiment.yaml          the resolved experiment (budget after --steps / scaling,
                                 perceptual weights written into the specs)
    DIR/comparison.json          per run: label, loss, run dir, steps, feature-network weights,
                                 what the probe measured
    DIR/runs/<run_name>/...      train's run dir + evaluation files + DONE (written last)
    DIR/runs/baseline-<name>/    the task's untrained baseline (bicubic, copy of the last frame,
                                 grey), evaluated like a run: metrics.json, evaluation/, DONE
    DIR/probe.json|csv|png       the loss probe on the same specs
    DIR/metamers.json|png        loss metamers: one row per entry (losslab.synthesis)
    DIR/metrics.json|csv         {label: {metric: value}}

(``DIR/report/index.html`` is added by :func:`losslab.report.build_report`.)

Every comparison whose task has a trivial baseline (:meth:`losslab.train.tasks.Task.baseline`)
gets it as a first-class row: evaluated by the same metric code on the same validation images,
listed in ``comparison.json`` with ``"baseline": true``, shown in the metrics table, the image
grid and the perception-distortion plot, marked as a baseline. It costs no training and is
recomputed on every call.

It is restartable: a run whose ``DONE`` marker exists is reused (after checking that it was
trained with the same settings), a run that was interrupted resumes from its last checkpoint
(``train``'s own resume), and only the missing runs train.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from losslab import probe as probe_module
from losslab.core.atomic import write_text_atomic
from losslab.experiments.evaluate import (
    METRIC_KEYS,
    evaluate_baseline,
    evaluate_run,
    write_json_atomic,
    write_metrics_csv,
)
from losslab.experiments.schema import (
    Experiment,
    ExperimentError,
    check_perceptual_weights,
    resolve_experiment,
    settings_overrides,
)
from losslab.experiments.specs import (
    called_losses,
    probe_spec,
    safe_run_name,
    unique_run_names,
    with_perceptual_weights,
)
from losslab.losses import loss as build_loss
from losslab.synthesis import load_image, minimum_size, write_metamers
from losslab.train import StepReporter, TrainConfig, quiet_lightning, train
from losslab.train.checkpointing import read_checkpoint_info
from losslab.train.config import plain_data
from losslab.train.tasks import get_task_class
from losslab.weights import WeightsUnavailableError, get_weights_info

DONE_FILE = "DONE"
#: The target photo and start images of the report's metamer rows (cheap: 64 px, 150 steps).
METAMER_IMAGE = "astronaut"
METAMER_STARTS: tuple[str, ...] = ("noise", "photo")


@dataclass(frozen=True)
class PlannedRun:
    """One run of a comparison: its label, directory name and full training config values."""

    label: str
    run_name: str
    loss: str
    hypotheses: int
    note: str
    config: dict[str, Any]


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_budget(experiment: Experiment, *, steps: int | None = None,
                   budget_scale: float = 1.0, perceptual_weights: str | None = None) -> Experiment:
    """Apply command-line overrides and return the resolved experiment.

    Args:
        steps: replaces every run's step budget (entry overrides included).
        budget_scale: multiplies every run's steps (rounded, at least 1), e.g. 10 on a GPU;
            ignored when ``steps`` is given.
        perceptual_weights: ``imagenet``, ``random``, ``auto`` or the path of a VGG19 state dict
            file (relative to the working directory) for every ``perceptual`` term that does not
            name its weights; overrides the experiment's ``perceptual_weights``. ``auto``
            resolves here, once: ``imagenet`` when VGG19's ImageNet file is in the local cache
            (``losslab weights``), else ``random``; the resolved value (a path made absolute) is
            what ``experiment.yaml``, ``comparison.json`` and the report show.
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive integer; got {steps!r}.")
    if not (isinstance(budget_scale, (int, float)) and math.isfinite(budget_scale)
            and budget_scale > 0):
        raise ValueError(f"budget_scale must be a positive number (e.g. 10 on a GPU); got "
                         f"{budget_scale!r}.")
    if perceptual_weights is not None:
        try:
            perceptual_weights = check_perceptual_weights(perceptual_weights)
        except ValueError as error:
            raise ValueError(f"perceptual_weights {error}") from None

    def scaled(value: int) -> int:
        if steps is not None:
            return steps
        return max(1, round(value * budget_scale))

    weights = perceptual_weights or experiment.perceptual_weights
    if weights == "auto":
        weights = auto_perceptual_weights()
    entries = list(
        entry.model_copy(update={
            "loss": with_perceptual_weights(entry.loss, weights),  # a path is quoted there
            "steps": None if entry.steps is None else scaled(entry.steps),
        })
        for entry in experiment.entries
    )
    budget = experiment.budget.model_copy(update={"steps": scaled(experiment.budget.steps)})
    return experiment.model_copy(update={"entries": entries, "budget": budget,
                                         "perceptual_weights": weights})


def auto_perceptual_weights() -> str:
    """``"imagenet"`` when VGG19's ImageNet weights are in the local cache, else ``"random"``.

    Never downloads: ``auto`` exists so an experiment runs offline unchanged.
    """
    return "imagenet" if get_weights_info("vgg19-imagenet").present else "random"


def plan_runs(experiment: Experiment, out_dir: str | Path) -> list[PlannedRun]:
    """The runs of a (resolved) experiment with their ``TrainConfig`` values (nested dicts)."""
    out_dir = Path(out_dir)
    labels = [entry.name for entry in experiment.entries]
    plans = []
    for entry, run_name in zip(experiment.entries, unique_run_names(labels), strict=True):
        budget = experiment.budget
        values: dict[str, Any] = {
            "task": experiment.task,
            "loss": entry.loss,
            "steps": entry.steps or budget.steps,
            "out": str(out_dir / "runs" / run_name),
            "name": entry.name,
            "seed": budget.seed,
            "data": {
                "name": experiment.data,
                "crop_size": budget.crop_size,
                "batch_size": entry.batch_size or budget.batch_size,
                "options": copy.deepcopy(experiment.data_options),
            },
            "model": {
                "name": experiment.model,
                "options": _deep_merge(experiment.model_options, entry.model_options),
            },
            "hypotheses": {"count": entry.hypotheses},
            "optimizer": {"lr": entry.lr or budget.lr},
        }
        values = _deep_merge(values, settings_overrides(experiment.train_options))
        values = _deep_merge(values, settings_overrides(entry.train_options))
        if entry.latent.model_fields_set:  # only then: plain runs keep their recorded identity
            values = _deep_merge(values, {"latent": plain_data(
                entry.latent.model_dump(exclude_unset=True))})
        plans.append(PlannedRun(entry.name, run_name, entry.loss, entry.hypotheses, entry.note,
                                values))
    return plans


@dataclass(frozen=True)
class PlannedBaseline:
    """The task's untrained baseline row: its label, directory name and what it does."""

    label: str
    run_name: str
    description: str


def plan_baseline(experiment: Experiment, plans: list[PlannedRun]) -> PlannedBaseline | None:
    """The baseline row of a comparison (``None`` when its task has no baseline).

    Its directory name avoids the runs' names (``baseline-bicubic``, then ``-2`` ...).
    """
    task = get_task_class(experiment.task)
    if not task.baseline_name:
        return None
    label = f"{task.baseline_name} (baseline)"
    used = {plan.run_name.lower() for plan in plans}
    base = "baseline-" + safe_run_name(task.baseline_name)
    name, counter = base, 1
    while name.lower() in used:
        counter += 1
        name = f"{base}-{counter}"
    return PlannedBaseline(label, name, task.baseline_description)


def _train_config(plan: PlannedRun) -> Any:
    try:
        return TrainConfig.from_dict(plan.config)
    except (TypeError, ValueError) as error:
        raise ExperimentError(
            f"entry {plan.label!r}: its training settings are not a valid TrainConfig: {error} "
            "(check train_options / model_options in the experiment file)."
        ) from None


def _weights_descriptions(module: Any) -> list[str]:
    found = []
    for child in module.modules():
        description = getattr(child, "weights_description", None)
        if isinstance(description, str) and description not in found:
            found.append(description)
    return found


def preflight(plans: list[PlannedRun]) -> dict[str, list[str]]:
    """Build every loss and config before any training, so a typo fails in seconds, not after
    the first runs; returns each run's feature-network weight descriptions."""
    descriptions = {}
    for plan in plans:
        _train_config(plan)
        try:
            module = build_loss(plan.loss)
        except Exception as error:  # weights missing, typo: stop before training anything
            hint = ""
            if isinstance(error, WeightsUnavailableError) and "perceptual" in plan.loss:
                hint = (" For an offline smoke run of the whole comparison, pass "
                        "--perceptual-weights random (run_comparison(..., "
                        "perceptual_weights='random')); the report flags it.")
            raise ExperimentError(
                f"entry {plan.label!r}: cannot build its loss: {error}{hint}"
            ) from error
        descriptions[plan.run_name] = _weights_descriptions(module)
    return descriptions


def _done_payload(plan: PlannedRun) -> dict[str, Any]:
    return {"label": plan.label, "loss": plan.loss, "config": _identity(plan.config),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config fields that decide what a run learns (the output path is left out)."""
    return {key: value for key, value in json.loads(json.dumps(config)).items() if key != "out"}


def _check_reusable(run_dir: Path, plan: PlannedRun) -> bool:
    """Whether a run with a ``DONE`` marker can be reused as it is.

    Reused only when ``DONE`` is a losslab marker (JSON with the run's settings), the settings
    match this comparison's, ``checkpoints/last.ckpt`` is readable and has trained the planned
    steps, and ``metrics.json`` is readable. A marker with other settings raises an
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
        current = _identity(plan.config)
        if previous != current:
            differences = [
                f"{key}: {previous.get(key)!r} -> {current.get(key)!r}"
                for key in sorted(set(previous) | set(current))
                if previous.get(key) != current.get(key)
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
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return f"its checkpoint {last} is missing"
    try:
        trained = read_checkpoint_info(last)["global_step"]
    except ValueError as error:
        return f"its checkpoint cannot be read ({error})"
    if trained < steps:
        return f"its checkpoint holds {trained} of the {steps} planned steps"
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = None
    if not isinstance(metrics, dict):
        return "its metrics.json is missing or unreadable"
    return None


def write_done(run_dir: Path, payload: Mapping[str, Any]) -> None:
    """Write the ``DONE`` marker atomically (temporary file, then rename)."""
    write_text_atomic(run_dir / DONE_FILE, json.dumps(payload, indent=2) + "\n")


def train_and_evaluate(plan: PlannedRun, *, callbacks: Sequence[Any] = (),
                       progress_bar: bool | None = None) -> bool:
    """Train (or resume) one run, evaluate it and mark it done; ``False`` if it was reused.

    Args:
        callbacks: extra Lightning callbacks for the training (progress reporting).
        progress_bar: override the run's ``progress_bar`` setting (a resume-safe field, so it
            does not change what the run is); ``None`` keeps the plan's.
    """
    run_dir = Path(plan.config["out"])
    if (run_dir / DONE_FILE).is_file() and _check_reusable(run_dir, plan):
        return False
    config = _train_config(plan)
    if progress_bar is not None:
        config.progress_bar = progress_bar
    train(config, callbacks=callbacks)
    evaluate_run(run_dir)
    write_done(run_dir, _done_payload(plan))
    return True


def _train_all(plans: list[PlannedRun], name: str, *, progress: bool, verbose: bool) -> list[str]:
    """Train every plan in turn under one progress display; returns the run names trained now.

    The display counts optimizer steps over the whole comparison (so its time-left estimate is
    the comparison's), its label says which run of how many is training, and its postfix the
    run's step and loss. Each finished run prints one line. With ``verbose``, Lightning's own
    bar and messages are shown instead.
    """
    total = sum(int(plan.config["steps"]) for plan in plans)
    # On a terminal the line is redrawn in place; in a log file (CI, nohup) every redraw is a new
    # line, so redraw at most every 30 s there instead of every few steps.
    interactive = sys.stderr.isatty()
    bar = tqdm(total=total, unit="step", disable=not progress or verbose, dynamic_ncols=True,
               mininterval=0.2 if interactive else 30.0, miniters=1,
               bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")
    trained: list[str] = []
    done_before = 0  # steps of the runs already finished
    for index, plan in enumerate(plans, start=1):
        steps = int(plan.config["steps"])
        bar.set_description_str(f"{name}: run {index}/{len(plans)} {plan.label}")

        def report(step: int, loss: float | None, _base: int = done_before, _steps: int = steps) -> None:
            bar.set_postfix_str(f"step {step}/{_steps}" + ("" if loss is None else f" loss {loss:.4g}"),
                                refresh=False)
            bar.update(_base + min(step, _steps) - bar.n)  # redraws at most every mininterval

        started = time.monotonic()
        with quiet_lightning(not verbose):
            fresh = train_and_evaluate(plan, callbacks=[StepReporter(report)] if progress else [],
                                       progress_bar=verbose)
        done_before += steps
        bar.update(done_before - bar.n)
        if fresh:
            trained.append(plan.run_name)
        if progress:
            status = (f"trained and evaluated in {time.monotonic() - started:.0f} s" if fresh
                      else "reused (finished earlier)")
            bar.write(f"[{index}/{len(plans)}] {plan.label}: {status}{_summary(plan)}")
    bar.close()
    return trained


def _summary(plan: PlannedRun) -> str:
    """``", PSNR 24.1 dB, SSIM 0.812"`` from the run's metrics.json (empty if unreadable)."""
    path = Path(plan.config["out"]) / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    parts = []
    for key, text in (("psnr", "PSNR {:.2f} dB"), ("ssim", "SSIM {:.3f}")):
        value = metrics.get(key) if isinstance(metrics, dict) else None
        if isinstance(value, (int, float)):
            parts.append(text.format(value))
    return (", " + ", ".join(parts)) if parts else ""


SAMPLE_BASED_NOTE = ("not probed and no metamer row: a sample-based score (energy_score, crps, "
                     "kernel_score) compares a set of draws with the target; the probe and the "
                     "metamers change one image")


def _sample_based(spec: str) -> bool:
    """Whether the loss ``spec`` has a sample-based term (it scores ``(N, m, C, H, W)`` draws)."""
    built = build_loss(spec)
    terms = [part.term for part in built.weighted_terms()] if hasattr(built, "weighted_terms") \
        else [built]
    return any(getattr(term, "sample_based", False) for term in terms)


def _run_probe(plans: list[PlannedRun], out_dir: Path,
               image_size: int | None = None) -> dict[str, dict[str, Any]]:
    """Probe the runs' losses (adversarial terms left out); write probe.json/csv/png.

    ``image_size``: side of the probe's photo crops (``None``: the probe's default, 192 px, which
    5-scale MS-SSIM needs; specs that mention ``ms_ssim`` always get the default).

    Returns ``{run_name: {"spec": probed spec or None, "note": what was left out}}``.
    """
    notes: dict[str, dict[str, Any]] = {}
    specs: list[str] = []
    for plan in plans:
        spec, note = probe_spec(plan.loss)
        if spec is not None and _sample_based(spec):
            spec, note = None, SAMPLE_BASED_NOTE
        if plan.hypotheses > 1 and spec is not None:
            note = (f"probed as its per-hypothesis loss {spec!r}: the winner-takes-all minimum "
                    f"over {plan.hypotheses} outputs has no single prediction to perturb")
        notes[plan.run_name] = {"spec": spec, "note": note}
        if spec is not None and spec not in specs:
            specs.append(spec)
    if specs:
        images = None
        if image_size is not None and not any("ms_ssim" in called_losses(spec) for spec in specs):
            images = probe_module.default_probe_images(size=image_size)
        result = probe_module.run_probe(specs, images)
        probe_module.write_probe_json(result, out_dir / "probe.json")
        probe_module.write_probe_csv(result, out_dir / "probe.csv")
        probe_module.plot_probe_heatmap(result, out_dir / "probe.png")
    return notes


def _run_metamers(plans: list[PlannedRun], out_dir: Path, size: int, steps: int) -> None:
    """One metamer row per run (adversarial terms left out); writes metamers.json/png.

    The image is the bundled photo :data:`METAMER_IMAGE` at ``size`` px, or larger when a loss
    needs it (5-scale MS-SSIM: 161 px). A synthesis error is written into ``metamers.json``
    (``{"error": ...}``) for the report to show, so finished training is never lost to it.
    """
    rows: list[tuple[str, str]] = []
    notes: dict[str, str] = {}
    for plan in plans:
        spec, note = probe_spec(plan.loss)
        if spec is not None and _sample_based(spec):
            spec, note = None, SAMPLE_BASED_NOTE
        if plan.hypotheses > 1 and spec is not None:
            note = (f"shown for its per-hypothesis loss {spec!r} (a winner-takes-all minimum over "
                    f"{plan.hypotheses} outputs has no single image to synthesise)")
        if spec is None and note != SAMPLE_BASED_NOTE:
            note = ("no row: its only term is adversarial, a discriminator trained with the "
                    "generator, not a fixed function of (image, target)")
        elif spec is not None and spec != plan.loss and plan.hypotheses == 1:
            note = f"shown as {spec!r}: adversarial terms have no fixed value to synthesise for"
        if note:
            notes[plan.label] = note
        if spec is not None:
            rows.append((plan.label, spec))
    if not rows:
        write_json_atomic(out_dir / "metamers.json", {"error": "no loss without adversarial "
                                                               "terms to synthesise for"})
        return
    try:
        needed = max(minimum_size(build_loss(spec))[0] for _, spec in rows)
        image_size = max(size, needed)
        load_image(METAMER_IMAGE, image_size)  # fail here, not after the first row
        write_metamers(
            [spec for _, spec in rows], METAMER_IMAGE, out_dir, size=image_size,
            starts=METAMER_STARTS, steps=steps, labels=[label for label, _ in rows],
            name="metamers", title="What each loss considers equal (loss metamers)",
            extra={"notes": notes},
        )
    except (ValueError, RuntimeError, FloatingPointError, OSError) as error:
        (out_dir / "metamers.png").unlink(missing_ok=True)
        write_json_atomic(out_dir / "metamers.json", {"error": str(error), "notes": notes})


def collect_metrics(plans: list[PlannedRun], out_dir: Path,
                    baseline: PlannedBaseline | None = None) -> dict[str, dict[str, Any]]:
    """``{label: {"run_dir", "loss", metric: value...}}`` from each run's ``metrics.json``
    (the baseline first, with ``"baseline": true`` and an empty ``loss``)."""
    rows: list[tuple[str, str, str, bool]] = [(plan.label, plan.run_name, plan.loss, False)
                                              for plan in plans]
    if baseline is not None:
        rows.insert(0, (baseline.label, baseline.run_name, "", True))
    table: dict[str, dict[str, Any]] = {}
    for label, run_name, loss, is_baseline in rows:
        path = out_dir / "runs" / run_name / "metrics.json"
        metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        row: dict[str, Any] = {"run_dir": run_name, "loss": loss}
        if is_baseline:
            row["baseline"] = True
        row.update({key: metrics.get(key) for key in METRIC_KEYS
                    if key in metrics or key != "psnr_plausible"})
        row["unavailable"] = metrics.get("unavailable", {})
        row["notes"] = metrics.get("notes", {})
        table[label] = row
    return table


def _write_experiment_yaml(experiment: Experiment, out_dir: Path) -> None:
    write_text_atomic(out_dir / "experiment.yaml", experiment.to_yaml())


def run_comparison(
    experiment: str | Path | Experiment,
    out_dir: str | Path | None = None,
    *,
    steps: int | None = None,
    budget_scale: float = 1.0,
    perceptual_weights: str | None = None,
    probe: bool = True,
    probe_image_size: int | None = 96,
    metamers: bool = True,
    metamer_image_size: int = 64,
    metamer_steps: int = 150,
    progress: bool = True,
    verbose: bool = False,
) -> Path:
    """Train one model per loss of an experiment, evaluate and probe them; write the results.

    The HTML report is not built here: pass the returned directory to
    :func:`losslab.report.build_report` (``losslab compare`` does both).

    Args:
        experiment: a shipped name (``"colors"``), a YAML path or an :class:`Experiment`.
        out_dir: the comparison directory (default ``runs/<experiment name>``); re-running into
            the same directory continues where a previous call stopped.
        steps: replaces every run's step budget.
        budget_scale: multiplies every run's steps (e.g. 10 on a GPU).
        perceptual_weights: ``imagenet``, ``random`` or ``auto`` for ``perceptual`` terms that
            name none (see :func:`resolve_budget`).
        probe: run the loss probe on the same specs (``probe.json/csv/png``).
        probe_image_size: side of the probe's photo crops in pixels (96 keeps deep feature
            losses cheap on a CPU; ``None`` = the probe's default 192 px; specs with ``ms_ssim``
            always use the default, which 5-scale MS-SSIM needs).
        metamers: synthesise one loss metamer row per entry (``metamers.json/png``, the
            report's "What each loss considers equal"); adversarial terms are left out.
        metamer_image_size: side of the metamers' target photo in pixels (raised to what a
            loss needs, e.g. 161 px for 5-scale MS-SSIM).
        metamer_steps: optimisation steps per metamer.
        progress: show one progress display for the whole comparison (run k of n, step, loss,
            time left) and one line per finished run.
        verbose: show each run's own Lightning progress bar, messages and warnings instead.

    Returns:
        the comparison directory ``DIR``, complete on disk (``comparison.json`` written last).
    """
    resolved = resolve_budget(resolve_experiment(experiment), steps=steps,
                              budget_scale=budget_scale, perceptual_weights=perceptual_weights)
    out = Path(out_dir) if out_dir is not None else Path("runs") / resolved.name
    plans = plan_runs(resolved, out)
    weights = preflight(plans)
    out.mkdir(parents=True, exist_ok=True)
    _write_experiment_yaml(resolved, out)

    trained = _train_all(plans, resolved.name, progress=progress, verbose=verbose)
    baseline = plan_baseline(resolved, plans)
    if baseline is not None:
        baseline_dir = out / "runs" / baseline.run_name
        evaluate_baseline(_train_config(plans[0]), baseline_dir)
        write_done(baseline_dir, {"label": baseline.label, "baseline": True,
                                  "description": baseline.description,
                                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})

    probe_notes = _run_probe(plans, out, probe_image_size) if probe else {
        plan.run_name: {"spec": None, "note": "probe skipped (probe=False)"} for plan in plans}
    if metamers:
        _run_metamers(plans, out, metamer_image_size, metamer_steps)
    table = collect_metrics(plans, out, baseline)
    write_json_atomic(out / "metrics.json", table)
    write_metrics_csv(out / "metrics.csv", table, first_columns=("name", "run_dir", "loss"))
    write_json_atomic(out / "comparison.json", {
        "experiment": resolved.name,
        "perceptual_weights": resolved.perceptual_weights,
        "runs": ([] if baseline is None else [{
            "label": baseline.label,
            "run_dir": baseline.run_name,
            "loss": "",
            "baseline": True,
            "hypotheses": 1,
            "note": baseline.description,
            "steps": 0,
            "weights": [],
            "probe_spec": None,
            "probe_note": "",
        }]) + [
            {
                "label": plan.label,
                "run_dir": plan.run_name,
                "loss": plan.loss,
                "baseline": False,
                "hypotheses": plan.hypotheses,
                "note": plan.note,
                "steps": plan.config["steps"],
                "weights": weights.get(plan.run_name, []),
                "probe_spec": probe_notes[plan.run_name]["spec"],
                "probe_note": probe_notes[plan.run_name]["note"],
            }
            for plan in plans
        ],
        "trained_this_call": trained,
    })
    return out
