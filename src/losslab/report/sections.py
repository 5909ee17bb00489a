"""The report's content as plain data: one function per section, no HTML.

Each function reads a :class:`~losslab.report.data.Comparison` (and, for sections with a figure,
draws its PNG into the report folder) and returns a small dataclass of strings, numbers and file
names. ``templates/report.html.j2`` turns them into HTML with autoescaping on, so a run label,
loss spec or note from the user is always text, never markup. Numbers stay numbers here; the
template formats them (``format_number``), so tests can check values rather than strings.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from losslab.core.records import METAMERS_PNG, PROBE_PNG, TASK_INPUT_CAPTIONS
from losslab.metrics.fidelity import per_image_psnr
from losslab.metrics.plausibility import per_image_psnr_plausible
from losslab.metrics.samples import CLOSENESS, ideal_mean_error, reached_answers, rmse_between
from losslab.metrics.table import METRIC_TABLE, SAMPLE_KEYS
from losslab.report import figures
from losslab.report.data import Comparison, RunRecord

Direction = Literal["max", "min", "one", "none"]

#: Column order of the metrics table and how each metric is read, from the one metric table
#: (:data:`losslab.metrics.table.METRIC_TABLE`): key -> (direction, label), where direction is
#: "max" (higher is better), "min" (lower is better), "one" (closer to 1 is better) or "none"
#: (a description with no better direction: the diversity of samples).
#: Read only through :func:`metric_columns`.
METRIC_DIRECTIONS: dict[str, tuple[Direction, str]] = {
    spec.name: (spec.direction, spec.label) for spec in METRIC_TABLE
}
_ARROWS: dict[Direction, str] = {"max": "↑", "min": "↓", "one": "→1", "none": ""}



# -- metric columns -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricColumn:
    """One column of the metrics table: the key in ``metrics.json``, how it is read, its label."""

    key: str
    direction: Direction
    label: str

    @property
    def arrow(self) -> str:
        """``↑`` (higher is better), ``↓`` (lower is better), ``→1`` (closest to 1 is best) or
        ``""`` (no better direction)."""
        return _ARROWS[self.direction]


def metric_columns() -> list[MetricColumn]:
    """Every metric the report knows, in table order, with its direction and hover label.

    The single place the report reads metric names, directions and labels from.
    """
    return [MetricColumn(key, direction, label)
            for key, (direction, label) in METRIC_DIRECTIONS.items()]


def _number(value: Any) -> bool:
    """A number that belongs in a table cell (``bool`` is not one, though Python says so)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def best_per_metric(runs: Sequence[RunRecord]) -> dict[str, set[str]]:
    """For each metric, the labels of the run(s) with the best value.

    "Best" follows the metric's direction (:func:`metric_columns`): the largest, the smallest,
    or the closest to 1. Only finite values count, and a metric needs at least two of them to
    have a best (one value is not a comparison). Ties within ``1e-9`` relative all win.
    """
    best: dict[str, set[str]] = {}
    for column in metric_columns():
        if column.direction == "none":
            continue
        scored = []
        for run in runs:
            value = run.metrics.get(column.key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                score = {"max": -value, "min": value, "one": abs(value - 1.0)}[column.direction]
                scored.append((score, run.label))
        if len(scored) >= 2:
            top = min(score for score, _ in scored)
            best[column.key] = {label for score, label in scored
                                if math.isclose(score, top, rel_tol=1e-9, abs_tol=1e-12)}
    return best


# -- header, settings, runs -----------------------------------------------------------------------


@dataclass
class Header:
    """The page title, run counts, experiment file and question."""

    title: str
    trained: int  # runs with a loss
    baselines: int  # untrained baseline rows
    source: str  # the experiment file ("" when unknown)
    question: str


def header(comparison: Comparison) -> Header:
    """The page header: title, how many runs and baselines, the experiment's question."""
    experiment = comparison.experiment
    trained = sum(not run.baseline for run in comparison.runs)
    return Header(
        title=comparison.title,
        trained=trained,
        baselines=len(comparison.runs) - trained,
        source=str(experiment.get("source") or ""),
        question=str(experiment.get("question") or "(the experiment file has no question)"),
    )


@dataclass
class Settings:
    """The "Settings" table: what every run shares. Option strings are ``""`` when none."""

    task: str
    data: str
    data_options: str  # "k=v, k=v"
    model: str
    model_options: str
    budget: str  # "S steps, batch B, CxC crops, lr L"
    seed: str
    weights: str  # which feature-network weights the perceptual terms used
    random_weights: bool  # a randomly initialised VGG was used: the page warns
    train_options: str
    notes: str


def _options_text(options: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) if options else ""


def _weights_summary(comparison: Comparison) -> tuple[str, bool]:
    """What the feature networks' weights were, and whether any was random."""
    descriptions: list[str] = []
    for run in comparison.runs:
        for description in run.weights:
            if description not in descriptions:
                descriptions.append(description)
    random_used = any("random" in d.lower() for d in descriptions)
    uses_perceptual = any("perceptual" in run.loss or "vgg" in run.loss for run in comparison.runs)
    if descriptions:
        text = "; ".join(descriptions)
    elif uses_perceptual:
        text = f"{comparison.perceptual_weights or 'as written in the specs'} (no description saved)"
        random_used = random_used or comparison.perceptual_weights == "random"
    else:
        text = "no feature-network loss in this comparison"
    return text, random_used


def settings(comparison: Comparison) -> Settings:
    """The shared settings of the experiment (task, data, model, budget, seed, weights)."""
    experiment = comparison.experiment
    budget = experiment.get("budget", {}) or {}
    weights_text, random_used = _weights_summary(comparison)
    steps = sorted({run.steps for run in comparison.runs if run.steps is not None})
    step_text = ", ".join(map(str, steps)) if steps else str(budget.get("steps", "?"))
    crop = budget.get("crop_size", "?")
    return Settings(
        task=str(experiment.get("task", "?")),
        data=str(experiment.get("data", "?")),
        data_options=_options_text(experiment.get("data_options")),
        model=str(experiment.get("model") or "the task's default"),
        model_options=_options_text(experiment.get("model_options")),
        budget=(f"{step_text} steps, batch {budget.get('batch_size', '?')}, {crop}x{crop} crops, "
                f"lr {budget.get('lr', '?')}"),
        seed=str(budget.get("seed", "?")),
        weights=weights_text,
        random_weights=random_used,
        train_options=str(experiment["train_options"]) if experiment.get("train_options") else "",
        notes=str(experiment.get("notes") or ""),
    )


@dataclass
class RunRow:
    """One row of the runs table."""

    label: str
    colour: str  # "#rrggbb", the run's colour in every figure
    done: bool
    baseline: bool
    loss: str
    note: str  # hypotheses and the entry's note, "; "-joined
    directory: str  # "runs/<name>"


def run_rows(comparison: Comparison) -> list[RunRow]:
    """One row per run: label with its figure colour, loss spec, note, directory."""
    colours = figures.run_colours(len(comparison.runs))
    rows = []
    for run, colour in zip(comparison.runs, colours, strict=True):
        extra = f"{run.hypotheses} hypotheses (winner-takes-all)" if run.hypotheses > 1 else ""
        rows.append(RunRow(label=run.label, colour=colour, done=run.done, baseline=run.baseline,
                           loss=run.loss, note="; ".join(x for x in (extra, run.note) if x),
                           directory=f"runs/{run.name}"))
    return rows


# -- image grid -------------------------------------------------------------------------------------


@dataclass
class ImageGrid:
    """The image grid (``grid.png``) and what its caption and notes name."""

    src: str | None  # None: no run has predictions yet
    task: str
    input_text: str  # what the input row shows
    crop: int = 0  # side of the enlarged box, pixels
    multi: list[str] = field(default_factory=list)  # runs shown one row per hypothesis
    stochastic: list[str] = field(default_factory=list)  # runs shown by sample 0 per input
    baselines: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # evaluated on other images: left out
    not_evaluated: list[str] = field(default_factory=list)  # no predictions.pt
    median: list[str] = field(default_factory=list)  # "label: seed k of n" (several seeds)
    headline: str = ""  # the metric that chose the median seeds


def image_grid(comparison: Comparison, out: Path) -> tuple[ImageGrid, Tensor | None]:
    """Draw ``out/grid.png`` from the runs' saved predictions.

    Returns the section's data and the validation targets ``(N, 3, H, W)`` in ``[0, 1]`` of the
    first evaluated run (``None`` when no run is evaluated), which the neighbours figure shows.
    """
    task = str(comparison.experiment.get("task", ""))
    loaded = [(run, run.predictions()) for run in comparison.runs]
    with_predictions = [(run, p) for run, p in loaded if p is not None]
    section = ImageGrid(src=None, task=task, input_text=TASK_INPUT_CAPTIONS.get(task, "the model input"),
                        not_evaluated=[run.label for run, p in loaded if p is None])
    if not with_predictions:
        return section, None
    targets = with_predictions[0][1]["targets"]
    section.mismatched = [run.label for run, p in with_predictions
                          if p["targets"].shape != targets.shape
                          or not torch.allclose(p["targets"], targets, atol=1e-5)]
    usable = [(run, p) for run, p in with_predictions if run.label not in section.mismatched]
    path, facts = figures.image_grid([r for r, _ in usable], [p for _, p in usable],
                                     out / "grid.png")
    section.src = path.name
    section.crop = int(facts["crop"])
    section.multi = [r.label for r, _ in usable if r.hypotheses > 1]
    section.stochastic = [r.label for r, _ in usable if r.stochastic]
    section.baselines = [r.label for r, _ in usable if r.baseline]
    section.median = [f"{r.label}: seed {r.median_seed} of {len(r.seeds)}" for r, _ in usable
                      if r.seeds]
    section.headline = next((r.headline_metric for r, _ in usable if r.seeds), "")
    return section, targets


# -- metrics ----------------------------------------------------------------------------------------


@dataclass
class MetricCell:
    """A table cell: a number, or ``None`` with the reason it is missing.

    For an entry trained with several seeds, ``value`` is the mean over the seeds and ``low`` /
    ``high`` the smallest and largest seed's value (``None`` for one seed).
    """

    value: float | None
    best: bool = False
    reason: str = ""
    low: float | None = None
    high: float | None = None


@dataclass
class MetricRow:
    label: str
    baseline: bool
    cells: list[MetricCell]
    seeds: int = 1  # runs behind the row's numbers (several seeds: means, min-max)
    median_seed: int | None = None


@dataclass
class HypothesisRow:
    """One hypothesis of a multi-hypothesis run (``None``: not computed)."""

    index: int  # 1-based
    psnr: float | None
    psnr_plausible: float | None
    nearest_counts: str  # images per plausible answer, "a / b / c"
    score: float | None = None  # the score head's mean probability of this hypothesis


@dataclass
class HypothesisTable:
    label: str
    has_plausible: bool
    has_counts: bool
    rows: list[HypothesisRow]
    has_scores: bool = False
    score_accuracy: float | None = None  # how often the head's top pick is the best hypothesis


@dataclass
class MetricsSection:
    """The metrics table, the per-hypothesis tables and the notes under them."""

    columns: list[MetricColumn]  # only metrics some run has
    rows: list[MetricRow]
    has_plausible: bool  # some run reports psnr_plausible: the page explains it
    hypotheses: list[HypothesisTable]
    unavailable: dict[str, str]  # metric -> why it is missing (first reason seen)
    notes: list[str]
    seeds: int = 1  # the most seeds behind any row (> 1: the page explains mean and min-max)
    headline: str = ""  # the metric that picks each entry's median seed


def _hypothesis_tables(runs: Sequence[RunRecord]) -> list[HypothesisTable]:
    """Per multi-hypothesis run (``metrics["per_hypothesis"]``): each hypothesis's PSNR, PSNR to
    the nearest plausible answer, how often it lands nearest each plausible answer and, with a
    score head, its mean probability (and how often the head's top pick was the best one)."""
    tables = []
    for run in runs:
        per = run.metrics.get("per_hypothesis")
        if not isinstance(per, dict) or not per.get("psnr"):
            continue
        counts = per.get("nearest_counts")
        plausible = per.get("psnr_plausible")
        scores = per.get("score_mean")
        scores = scores if isinstance(scores, list) and len(scores) == len(per["psnr"]) else None
        rows = [HypothesisRow(index=k + 1, psnr=value,
                              psnr_plausible=plausible[k] if plausible else None,
                              nearest_counts=" / ".join(map(str, counts[k])) if counts else "",
                              score=scores[k] if scores else None)
                for k, value in enumerate(per["psnr"])]
        accuracy = per.get("score_accuracy")
        tables.append(HypothesisTable(run.label, bool(plausible), bool(counts), rows,
                                      has_scores=scores is not None,
                                      score_accuracy=accuracy if _number(accuracy) else None))
    return tables


def metrics_section(runs: Sequence[RunRecord]) -> MetricsSection:
    """The metrics of every run, the best value per column marked, and why values are missing.

    The sample rows of the metric table (best of S, diversity, ...) are left to the samples
    section (:func:`samples_section`); a stochastic run's cells here are its single-sample scores.
    """
    columns = [c for c in metric_columns() if c.key not in SAMPLE_KEYS
               and any(c.key in run.metrics for run in runs)]
    best = best_per_metric(runs)
    rows = []
    for run in runs:
        unavailable = run.metrics.get("unavailable") or {}
        cells = []
        for column in columns:
            value = run.metrics.get(column.key)
            spread = run.spread.get(column.key) or {}
            if _number(value):
                cells.append(MetricCell(value, best=run.label in best.get(column.key, ()),
                                        low=spread.get("min"), high=spread.get("max")))
            else:
                cells.append(MetricCell(None, reason=str(unavailable.get(column.key,
                                                                         "not computed"))))
        rows.append(MetricRow(run.label, run.baseline, cells, seeds=max(1, len(run.seeds)),
                              median_seed=run.median_seed if run.seeds else None))
    reasons: dict[str, str] = {}
    notes: list[str] = []
    for run in runs:
        for key, reason in (run.metrics.get("unavailable") or {}).items():
            reasons.setdefault(key, str(reason))
        for key, note in (run.metrics.get("notes") or {}).items():
            line = f"{run.label}: {note}" if key == "all" else f"{key}: {note}"
            if line not in notes:
                notes.append(line)
    return MetricsSection(columns=columns, rows=rows,
                          has_plausible=any("psnr_plausible" in run.metrics for run in runs),
                          hypotheses=_hypothesis_tables(runs), unavailable=reasons, notes=notes,
                          seeds=max((row.seeds for row in rows), default=1),
                          headline=next((run.headline_metric for run in runs if run.seeds), ""))


# -- samples of stochastic runs ---------------------------------------------------------------------


@dataclass
class SampleRow:
    """One stochastic run in the sample metrics table."""

    label: str
    count: int  # S, samples per input
    seed: int
    cells: list[MetricCell]  # one per SamplesSection.columns
    per_sample: str  # "a – b": min and max over k of psnr_plausible (else psnr) of sample k
    per_sample_key: str  # which metric per_sample shows
    to_mse: float | None  # RMSE between the mean of its samples and the MSE entry's output
    to_exact_mean: float | None  # RMSE between the mean of its samples and the answers' mean
    ideal: float | None  # expected RMSE of an ideal sampler's S-sample mean to the exact mean


@dataclass
class SamplesSection:
    """The samples of the stochastic runs: strip figure, sample metrics table, MSE comparison."""

    shown: bool  # some run was evaluated on samples
    src: str | None = None  # samples.png (None: no saved samples)
    columns: list[MetricColumn] = field(default_factory=list)
    rows: list[SampleRow] = field(default_factory=list)
    reference: str = ""  # the MSE entry's label ("" when the comparison has none)
    mse_to_exact_mean: float | None = None  # RMSE of MSE's output to the answers' exact mean
    inputs: list[int] = field(default_factory=list)  # 1-based numbers of the inputs shown
    has_plausible: bool = False
    closeness: float = CLOSENESS
    definition: str = ""  # the single-sample note of metrics.json


def _mse_reference(runs: Sequence[RunRecord]) -> RunRecord | None:
    """The comparison's plain MSE entry (loss ``mse``, one output), if it has one."""
    for run in runs:
        if run.loss.strip() == "mse" and run.hypotheses == 1 and not run.baseline \
                and not run.stochastic:
            return run
    return None


def _sample_titles(samples: Tensor, plausible: Tensor | None, target: Tensor,
                   count: int) -> list[str]:
    """Per sample of one input ``(S, 3, H, W)``: which answer it reaches and its PSNR."""
    draws = samples[:count]
    if plausible is None:
        values = per_image_psnr(draws, target.expand_as(draws))
        return [f"sample {k + 1}\n{float(v):.1f} dB" for k, v in enumerate(values)]
    reached = reached_answers(draws.unsqueeze(0), plausible.unsqueeze(0))[0].tolist()
    values = per_image_psnr_plausible(draws, plausible.unsqueeze(0).expand(
        draws.shape[0], *plausible.shape))
    titles = []
    for k, (answer, value) in enumerate(zip(reached, values.tolist(), strict=True)):
        where = f"answer {answer + 1}" if answer >= 0 else "no answer"
        shown = "exact" if not math.isfinite(value) else f"{value:.1f} dB"
        titles.append(f"{k + 1}: {where}\n{shown}")
    return titles


def samples_section(runs: Sequence[RunRecord], out: Path, *, inputs: int = 2,
                    count: int = 8) -> SamplesSection:
    """Draw ``out/samples.png`` and gather the sample metrics of the stochastic runs.

    ``inputs``: how many validation inputs the strip shows (the first ones); ``count``: samples
    per input shown (at most the ``S`` drawn). Each sample's title names the plausible answer
    it reaches (:func:`losslab.metrics.samples.reached_answers`) and its PSNR to the nearest
    answer (to the target when the data knows no answers).
    """
    stochastic = [run for run in runs if run.stochastic]
    if not stochastic:
        return SamplesSection(shown=False)
    reference = _mse_reference(runs)
    reference_outputs = None
    if reference is not None:
        saved = reference.predictions()
        reference_outputs = saved["outputs"] if saved and saved["outputs"].dim() == 4 else None
    columns = [c for c in metric_columns() if c.key in SAMPLE_KEYS
               and any(c.key in run.metrics for run in stochastic)]
    section = SamplesSection(shown=True, columns=columns,
                             reference=reference.label if reference_outputs is not None else "")
    best = best_per_metric(stochastic)
    strip_runs: list[figures.StripRun] = []
    first: dict[str, Tensor] | None = None
    for run in stochastic:
        block = run.metrics["samples"]
        unavailable = run.metrics.get("unavailable") or {}
        cells = []
        for column in columns:
            value = run.metrics.get(column.key)
            if _number(value):
                cells.append(MetricCell(value, best=run.label in best.get(column.key, ())))
            else:
                cells.append(MetricCell(None, reason=str(unavailable.get(column.key,
                                                                         "not computed"))))
        per = block.get("per_sample") or {}
        key = "psnr_plausible" if per.get("psnr_plausible") else "psnr"
        values = [v for v in per.get(key) or [] if _number(v)]
        spread = (f"{min(values):.2f} – {max(values):.2f}" if values else
                  "exact" if per.get(key) else "—")
        row = SampleRow(run.label, int(block.get("count", 0)), int(block.get("seed", 0)), cells,
                        spread, key, None, None, None)
        saved = run.samples()
        if saved is not None:
            first = first or saved
            plausible = saved.get("plausible")
            if reference_outputs is not None \
                    and reference_outputs.shape == saved["sample_mean"].shape:
                row.to_mse = rmse_between(saved["sample_mean"], reference_outputs)
            if plausible is not None:
                row.to_exact_mean = rmse_between(saved["sample_mean"], plausible.mean(dim=1))
                row.ideal = ideal_mean_error(plausible, row.count)
            shown = range(min(inputs, saved["samples"].shape[0]))
            strip_runs.append(figures.StripRun(run.label, saved["samples"], saved["sample_mean"], {
                i: _sample_titles(saved["samples"][i], None if plausible is None else plausible[i],
                                  saved["targets"][i], count) for i in shown}))
        section.rows.append(row)
    section.definition = str((stochastic[0].metrics.get("notes") or {}).get("all", ""))
    if first is not None:
        plausible = first.get("plausible")
        section.has_plausible = plausible is not None
        if plausible is not None and reference_outputs is not None \
                and reference_outputs.shape == first["targets"].shape:
            section.mse_to_exact_mean = rmse_between(reference_outputs, plausible.mean(dim=1))
        section.inputs = [i + 1 for i in range(min(inputs, first["samples"].shape[0]))]
        path = figures.sample_strip(
            strip_runs, first["inputs"], first["targets"], plausible,
            (section.reference, reference_outputs) if reference_outputs is not None else None,
            out / "samples.png", shown=[i - 1 for i in section.inputs], count=count)
        section.src = path.name
    return section


# -- figures drawn from metrics and logs ------------------------------------------------------------


def _name(path: Path | None) -> str | None:
    return path.name if path is not None else None


def psnr_spread(runs: Sequence[RunRecord], out: Path) -> str | None:
    """Draw ``psnr_per_image.png``; its file name, or ``None`` without per-image PSNRs."""
    return _name(figures.psnr_spread(runs, out / "psnr_per_image.png"))


def colour_errors(runs: Sequence[RunRecord], out: Path) -> str | None:
    """Draw ``colour_errors.png``; its file name, or ``None`` without colour error metrics."""
    return _name(figures.color_error_bars(runs, out / "colour_errors.png"))


def spectra(runs: Sequence[RunRecord], out: Path) -> str | None:
    """Draw ``spectrum.png``; its file name, or ``None`` without ``evaluation/spectrum.json``."""
    return _name(figures.spectrum_curves(runs, [run.spectrum() for run in runs],
                                         out / "spectrum.png"))


@dataclass
class Tradeoff:
    src: str | None
    key: str  # the perception axis: "lpips", or "hf_ratio" when a run lacks LPIPS
    seeds: bool = False  # some point is a mean over seeds, drawn with min-max bars


def tradeoff(runs: Sequence[RunRecord], out: Path) -> Tradeoff:
    """Draw ``perception_distortion.png`` (PSNR against LPIPS, or hf_ratio)."""
    path, key = figures.perception_distortion(runs, out / "perception_distortion.png")
    return Tradeoff(_name(path), key, seeds=any(run.spread for run in runs))


def training_curves(runs: Sequence[RunRecord], out: Path) -> str | None:
    """Draw ``training.png`` from the trained runs' CSV logs (baselines have none)."""
    trained = [run for run in runs if not run.baseline]
    return _name(figures.training_curves(trained, [run.training_log() for run in trained],
                                         out / "training.png"))


# -- probe, metamers, neighbours ------------------------------------------------------------------


@dataclass
class Probe:
    src: str | None
    notes: list[tuple[str, str]]  # (run label, what its probe row left out)


def probe(comparison: Comparison, out: Path) -> Probe:
    """The runner's ``probe.png`` copied into the report (or drawn from ``probe.json``)."""
    src = None
    if (comparison.directory / PROBE_PNG).is_file():  # the runner's figure, as it drew it
        shutil.copyfile(comparison.directory / PROBE_PNG, out / PROBE_PNG)
        src = PROBE_PNG
    elif comparison.probe:
        src = _name(figures.probe_heatmap(comparison.probe, out / "probe.png"))
    return Probe(src, [(run.label, run.probe_note) for run in comparison.runs if run.probe_note])


@dataclass
class Metamers:
    """The runner's ``metamers.png`` and the facts its caption gives (from ``metamers.json``)."""

    src: str | None  # None: no figure (see ``error``)
    error: str = ""  # the synthesis failed with this message
    image: str = "?"  # the bundled photo used as target
    size: str = "?"  # "HxW"
    starts: str = "?"  # "noise, grey"
    steps: str = "?"  # Adam steps per start
    seconds: float = 0.0  # synthesis time, all rows
    notes: list[tuple[str, str]] = field(default_factory=list)  # (label, note)


def metamers(comparison: Comparison, out: Path) -> Metamers:
    """The loss metamers written by the runner, copied into the report folder."""
    source = comparison.directory / METAMERS_PNG
    info = comparison.metamers or {}
    if info.get("error"):
        return Metamers(src=None, error=str(info["error"]))
    if not source.is_file():
        return Metamers(src=None)
    shutil.copyfile(source, out / METAMERS_PNG)
    results = info.get("results") or []
    first = results[0] if results else {}
    return Metamers(
        src=METAMERS_PNG,
        image=str(info.get("image", "?")),
        size="x".join(str(v) for v in first.get("image_size", [])) or "?",
        starts=", ".join(first.get("starts", {})) or "?",
        steps=str(first.get("steps", "?")),
        seconds=sum(float(r.get("seconds", 0.0)) for r in results),
        notes=[(str(label), str(note)) for label, note in (info.get("notes") or {}).items()]
        + _schedule_notes(info.get("labels") or [], results),
    )


def _schedule_notes(labels: Sequence[Any], results: Sequence[dict[str, Any]]
                    ) -> list[tuple[str, str]]:
    """A note for each row not synthesised by plain descent (losses blind to edge signs)."""
    notes = []
    for label, result in zip(labels, results, strict=False):
        cycles, sigma = int(result.get("cycles", 1) or 1), result.get("continuation")
        if sigma is None and cycles == 1:
            continue
        steps = result.get("steps", "?")
        text = f"{cycles} x {steps} steps" if cycles > 1 else f"{steps} steps"
        if sigma is not None:
            text += (f", the loss first on blurred copies (sigma {float(sigma):.3g} px shrinking "
                     "to 0): a continuation over scale, since plain descent of a loss blind to "
                     "edge signs stops in local minima")
        notes.append((str(label), text))
    return notes


def neighbours(runs: Sequence[RunRecord], targets: Tensor | None, out: Path
               ) -> tuple[bool, str | None]:
    """Draw ``neighbours.png`` (nearest neighbours in code space).

    ``targets``: the validation images ``(N, 3, H, W)`` in ``[0, 1]`` the neighbour indices refer
    to. Returns whether the section is shown at all (some run has ``neighbours.json`` and the
    images are known) and the figure's file name.
    """
    found = [run.neighbours() for run in runs]
    if not any(found) or targets is None:
        return False, None
    return True, _name(figures.neighbour_strips(runs, found, targets, out / "neighbours.png"))


# -- the whole page ---------------------------------------------------------------------------------


@dataclass
class ReportPage:
    """Everything the template shows, section by section."""

    header: Header
    settings: Settings
    runs: list[RunRow]
    grid: ImageGrid
    metrics: MetricsSection
    samples: SamplesSection
    spread: str | None
    colour: str | None
    spectrum: str | None
    tradeoff: Tradeoff
    training: str | None
    probe: Probe
    metamers: Metamers
    show_neighbours: bool
    neighbours: str | None


def report_page(comparison: Comparison, out: Path) -> ReportPage:
    """Gather every section's data, drawing the figures into ``out`` (the report folder)."""
    runs = comparison.runs
    grid, targets = image_grid(comparison, out)
    show_neighbours, neighbour_figure = neighbours(runs, targets, out)
    return ReportPage(
        header=header(comparison),
        settings=settings(comparison),
        runs=run_rows(comparison),
        grid=grid,
        metrics=metrics_section(runs),
        samples=samples_section(runs, out),
        spread=psnr_spread(runs, out),
        colour=colour_errors(runs, out),
        spectrum=spectra(runs, out),
        tradeoff=tradeoff(runs, out),
        training=training_curves(runs, out),
        probe=probe(comparison, out),
        metamers=metamers(comparison, out),
        show_neighbours=show_neighbours,
        neighbours=neighbour_figure,
    )
