"""Build ``DIR/report/index.html`` from a comparison directory on disk.

The page is self-contained: inline CSS, no script, every figure a PNG beside ``index.html`` in
``DIR/report/`` (copy the folder anywhere and it still opens, offline). Every figure has a
caption that says what to look for.
"""

from __future__ import annotations

import html
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from losslab.metrics.table import METRIC_TABLE
from losslab.report import figures
from losslab.report.data import Comparison, RunRecord, load_comparison

#: Column order of the metrics table and how each metric is read, from the one metric table
#: (:data:`losslab.metrics.METRIC_TABLE`): key -> (direction, label), where direction is
#: "max" (higher is better), "min" (lower is better) or "one" (closer to 1 is better).
METRIC_DIRECTIONS: dict[str, tuple[str, str]] = {
    spec.name: (spec.direction, spec.label) for spec in METRIC_TABLE
}
_ARROWS = {"max": "↑", "min": "↓", "one": "→1"}

_CSS = """
:root { --ink:#1d2430; --muted:#5b6472; --line:#dde2ea; --accent:#2456a6; --best:#e3f3e6;
        --warn-bg:#fff4e0; --warn:#9a5b00; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color:var(--ink); background:#f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 60px; background:#fff;
       min-height:100vh; box-shadow: 0 0 0 1px var(--line); }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
.subtitle { color: var(--muted); margin: 0 0 18px; }
.question { font-size: 1.05rem; background:#f1f5fb; border-left: 4px solid var(--accent);
            padding: 12px 16px; margin: 12px 0 18px; }
nav { font-size: .9rem; margin: 8px 0 0; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .88rem; margin: 8px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 9px; text-align: left; vertical-align: top; }
th { background:#f3f5f8; font-weight: 600; }
table.metrics td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.metrics td.best { background: var(--best); font-weight: 700; }
table.metrics th .dir { color: var(--muted); font-weight: 400; margin-left: 3px; }
tr.baseline th, tr.baseline td { background: #f4f4f4; font-style: italic; }
.tag { font-size: .75rem; font-style: normal; color: var(--muted); border: 1px solid var(--line);
       border-radius: 3px; padding: 0 4px; margin-left: 4px; }
td.na { color: #9aa3af; text-align: center; }
.settings th { width: 200px; }
code { font: .85em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background:#f3f5f8;
       padding: 1px 4px; border-radius: 3px; }
figure { margin: 12px 0 24px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background:#fff; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: 6px; max-width: 900px; }
figcaption strong { color: var(--ink); }
.warning { background: var(--warn-bg); color: var(--warn); border: 1px solid #f0c27a;
           padding: 10px 14px; border-radius: 4px; margin: 10px 0; font-weight: 600; }
.note { color: var(--muted); font-size: .9rem; }
.swatch { display:inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _format(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"


def best_per_metric(runs: Sequence[RunRecord]) -> dict[str, set[str]]:
    """For each metric, the labels of the run(s) with the best value (see METRIC_DIRECTIONS)."""
    best: dict[str, set[str]] = {}
    for key, (direction, _) in METRIC_DIRECTIONS.items():
        scored = []
        for run in runs:
            value = run.metrics.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                score = {"max": -value, "min": value, "one": abs(value - 1.0)}[direction]
                scored.append((score, run.label))
        if len(scored) >= 2:
            top = min(score for score, _ in scored)
            best[key] = {label for score, label in scored if math.isclose(score, top,
                                                                         rel_tol=1e-9, abs_tol=1e-12)}
    return best


def _metrics_table(runs: Sequence[RunRecord]) -> str:
    keys = [key for key in METRIC_DIRECTIONS
            if any(key in run.metrics for run in runs)]
    if not keys:
        return ('<p class="note">No run has metrics yet (evaluation/metrics.json missing): run '
                '<code>losslab compare</code> again to finish, or <code>losslab evaluate RUN_DIR'
                '</code>.</p>')
    best = best_per_metric(runs)
    head = "".join(
        f'<th title="{_e(METRIC_DIRECTIONS[k][1])}">{_e(k)}<span class="dir">'
        f'{_ARROWS[METRIC_DIRECTIONS[k][0]]}</span></th>' for k in keys
    )
    rows = []
    for run in runs:
        cells = []
        unavailable = run.metrics.get("unavailable") or {}
        for key in keys:
            value = run.metrics.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                css = "num best" if run.label in best.get(key, ()) else "num"
                cells.append(f'<td class="{css}">{_format(value)}</td>')
            else:
                reason = unavailable.get(key, "not computed")
                cells.append(f'<td class="na" title="{_e(reason)}">—</td>')
        if run.baseline:
            rows.append(f'<tr class="baseline"><th>{_e(run.label)}<span class="tag">no training'
                        f"</span></th>{''.join(cells)}</tr>")
        else:
            rows.append(f"<tr><th>{_e(run.label)}</th>{''.join(cells)}</tr>")
    return (f'<div class="scroll"><table class="metrics"><thead><tr><th>run</th>{head}</tr>'
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>")


def _hypotheses_table(runs: Sequence[RunRecord]) -> str:
    """Per multi-hypothesis run: each hypothesis's PSNR, PSNR to the nearest plausible answer
    and how often it lands nearest each plausible answer (``metrics["per_hypothesis"]``)."""
    parts = []
    for run in runs:
        per = run.metrics.get("per_hypothesis")
        if not isinstance(per, dict) or not per.get("psnr"):
            continue
        counts = per.get("nearest_counts")
        plausible = per.get("psnr_plausible")
        head = "<th>hypothesis</th><th>psnr</th>"
        if plausible:
            head += "<th>psnr_plausible</th>"
        if counts:
            head += "<th>nearest plausible answer (images per answer)</th>"
        rows = []
        for k, value in enumerate(per["psnr"]):
            cells = f'<td class="num">{_format(value) if value is not None else "—"}</td>'
            if plausible:
                cell = plausible[k]
                cells += f'<td class="num">{_format(cell) if cell is not None else "—"}</td>'
            if counts:
                cells += f"<td>{_e(' / '.join(str(c) for c in counts[k]))}</td>"
            rows.append(f"<tr><th>{k + 1}</th>{cells}</tr>")
        parts.append(f"<p><strong>{_e(run.label)}</strong></p><table class=\"metrics\"><thead>"
                     f"<tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    if not parts:
        return ""
    return ("".join(parts) + '<p class="note">Each hypothesis scored on its own over every '
            "validation image. A hypothesis that commits to one plausible answer (e.g. one "
            "direction of motion) is nearest to that answer in most images and scores a high "
            "psnr_plausible on its own; one that smears several answers scores low on both.</p>")


def _unavailable_notes(runs: Sequence[RunRecord]) -> str:
    reasons: dict[str, str] = {}
    notes: list[str] = []
    for run in runs:
        for key, reason in (run.metrics.get("unavailable") or {}).items():
            reasons.setdefault(key, str(reason))
        for key, note in (run.metrics.get("notes") or {}).items():
            line = f"{run.label}: {note}" if key == "all" else f"{key}: {note}"
            if line not in notes:
                notes.append(line)
    parts = []
    if reasons:
        items = "".join(f"<li><code>{_e(k)}</code>: {_e(v)}</li>" for k, v in reasons.items())
        parts.append(f'<p class="note">Metrics shown as — :</p><ul class="note">{items}</ul>')
    if notes:
        items = "".join(f"<li>{_e(line)}</li>" for line in notes)
        parts.append(f'<p class="note">Notes:</p><ul class="note">{items}</ul>')
    return "".join(parts)


def _weights_summary(comparison: Comparison) -> tuple[str, bool]:
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


def _settings(comparison: Comparison) -> str:
    experiment = comparison.experiment
    budget = experiment.get("budget", {}) or {}
    weights_text, random_used = _weights_summary(comparison)

    def options(name: str, extra: Any) -> str:
        if not extra:
            return f"<code>{_e(name)}</code>"
        pairs = ", ".join(f"{k}={v}" for k, v in extra.items())
        return f"<code>{_e(name)}</code> ({_e(pairs)})"

    steps = sorted({run.steps for run in comparison.runs if run.steps is not None})
    step_text = ", ".join(map(str, steps)) if steps else str(budget.get("steps", "?"))
    rows = [
        ("task", f"<code>{_e(experiment.get('task', '?'))}</code>"),
        ("data", options(experiment.get("data", "?"), experiment.get("data_options"))),
        ("model", options(experiment.get("model") or "the task's default",
                          experiment.get("model_options"))),
        ("budget per run", _e(
            f"{step_text} steps, batch {budget.get('batch_size', '?')}, "
            f"{budget.get('crop_size', '?')}x{budget.get('crop_size', '?')} crops, "
            f"lr {budget.get('lr', '?')}")),
        ("seed", _e(budget.get("seed", "?"))),
        ("perceptual weights", _e(weights_text)),
    ]
    if experiment.get("train_options"):
        rows.append(("other training options", _e(experiment["train_options"])))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    warning = ""
    if random_used:
        warning = (
            '<div class="warning">⚠ The perceptual loss used a <em>randomly initialised</em> VGG19 '
            "(no ImageNet weights were available). Random features still respond to edges and "
            "textures, but they are not the trained features the literature means by "
            "\"perceptual loss\": read the perceptual rows with that in mind. Install the weights "
            "(<code>losslab weights</code> shows how) and re-run with "
            "<code>perceptual_weights: imagenet</code> for the real thing.</div>"
        )
    notes = experiment.get("notes")
    notes_html = f'<p class="note">{_e(notes)}</p>' if notes else ""
    return f'<table class="settings">{body}</table>{warning}{notes_html}'


def _runs_table(comparison: Comparison) -> str:
    colours = figures.run_colours(len(comparison.runs))
    rows = []
    for run, colour in zip(comparison.runs, colours, strict=True):
        status = "" if run.done else ' <span class="note">(not finished)</span>'
        extra = f"{run.hypotheses} hypotheses (winner-takes-all)" if run.hypotheses > 1 else ""
        note = "; ".join(x for x in (extra, run.note) if x)
        loss = ("<em>none: untrained baseline</em>" if run.baseline
                else f"<code>{_e(run.loss)}</code>")
        rows.append(
            f'<tr><th><span class="swatch" style="background:{colour}"></span>{_e(run.label)}'
            f"{status}</th><td>{loss}</td><td>{_e(note)}</td>"
            f"<td><code>runs/{_e(run.name)}</code></td></tr>"
        )
    return ("<table><thead><tr><th>run</th><th>loss spec</th><th>note</th><th>directory</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _figure(src: str | None, caption: str, missing: str, alt: str) -> str:
    if src is None:
        return f'<p class="note">{missing}</p>'
    return (f'<figure><img src="{_e(src)}" alt="{_e(alt)}" loading="eager">'
            f"<figcaption>{caption}</figcaption></figure>")


def _task_input_text(task: str) -> str:
    return {
        "super_resolve": "the low-resolution input (shown enlarged, nearest neighbour)",
        "colorize": "the luma-only input",
        "predict_next": "the last input frame",
        "reconstruct": "the input (identical to the target, so not shown)",
    }.get(task, "the model input")


def _metamer_section(comparison: Comparison, out: Path) -> str:
    """The metamer figure written by the runner (``metamers.png``), captioned from its JSON."""
    source = comparison.directory / "metamers.png"
    info = comparison.metamers or {}
    if info.get("error"):
        return (f'<p class="note">No metamers: the synthesis failed ({_e(info["error"])}). '
                "Run <code>losslab equal SPEC</code> on one loss to see the full error.</p>")
    if not source.is_file():
        return ('<p class="note">No loss metamers (metamers.png / metamers.json) in this '
                "comparison: losslab compare writes them after the runs (metamers=True).</p>")
    shutil.copyfile(source, out / "metamers.png")
    results = info.get("results") or []
    first = results[0] if results else {}
    starts = ", ".join(first.get("starts", {})) or "?"
    size = "x".join(str(v) for v in first.get("image_size", [])) or "?"
    seconds = sum(float(r.get("seconds", 0.0)) for r in results)
    caption = (
        "<strong>What to look for:</strong> each row is one entry's loss (adversarial terms left "
        "out, as in the probe). The images right of the starts were synthesised by gradient "
        "descent on that loss alone until it scored them (nearly) equal to the target, so "
        "everything a metamer still shares with its start is something the loss does not "
        "measure, and a model trained with it is free to get wrong: a luma loss keeps the "
        "start's colours, a one-channel loss the other two channels, a loss on every channel "
        "returns the target itself. Under each metamer: the loss reached as a % of the start's, "
        f"pixel RMSE and luma / chroma / R G B errors to the target. Target: bundled photo "
        f"<code>{_e(info.get('image', '?'))}</code> at {_e(size)} px; starts: {_e(starts)}; "
        f"{_e(first.get('steps', '?'))} Adam steps per start ({seconds:.1f} s in all)."
    )
    html_text = _figure("metamers.png", caption, "", "loss metamers, one row per loss")
    notes = info.get("notes") or {}
    if notes:
        items = "".join(f"<li><strong>{_e(label)}</strong>: {_e(note)}</li>"
                        for label, note in notes.items())
        html_text += f'<ul class="note">{items}</ul>'
    return html_text


def build_report(directory: str | Path) -> Path:
    """Write ``DIR/report/index.html`` (and its PNG figures) from the comparison on disk.

    Only reads: runs, evaluation files, logs and probe results written by ``losslab compare``.
    Returns the path of ``index.html``.

    Raises:
        NotAComparisonError: ``directory`` holds no comparison.
    """
    comparison = load_comparison(directory)
    out = comparison.directory / "report"
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.png"):
        stale.unlink()
    runs = comparison.runs
    task = str(comparison.experiment.get("task", ""))
    sections: list[tuple[str, str, str]] = []  # (anchor, title, html)

    # -- image grid --------------------------------------------------------------------------
    loaded = [(run, run.predictions()) for run in runs]
    with_predictions = [(run, p) for run, p in loaded if p is not None]
    missing_runs = [run.label for run, p in loaded if p is None]
    grid_html = ""
    targets = None
    if with_predictions:
        targets = with_predictions[0][1]["targets"]
        mismatched = [run.label for run, p in with_predictions
                      if p["targets"].shape != targets.shape
                      or not torch.allclose(p["targets"], targets, atol=1e-5)]
        usable = [(run, p) for run, p in with_predictions if run.label not in mismatched]
        path, facts = figures.image_grid([r for r, _ in usable], [p for _, p in usable],
                                         out / "grid.png")
        multi = [r.label for r, _ in usable if r.hypotheses > 1]
        caption = (
            "<strong>What to look for:</strong> the first row"
            f"{' is the target' if task == 'reconstruct' else 's are ' + _task_input_text(task) + ' and the target'}; "
            "each further row is one loss on the same validation images. Beside each image, the "
            f"yellow {facts['crop']}x{facts['crop']} box is enlarged: it sits where the runs' "
            "errors differ most (largest variance across runs of the local mean absolute error), "
            "so that is where the losses disagree. Compare sharpness, colour and texture there."
        )
        if multi:
            caption += (f" {', '.join(map(_e, multi))}: one row per hypothesis; metrics use the "
                        "hypothesis closest to the target per image.")
        baselines = [r.label for r, _ in usable if r.baseline]
        if baselines:
            caption += (f" {', '.join(map(_e, baselines))}: the untrained baseline, what doing "
                        "nothing gives.")
        grid_html = _figure(path.name, caption, "", "image grid: targets and outputs per loss")
        if mismatched:
            grid_html += (f'<p class="warning">Left out of the grid: {_e(", ".join(mismatched))} '
                          "(evaluated on other validation images than the first run).</p>")
    else:
        grid_html = ('<p class="note">No run has evaluation/predictions.pt yet: the comparison '
                     "has not finished. Run <code>losslab compare</code> again to continue.</p>")
    if missing_runs:
        grid_html += (f'<p class="note">Not evaluated yet: {_e(", ".join(missing_runs))}.</p>')
    sections.append(("images", "Outputs on the same validation images", grid_html))

    # -- metrics table -----------------------------------------------------------------------
    table_caption = (
        '<p class="note">↑ higher is better, ↓ lower is better, →1 closest to 1 is best (a '
        "ratio of output to target). The best value per column is highlighted. Hover a header "
        "for its meaning, a — for why it is missing. <strong>psnr</strong> is pooled over the "
        "validation set: 10 log10(1 / MSE) with the MSE over every pixel of every image "
        "(outputs clipped to [0, 1]), the same function as the training log's val/psnr; a mean "
        "of per-image PSNRs would let near-flat images dominate. Rows in grey are untrained "
        "baselines: a loss should beat them.</p>"
    )
    if any("psnr_plausible" in run.metrics for run in runs):
        table_caption += (
            '<p class="note"><strong>psnr_plausible</strong>: PSNR to each image\'s nearest '
            "plausible answer (every possible future is known for this data), beside psnr to "
            "the answer that happened. The average of all futures (MSE's smear) is far from each "
            "of them; a model that commits to one sharp future is close to one of them.</p>")
    sections.append(("metrics", "Metrics",
                     _metrics_table(runs) + table_caption + _hypotheses_table(runs)
                     + _unavailable_notes(runs)))

    # -- per-image spread --------------------------------------------------------------------
    path = figures.psnr_spread(runs, out / "psnr_per_image.png")
    sections.append(("spread", "PSNR per image", _figure(
        path.name if path else None,
        "<strong>What to look for:</strong> each dot is one validation image's own PSNR, the "
        "black bar the pooled psnr of the table. A gap between two runs that holds for most "
        "dots is real; one carried by a few images is not. Grey: untrained baselines.",
        "No per-image PSNR in the runs' metrics.json (evaluate them again).",
        "per-image PSNR strip plot")))

    # -- colour components -------------------------------------------------------------------
    path = figures.color_error_bars(runs, out / "colour_errors.png")
    sections.append(("colour", "Error per colour component", _figure(
        path.name if path else None,
        "<strong>What to look for:</strong> a loss that measures only one view of colour leaves "
        "the rest free. A model trained on one channel should have a low bar for that channel "
        "and high bars for the others; a luma-only loss a low luma bar and a high chroma bar; a "
        "loss on all channels balanced bars.",
        "No colour error metrics (err_red … err_chroma) in the runs' metrics.json.",
        "bar chart of errors per colour component")))

    # -- spectra -----------------------------------------------------------------------------
    spectra = [run.spectrum() for run in runs]
    path = figures.spectrum_curves(runs, spectra, out / "spectrum.png")
    sections.append(("spectrum", "Power spectra", _figure(
        path.name if path else None,
        "<strong>What to look for:</strong> the radially averaged power of each run's outputs "
        "against the targets' (dashed). A curve that falls below the target at high frequencies "
        "is blurrier than the truth (typical of MSE); one above it adds noise or artefacts.",
        "No evaluation/spectrum.json in the runs.", "log-log power spectra")))

    # -- perception-distortion -----------------------------------------------------------------
    path, key = figures.perception_distortion(runs, out / "perception_distortion.png")
    if key == "lpips":
        what = ("LPIPS (perceptual distance, lower is closer; the axis is flipped so up is "
                "better)")
    else:
        what = ("hf_ratio (high-frequency energy of the output over the target's; 1 = as sharp "
                "as the target; LPIPS is not available for every run)")
    sections.append(("tradeoff", "Perception–distortion trade-off", _figure(
        path.name if path else None,
        f"<strong>What to look for:</strong> PSNR (right = less distortion) against {what}. "
        "Losses that average plausible answers sit right but low; losses that commit to sharp "
        "answers move up at some cost in PSNR. No loss can be best on both axes at once "
        "(Blau &amp; Michaeli, 2018).",
        "PSNR or the perception metric is missing in the runs' metrics.", "scatter plot")))

    # -- training curves ---------------------------------------------------------------------
    trained = [run for run in runs if not run.baseline]
    logs = [run.training_log() for run in trained]
    path = figures.training_curves(trained, logs, out / "training.png")
    sections.append(("training", "Training curves", _figure(
        path.name if path else None,
        "<strong>What to look for:</strong> left, each loss term (unweighted; faint: raw, solid: "
        "smoothed) over the training steps: all should fall, and a flat term is not being "
        "optimised. Right, each term's share of the gradient on the model's output: a term with "
        "a tiny share barely steers training whatever its weight suggests.",
        "No training logs found (logs/**/metrics.csv from Lightning's CSVLogger).",
        "training curves")))

    # -- probe -------------------------------------------------------------------------------
    probe_html = ""
    src = None
    if (comparison.directory / "probe.png").is_file():
        shutil.copyfile(comparison.directory / "probe.png", out / "probe.png")
        src = "probe.png"
    elif comparison.probe:
        made = figures.probe_heatmap(comparison.probe, out / "probe.png")
        src = made.name if made else None
    probe_html = _figure(
        src,
        "<strong>What to look for:</strong> what each loss charges for controlled changes of the "
        "same pixel size (matched RMSE). A dark cell is a change the loss barely sees, so a model "
        "trained with it is free to make that change: e.g. L1 on luma is blind to hue rotations.",
        "No probe results (probe.json / probe.png) in this comparison.", "probe heatmap")
    notes = [(run.label, run.probe_note) for run in runs if run.probe_note]
    if notes:
        items = "".join(f"<li><strong>{_e(label)}</strong>: {_e(note)}</li>" for label, note in notes)
        probe_html += f'<ul class="note">{items}</ul>'
    sections.append(("probe", "What each loss is blind to (probe)", probe_html))

    # -- metamers ----------------------------------------------------------------------------
    sections.append(("metamers", "What each loss considers equal", _metamer_section(comparison,
                                                                                      out)))

    # -- neighbours --------------------------------------------------------------------------
    neighbours = [run.neighbours() for run in runs]
    if any(neighbours) and targets is not None:
        path = figures.neighbour_strips(runs, neighbours, targets, out / "neighbours.png")
        sections.append(("neighbours", "Nearest neighbours in code space", _figure(
            path.name if path else None,
            "<strong>What to look for:</strong> for a few validation images (yellow frame), the "
            "images whose autoencoder codes are closest. The code keeps what the loss measured: "
            "a code trained on luma groups images by brightness structure regardless of colour; "
            "a code trained on one channel groups by that channel.",
            "No neighbours.json in the runs.", "nearest neighbours")))

    return _write_page(comparison, sections, out)


def _count_text(comparison: Comparison) -> str:
    trained = sum(not run.baseline for run in comparison.runs)
    baselines = len(comparison.runs) - trained
    text = f"{trained} runs, identical but for the loss"
    if baselines:
        text += f", and {baselines} untrained baseline{'s' if baselines > 1 else ''}"
    return text + "."


def _write_page(comparison: Comparison, sections: list[tuple[str, str, str]], out: Path) -> Path:
    experiment = comparison.experiment
    question = experiment.get("question") or "(the experiment file has no question)"
    nav = "".join(f'<a href="#{anchor}">{_e(title)}</a>' for anchor, title, _ in sections)
    body = "".join(f'<section id="{anchor}"><h2>{_e(title)}</h2>{content}</section>'
                   for anchor, title, content in sections)
    source = experiment.get("source") or ""
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>losslab: {_e(comparison.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>losslab comparison: {_e(comparison.title)}</h1>
<p class="subtitle">{_count_text(comparison)}{_e(" Experiment file: " + source) if source else ""}</p>
<div class="question">{_e(question)}</div>
<nav>{nav}</nav>
<section id="settings"><h2>Settings</h2>{_settings(comparison)}{_runs_table(comparison)}</section>
{body}
</main>
</body>
</html>
"""
    index = out / "index.html"
    temporary = out / "index.html.tmp"
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(index)
    return index
