"""Probe results out: a terminal table, CSV, JSON and an annotated heatmap.

Every writer takes a :class:`~losslab.probe.probe.ProbeResult` and a path, creates the parent
directory, writes the file and returns its path.

- JSON: exactly ``{spec: {perturbation: {"raw": value, "normalised": value}}}``.
- CSV: one row per (spec, perturbation) with columns ``spec, perturbation, raw, normalised``.
- Heatmap (PNG/PDF/SVG by suffix): rows = specs, columns = perturbations, colour and
  annotation = the normalised value; a dashed line separates the natural-strength pair.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from losslab.probe.perturbations import NATURAL_PERTURBATIONS
from losslab.probe.probe import ProbeResult


def _short(name: str) -> str:
    return name.replace("channel_", "ch_").replace("mean_of_two_noise", "mean2+n").replace(
        "mean_of_two", "mean2").replace("saturation", "satur")


def format_probe_table(result: ProbeResult, *, normalised: bool = True, precision: int = 2) -> str:
    """The probe as a text table: one row per spec, one column per perturbation.

    Shows normalised values by default (raw with ``normalised=False``), then the loss's
    preference between ``shift`` and ``mean_of_two``. A header line states the matched RMSE and
    the normalisation; a value of ``0.00`` means the loss is blind to that change.
    """
    kind = "normalised" if normalised else "raw"
    perturbations = result.perturbations
    width = max(7, precision + 5)
    spec_width = max(len("loss"), *(len(spec) for spec in result.specs))
    has_pair = "shift" in perturbations and "mean_of_two" in perturbations
    widths = [max(width, len(_short(p))) for p in perturbations]
    header = "loss".ljust(spec_width) + " " + " ".join(
        _short(p).rjust(w) for p, w in zip(perturbations, widths, strict=True)
    )
    if has_pair:
        header += "  prefers"
    lines = [
        f"Loss probe: {kind} values; matched perturbations at pixel RMSE {result.rmse:g} "
        f"({result.image_shape[0]} images {result.image_shape[-2]}x{result.image_shape[-1]}); "
        "shift / mean2 at natural strength.",
        f"normalised = {result.normalisation}. 0 = blind to that change.",
        header,
        "-" * len(header),
    ]
    for spec in result.specs:
        cells = []
        for name, cell_width in zip(perturbations, widths, strict=True):
            value = result[spec][name][kind]
            text = f"{value:.{precision}f}" if normalised else f"{value:.{precision + 1}g}"
            cells.append(text.rjust(cell_width))
        line = spec.ljust(spec_width) + " " + " ".join(cells)
        if has_pair:
            line += "  " + str(result.prefers(spec))
        lines.append(line)
    return "\n".join(lines)


def _prepare(path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def write_probe_json(result: ProbeResult, path: str | Path) -> Path:
    """Write ``{spec: {perturbation: {"raw": value, "normalised": value}}}`` as JSON."""
    target = _prepare(path)
    target.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return target


def write_probe_csv(result: ProbeResult, path: str | Path) -> Path:
    """Write a long-format CSV: ``spec, perturbation, raw, normalised`` (one row per cell)."""
    target = _prepare(path)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["spec", "perturbation", "raw", "normalised"])
        for spec, row in result.values.items():
            for name, cell in row.items():
                writer.writerow([spec, name, repr(cell["raw"]), repr(cell["normalised"])])
    return target


def probe_caption(result: ProbeResult) -> str:
    """A caption saying what the heatmap shows and what to look for."""
    return (
        f"Each row is a loss, each column a change of the image; matched changes all have pixel "
        f"RMSE {result.rmse:g}, so a row shows what the loss charges per unit of pixel change "
        "(normalised by the row's mean over the matched changes; MSE is flat at 1). Look for "
        "zeros (the loss is blind to that change) and, right of the dashed line, whether the loss "
        "charges the blur (mean2) less than the sharp 1 px shift (it then prefers blur), and "
        "whether it charges the blur plus noise of the two shifts' spread (mean2+n) less than "
        "the shift (a sampler would then learn noise instead of committing)."
    )


def plot_probe_heatmap(result: ProbeResult, path: str | Path, *, title: str | None = None) -> Path:
    """Save an annotated heatmap of the normalised probe (rows = specs, columns = perturbations).

    The colour scale is shared by all rows (0 = blind, 1 = the row's average over the matched
    changes); the caption (:func:`probe_caption`) is printed under the axes. Uses matplotlib's
    Agg backend; the format follows the suffix of ``path``.
    """
    import matplotlib  # heavy (~0.5 s) and only needed to draw: imported when a figure is drawn

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    target = _prepare(path)
    specs, perturbations = result.specs, result.perturbations
    grid = np.array([[result[s][p]["normalised"] for p in perturbations] for s in specs], float)
    finite = grid[np.isfinite(grid)]
    top = max(2.0, float(finite.max()) if finite.size else 2.0)
    figure, axes = plt.subplots(
        figsize=(1.0 + 0.75 * len(perturbations), 1.6 + 0.45 * len(specs)), layout="constrained"
    )
    image = axes.imshow(grid, cmap="magma", vmin=0.0, vmax=top, aspect="auto")
    axes.set_xticks(range(len(perturbations)), [_short(p) for p in perturbations], rotation=45,
                    ha="right")
    axes.set_yticks(range(len(specs)), specs)
    for i in range(len(specs)):
        for j in range(len(perturbations)):
            value = grid[i, j]
            text = "nan" if not math.isfinite(value) else f"{value:.2f}"
            colour = "black" if math.isfinite(value) and value > 0.6 * top else "white"
            axes.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    natural = [j for j, p in enumerate(perturbations) if p in NATURAL_PERTURBATIONS]
    if natural and len(natural) < len(perturbations):
        axes.axvline(min(natural) - 0.5, color="white", linestyle="--", linewidth=1.5)
    figure.colorbar(image, ax=axes, label="normalised loss (row mean over matched = 1)")
    axes.set_title(title or f"Loss probe: what each loss charges (matched RMSE {result.rmse:g})")
    figure.text(0.0, -0.02, probe_caption(result), ha="left", va="top", wrap=True, fontsize=7)
    figure.savefig(target, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return target
