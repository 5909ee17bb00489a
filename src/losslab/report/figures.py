"""The report's figures, drawn with matplotlib (Agg) from the data on disk.

Every function writes one PNG and returns its path, or ``None`` when the data it needs is missing
(the report then says so). Colours follow matplotlib's default cycle, one colour per run, in the
same order in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from torch import Tensor

from losslab.report.data import RunRecord

DPI = 110
COMPONENTS = (
    ("err_red", "red", "#d62728"),
    ("err_green", "green", "#2ca02c"),
    ("err_blue", "blue", "#1f77b4"),
    ("err_luma", "luma", "#555555"),
    ("err_chroma", "chroma", "#9467bd"),
)


def run_colours(count: int) -> list[str]:
    """One colour per run (matplotlib's tab10, then tab20 for more than 10 runs)."""
    cmap = plt.get_cmap("tab10" if count <= 10 else "tab20")
    return [matplotlib.colors.to_hex(cmap(i % cmap.N)) for i in range(count)]


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(figure)
    return path


# -- images -------------------------------------------------------------------------------------


def displayable(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Turn model inputs into RGB images ``(N, 3, H, W)`` of ``size`` for display.

    Handles 1-channel luma (repeated), stacked frames ``(N, 3k, h, w)`` and clips
    ``(N, T, 3, h, w)`` (the last frame), and low-resolution inputs (nearest upsampling, so a
    crop box drawn in target coordinates lands on the same content).
    """
    if images.dim() == 5:
        images = images[:, -1]
    channels = images.shape[1]
    if channels == 1:
        images = images.repeat(1, 3, 1, 1)
    elif channels > 3 and channels % 3 == 0:
        images = images[:, -3:]
    elif channels != 3:
        images = images[:, :1].repeat(1, 3, 1, 1)
    if tuple(images.shape[-2:]) != tuple(size):
        images = F.interpolate(images, size=size, mode="nearest")
    return images.clamp(0, 1)


def _as_hypotheses(outputs: Tensor) -> Tensor:
    return outputs if outputs.dim() == 5 else outputs.unsqueeze(1)


def best_of(outputs: Tensor, targets: Tensor) -> Tensor:
    """Per image the hypothesis closest to the target (``(N, C, H, W)``; 4-D passes through)."""
    if outputs.dim() == 4:
        return outputs
    errors = (outputs - targets.unsqueeze(1)).square().flatten(2).mean(dim=2)
    return outputs[torch.arange(outputs.shape[0]), errors.argmin(dim=1)]


def choose_crop(outputs: Sequence[Tensor], target: Tensor, crop: int) -> tuple[int, int]:
    """Top-left corner ``(y, x)`` of the ``crop x crop`` window where the runs differ most.

    The score of a window is the variance across runs of its mean absolute error (what tells the
    losses apart); with a single run, its mean absolute error; ties are broken by the target's
    gradient energy (prefer detailed regions). ``outputs``: one ``(C, H, W)`` per run.
    """
    height, width = target.shape[-2:]
    crop = min(crop, height, width)
    errors = torch.stack([(o - target).abs().mean(dim=0) for o in outputs])  # (R, H, W)
    local = F.avg_pool2d(errors.unsqueeze(1), crop, stride=1).squeeze(1)  # (R, h, w)
    score = local.var(dim=0, unbiased=False) if len(outputs) > 1 else local[0]
    gray = target.mean(dim=0)
    gradient = torch.zeros_like(gray)
    gradient[:, 1:] += (gray[:, 1:] - gray[:, :-1]).square()
    gradient[1:, :] += (gray[1:, :] - gray[:-1, :]).square()
    detail = F.avg_pool2d(gradient[None, None], crop, stride=1)[0, 0]
    scale = float(score.max()) if float(score.max()) > 0 else 1.0
    total = score + 1e-3 * scale * detail / max(float(detail.max()), 1e-12)
    flat = int(torch.argmax(total))
    return flat // total.shape[1], flat % total.shape[1]


@dataclass
class GridRow:
    label: str
    images: Tensor  # (N, 3, H, W)


def _to_numpy(image: Tensor) -> np.ndarray:
    return image.clamp(0, 1).permute(1, 2, 0).numpy()


def image_grid(
    runs: Sequence[RunRecord],
    predictions: Sequence[dict[str, Tensor]],
    path: Path,
    *,
    count: int = 4,
    show_input: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """The image grid: the target (and input) row, then one row per run (one per hypothesis).

    For each of the first ``count`` validation images: the full image with a box, then the
    boxed region enlarged. The box is placed where the runs' outputs differ most
    (:func:`choose_crop`). Returns the PNG path and facts for the caption (``crop``, ``images``).
    """
    targets = predictions[0]["targets"]
    count = min(count, targets.shape[0])
    height, width = targets.shape[-2:]
    crop = max(4, min(height, width) // 4)
    rows = [GridRow("target", targets[:count])]
    inputs = predictions[0]["inputs"]
    if show_input:
        shown = displayable(inputs[:count], (height, width))
        if tuple(inputs.shape[1:]) != tuple(targets.shape[1:]) or not torch.allclose(
            shown, targets[:count], atol=1e-6
        ):
            rows.insert(0, GridRow("input", shown))
    best = [best_of(p["outputs"][:count], targets[:count]) for p in predictions]
    corners = [choose_crop([b[i] for b in best], targets[i], crop) for i in range(count)]
    for run, prediction in zip(runs, predictions, strict=True):
        hypotheses = _as_hypotheses(prediction["outputs"][:count])
        for k in range(hypotheses.shape[1]):
            label = run.label if hypotheses.shape[1] == 1 else f"{run.label}\nhypothesis {k + 1}"
            rows.append(GridRow(label, hypotheses[:, k]))

    cell = 1.45
    figure, axes = plt.subplots(
        len(rows), 2 * count, figsize=(2 * count * cell + 1.6, len(rows) * cell + 0.2),
        squeeze=False, gridspec_kw={"wspace": 0.04, "hspace": 0.06},
    )
    for r, row in enumerate(rows):
        for i in range(count):
            y, x = corners[i]
            full, zoom = axes[r][2 * i], axes[r][2 * i + 1]
            image = row.images[i]
            full.imshow(_to_numpy(image), interpolation="nearest")
            full.add_patch(Rectangle((x - 0.5, y - 0.5), crop, crop, fill=False,
                                     edgecolor="#ffcc00", linewidth=1.4))
            zoom.imshow(_to_numpy(image[:, y : y + crop, x : x + crop]), interpolation="nearest")
            for axis in (full, zoom):
                axis.set_xticks([])
                axis.set_yticks([])
            for spine in zoom.spines.values():
                spine.set_edgecolor("#ffcc00")
                spine.set_linewidth(1.4)
            if r == 0:
                full.set_title(f"image {i + 1}", fontsize=8)
                zoom.set_title(f"detail (x{width / crop:.0f})", fontsize=8)
        axes[r][0].set_ylabel(row.label, rotation=0, ha="right", va="center", fontsize=8,
                              labelpad=6)
    _save(figure, path)
    return path, {"crop": crop, "images": count, "size": (height, width)}


def color_error_bars(runs: Sequence[RunRecord], path: Path) -> Path | None:
    """Grouped bars: per run, the mean absolute error on red, green, blue, luma and chroma."""
    present = [(key, name, colour) for key, name, colour in COMPONENTS
               if any(isinstance(run.metrics.get(key), (int, float)) for run in runs)]
    if not present:
        return None
    figure, axis = plt.subplots(figsize=(max(6.0, 1.3 * len(runs) + 2), 3.4))
    width = 0.8 / len(present)
    positions = np.arange(len(runs))
    for j, (key, name, colour) in enumerate(present):
        values = [run.metrics.get(key) for run in runs]
        heights = [v if isinstance(v, (int, float)) else 0.0 for v in values]
        axis.bar(positions + (j - (len(present) - 1) / 2) * width, heights, width, label=name,
                 color=colour)
    axis.set_xticks(positions, [_wrap(run.label) for run in runs], fontsize=8)
    axis.set_ylabel("mean absolute error")
    axis.legend(fontsize=8, ncols=len(present), loc="upper left", frameon=False)
    axis.spines[["top", "right"]].set_visible(False)
    axis.set_ylim(0, axis.get_ylim()[1] * 1.15)
    return _save(figure, path)


def _wrap(text: str, width: int = 18) -> str:
    words, lines, line = text.split(" "), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)


def spectrum_curves(runs: Sequence[RunRecord], spectra: Sequence[dict[str, Any] | None],
                    path: Path) -> Path | None:
    """Log-log radial power spectra of each run's outputs against the targets'."""
    pairs = [(run, s) for run, s in zip(runs, spectra, strict=True) if s]
    if not pairs:
        return None
    colours = dict(zip([r.label for r in runs], run_colours(len(runs)), strict=True))
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    first = pairs[0][1]
    axis.loglog(first["frequency"], np.maximum(first["target"], 1e-12), color="black",
                linestyle="--", linewidth=2, label="target")
    for run, spectrum in pairs:
        axis.loglog(spectrum["frequency"], np.maximum(spectrum["output"], 1e-12),
                    color=colours[run.label], linewidth=1.4, label=run.label,
                    linestyle=":" if run.baseline else "-")
    axis.set_xlabel("spatial frequency (fraction of Nyquist)")
    axis.set_ylabel("power (luma)")
    axis.grid(True, which="both", alpha=0.25)
    axis.legend(fontsize=7, frameon=False)
    return _save(figure, path)


def perception_distortion(runs: Sequence[RunRecord], path: Path) -> tuple[Path | None, str]:
    """Scatter: PSNR (distortion) against LPIPS when every run has it, else against hf_ratio.

    An entry of several seeds is drawn at its mean with bars from its lowest to its highest
    seed on both axes (``run.spread``).

    Returns the path and the y metric used (``"lpips"`` or ``"hf_ratio"``).
    """
    def usable(key: str) -> list[RunRecord]:
        return [r for r in runs if isinstance(r.metrics.get(key), (int, float))
                and isinstance(r.metrics.get("psnr"), (int, float))]

    key = "lpips" if runs and len(usable("lpips")) == len(runs) else "hf_ratio"
    points = usable(key)
    if not points:
        return None, key
    colours = dict(zip([r.label for r in runs], run_colours(len(runs)), strict=True))
    figure, axis = plt.subplots(figsize=(6.0, 4.0))
    for run in points:
        x, y = run.metrics["psnr"], run.metrics[key]
        if run.spread:  # a mean over seeds: bars from the lowest to the highest seed
            xs, ys = run.spread.get("psnr") or {}, run.spread.get(key) or {}
            xerr = [[x - xs.get("min", x)], [xs.get("max", x) - x]]
            yerr = [[y - ys.get("min", y)], [ys.get("max", y) - y]]
            axis.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="none", ecolor=colours[run.label],
                          elinewidth=1.2, capsize=3, alpha=0.8, zorder=2)
        if run.baseline:  # untrained baselines: a hollow grey diamond, so they read as reference
            axis.scatter([x], [y], s=70, marker="D", facecolors="none", edgecolors="#555555",
                         linewidths=1.6, zorder=3)
        else:
            axis.scatter([x], [y], s=60, color=colours[run.label], zorder=3)
        axis.annotate(run.label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8,
                      style="italic" if run.baseline else "normal")
    if key == "hf_ratio":
        axis.axhline(1.0, color="black", linestyle="--", linewidth=1)
        axis.text(axis.get_xlim()[0], 1.0, " as sharp as the target", va="bottom", fontsize=7)
        axis.set_ylabel("hf_ratio (output / target high-frequency energy)")
    else:
        axis.set_ylabel("LPIPS (lower = perceptually closer)")
        axis.invert_yaxis()
    axis.set_xlabel("PSNR, dB (higher = less distortion)")
    axis.grid(True, alpha=0.25)
    axis.margins(0.2)
    return _save(figure, path), key


def psnr_spread(runs: Sequence[RunRecord], path: Path) -> Path | None:
    """Per run, every validation image's own PSNR (dots) beside the pooled ``psnr`` (bar).

    Reads ``metrics["per_image"]["psnr"]`` (``None`` for an exact image, drawn at the top edge as
    a triangle) and ``metrics["psnr"]``. Baselines are drawn in grey. Returns ``None`` when no
    run has per-image values.
    """
    rows = [(run, (run.metrics.get("per_image") or {}).get("psnr")) for run in runs]
    rows = [(run, values) for run, values in rows if values]
    if not rows:
        return None
    colours = dict(zip([r.label for r in runs], run_colours(len(runs)), strict=True))
    finite = [v for _, values in rows for v in values if isinstance(v, (int, float))]
    top = max(finite) + 2.0 if finite else 60.0
    figure, axis = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 3.6))
    jitter = np.random.default_rng(0)
    for position, (run, values) in enumerate(rows):
        colour = "#777777" if run.baseline else colours[run.label]
        shown = [v if isinstance(v, (int, float)) else top for v in values]
        offsets = jitter.uniform(-0.18, 0.18, size=len(shown))
        markers = ["^" if not isinstance(v, (int, float)) else "o" for v in values]
        for x, y, marker in zip(position + offsets, shown, markers, strict=True):
            axis.scatter([x], [y], s=14, color=colour, alpha=0.75, marker=marker, zorder=3)
        pooled = run.metrics.get("psnr")
        if isinstance(pooled, (int, float)) and math.isfinite(pooled):
            axis.hlines(pooled, position - 0.32, position + 0.32, color="black", linewidth=2,
                        zorder=4)
    axis.set_xticks(range(len(rows)), [_wrap(run.label) for run, _ in rows], fontsize=8)
    axis.set_ylabel("PSNR per image, dB")
    axis.grid(True, axis="y", alpha=0.25)
    axis.spines[["top", "right"]].set_visible(False)
    return _save(figure, path)


def _smooth(values: Sequence[float]) -> list[float]:
    """Centred running mean over about 5 % of the points (at least 1, edges shrink the window)."""
    half = max(0, len(values) // 40)
    array = np.asarray(values, dtype=float)
    return [float(array[max(0, i - half) : i + half + 1].mean()) for i in range(len(array))]


def _term_columns(log: dict[str, list[tuple[float, float]]]) -> list[str]:
    columns = [c for c in log if c.startswith("train/")]
    terms = sorted(c for c in columns if c != "train/loss")
    if "train/loss" in columns and len(terms) != 1:  # one term: the total repeats it
        return ["train/loss", *terms]
    return terms


def training_curves(runs: Sequence[RunRecord], logs: Sequence[dict[str, list[tuple[float, float]]]],
                    path: Path) -> Path | None:
    """Per run: each loss term over training (log scale) and each term's gradient share."""
    if not any(logs):
        return None
    figure, axes = plt.subplots(len(runs), 2, figsize=(10.0, 2.3 * len(runs) + 0.4),
                                squeeze=False)
    for r, (run, log) in enumerate(zip(runs, logs, strict=True)):
        loss_axis, share_axis = axes[r]
        terms = _term_columns(log)
        for column in terms:
            steps, values = zip(*sorted(log[column]), strict=True)
            positive = all(v > 0 for v in values)
            line, = loss_axis.plot(steps, _smooth(values), linewidth=1.3,
                                   label=column.removeprefix("train/"))
            loss_axis.plot(steps, values, color=line.get_color(), alpha=0.2, linewidth=0.8)
            if positive:
                loss_axis.set_yscale("log")
        if not terms:
            loss_axis.text(0.5, 0.5, "no train/* columns in the CSV log", ha="center",
                           va="center", transform=loss_axis.transAxes, fontsize=8)
        loss_axis.set_title(f"{run.label}: loss terms", fontsize=9, loc="left")
        shares = sorted(c for c in log if c.startswith("grad_share/"))
        for column in shares:
            steps, values = zip(*sorted(log[column]), strict=True)
            share_axis.plot(steps, values, marker=".", linewidth=1.2,
                            label=column.removeprefix("grad_share/"))
        if shares:
            share_axis.set_ylim(-0.05, 1.05)
        else:
            share_axis.text(0.5, 0.5, "no gradient shares logged", ha="center", va="center",
                            transform=share_axis.transAxes, fontsize=8)
        share_axis.set_title(f"{run.label}: gradient share", fontsize=9, loc="left")
        for axis in (loss_axis, share_axis):
            axis.grid(True, alpha=0.25)
            axis.tick_params(labelsize=7)
            if axis.get_legend_handles_labels()[0]:
                axis.legend(fontsize=7, frameon=False)
        if r == len(runs) - 1:
            loss_axis.set_xlabel("step", fontsize=8)
            share_axis.set_xlabel("step", fontsize=8)
    figure.tight_layout()
    return _save(figure, path)


def probe_heatmap(probe: dict[str, Any], path: Path) -> Path | None:
    """Heatmap of the probe's normalised sensitivities (rows: specs, columns: perturbations)."""
    specs = [s for s, row in probe.items() if isinstance(row, dict)]
    if not specs:
        return None
    perturbations: list[str] = []
    for spec in specs:
        for name, cell in probe[spec].items():
            if isinstance(cell, dict) and name not in perturbations:
                perturbations.append(name)
    if not perturbations:
        return None
    values = np.full((len(specs), len(perturbations)), np.nan)
    for i, spec in enumerate(specs):
        for j, name in enumerate(perturbations):
            cell = probe[spec].get(name)
            if isinstance(cell, dict) and isinstance(cell.get("normalised"), (int, float)):
                values[i, j] = float(cell["normalised"])
    figure, axis = plt.subplots(figsize=(1.0 + 0.7 * len(perturbations), 0.9 + 0.45 * len(specs)))
    image = axis.imshow(values, cmap="viridis", aspect="auto")
    axis.set_xticks(range(len(perturbations)), perturbations, rotation=40, ha="right", fontsize=8)
    axis.set_yticks(range(len(specs)), specs, fontsize=8)
    for i in range(len(specs)):
        for j in range(len(perturbations)):
            if math.isfinite(values[i, j]):
                axis.text(j, i, f"{values[i, j]:.2g}", ha="center", va="center", fontsize=7,
                          color="white" if values[i, j] < np.nanmean(values) else "black")
    figure.colorbar(image, ax=axis, label="normalised loss")
    return _save(figure, path)


def neighbour_strips(runs: Sequence[RunRecord], neighbours: Sequence[dict[str, Any] | None],
                     images: Tensor, path: Path, *, queries: int = 3) -> Path | None:
    """Per autoencoder run and query image: the query, then its nearest neighbours in code space."""
    pairs = [(run, n) for run, n in zip(runs, neighbours, strict=True) if n and n.get("indices")]
    if not pairs:
        return None
    queries = min(queries, images.shape[0])
    k = max(len(n["indices"][0]) for _, n in pairs)
    rows = [(run, q, n["indices"][q]) for run, n in pairs for q in range(queries)]
    figure, axes = plt.subplots(len(rows), 1 + k, figsize=(1.2 * (1 + k) + 1.8, 1.2 * len(rows)),
                                squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.1})
    for r, (run, q, indices) in enumerate(rows):
        shown = [q, *indices]
        for c in range(1 + k):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c < len(shown) and 0 <= shown[c] < images.shape[0]:
                axis.imshow(_to_numpy(images[shown[c]]), interpolation="nearest")
            if c == 0:
                for spine in axis.spines.values():
                    spine.set_edgecolor("#ffcc00")
                    spine.set_linewidth(2)
            if r == 0:
                axis.set_title("query" if c == 0 else f"neighbour {c}", fontsize=8)
        axes[r][0].set_ylabel(run.label if q == 0 else "", rotation=0, ha="right", va="center",
                              fontsize=8, labelpad=6)
    return _save(figure, path)


@dataclass
class StripRun:
    """One stochastic run in the sample strip: its label and saved draws.

    Attributes:
        label: the run's label.
        samples: ``(M, S, 3, H, W)`` in ``[0, 1]``, the first ``M`` inputs' samples.
        sample_mean: ``(N, 3, H, W)``, the mean of every input's samples.
        titles: per shown input, one caption per sample (the answer it reaches, its PSNR).
    """

    label: str
    samples: Tensor
    sample_mean: Tensor
    titles: dict[int, list[str]]


def sample_strip(runs: Sequence[StripRun], inputs: Tensor, targets: Tensor,
                 plausible: Tensor | None, reference: tuple[str, Tensor] | None, path: Path,
                 *, shown: Sequence[int] = (0,), count: int = 8) -> Path:
    """Per shown input: a reference row, then one row of samples per stochastic run.

    The reference row holds the input (as :func:`displayable` shows it), the target, every
    plausible answer (``plausible`` ``(N, P, 3, H, W)``) and the MSE entry's output
    (``reference``: label and ``(N, 3, H, W)``); each run's row its first ``count`` samples,
    titled with ``titles``, and the mean of its samples last.
    """
    height, width = targets.shape[-2:]
    shown_inputs = displayable(inputs, (height, width))
    rows: list[tuple[str, list[tuple[str, Tensor | None]]]] = []
    for i in shown:
        cells: list[tuple[str, Tensor | None]] = [("input", shown_inputs[i]), ("target", targets[i])]
        if plausible is not None:
            cells += [(f"answer {p + 1}", plausible[i, p]) for p in range(plausible.shape[1])]
        if reference is not None:
            name = reference[0] if reference[0].strip().lower() == "mse" else f"{reference[0]} (MSE)"
            cells.append((_wrap(name, 14), reference[1][i]))
        rows.append((f"input {i + 1}", cells))
        for run in runs:
            if i >= run.samples.shape[0]:
                continue
            draws = run.samples[i, :count]
            titles = run.titles.get(i, [f"sample {k + 1}" for k in range(draws.shape[0])])
            cells = [(titles[k], draws[k]) for k in range(draws.shape[0])]
            cells.append((f"mean of {run.samples.shape[1]}", run.sample_mean[i]))
            rows.append((_wrap(run.label), cells))
    columns = max(len(cells) for _, cells in rows)
    cell = 1.15
    figure, axes = plt.subplots(len(rows), columns,
                                figsize=(columns * cell + 1.6, len(rows) * (cell + 0.35)),
                                squeeze=False, gridspec_kw={"wspace": 0.06, "hspace": 0.55})
    for r, (label, cells) in enumerate(rows):
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c >= len(cells) or cells[c][1] is None:
                axis.axis("off")
                continue
            title, image = cells[c]
            axis.imshow(_to_numpy(image), interpolation="nearest")  # type: ignore[arg-type]
            axis.set_title(title, fontsize=6.5)
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8, labelpad=6)
    return _save(figure, path)
