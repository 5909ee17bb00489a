"""Synthesis results out: the metamer figure, the MAD figure, JSON, a terminal summary.

Figures are matplotlib (Agg) PNGs (or any format matplotlib knows, by suffix), written
atomically (a temporary file renamed over the target), so a report or README never embeds a
half-written image. Numbers under the images are in ``[0, 1]`` pixel units.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
from torch import Tensor

from losslab.core.atomic import atomic_path, write_text_atomic
from losslab.synthesis.mad import MAD_IMAGES, MADResult
from losslab.synthesis.mad import unit_images as mad_unit_images
from losslab.synthesis.metamers import MetamerResult
from losslab.synthesis.metamers import unit_images as metamer_unit_images

_PANEL = 1.9  # inches per image


def _show(axes: Any, image: Tensor, title: str, text: str) -> None:
    picture = image[0] if image.dim() == 4 else image
    if picture.shape[0] == 1:
        axes.imshow(picture[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)
    else:
        axes.imshow(picture.permute(1, 2, 0).numpy(), interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title, fontsize=8)
    axes.set_xlabel(text, fontsize=7, family="monospace", linespacing=1.15)


def _save(figure: Any, path: str | Path) -> Path:
    target = Path(path)
    with atomic_path(target) as temporary:
        figure.savefig(temporary, dpi=110, bbox_inches="tight", facecolor="white",
                       format=target.suffix.lstrip(".") or "png")
    plt.close(figure)
    return target


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _colour_lines(numbers: dict[str, float | None]) -> list[str]:
    if numbers.get("err_luma") is None:
        return []
    return [f"luma {_fmt(numbers['err_luma'])} chroma {_fmt(numbers['err_chroma'])}",
            f"R {_fmt(numbers['err_red'], 2)} G {_fmt(numbers['err_green'], 2)} "
            f"B {_fmt(numbers['err_blue'], 2)}"]


def metamer_caption() -> str:
    """What to look for in a metamer figure (used by the CLI and the report)."""
    return (
        "Each row is a loss; every image right of the starts scores (nearly) the same under "
        "that loss as the target does. What a metamer still shares with its start is what the "
        "loss does not measure: a luma loss keeps the start's colours, a one-channel loss the "
        "other two channels, a pixel loss nothing (every metamer is the target). Numbers: the "
        "loss reached as a % of the start's, pixel RMSE to the target, mean absolute luma / "
        "chroma and R / G / B errors ([0, 1] units)."
    )


def plot_metamers(results: Sequence[MetamerResult], path: str | Path, *,
                  labels: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Save the metamer figure: rows = losses; columns = target, the starts, the metamers.

    Under each start: its RMSE to the target; under each metamer: the loss reached as a % of
    the start's, RMSE, and the luma/chroma and per-channel errors. All results must share the
    target size and starts (as :func:`losslab.synthesis.metamers` makes them for one target).
    ``labels``: one row label per result (default: each result's spec).
    """
    if not results:
        raise ValueError("plot_metamers needs at least one MetamerResult.")
    labels = [result.spec for result in results] if labels is None else list(labels)
    if len(labels) != len(results):
        raise ValueError(f"got {len(labels)} labels for {len(results)} results; give one each.")
    starts = results[0].start_names
    columns = 1 + 2 * len(starts)
    figure, axes = plt.subplots(len(results), columns, squeeze=False, layout="constrained",
                                figsize=(_PANEL * columns, (_PANEL + 0.9) * len(results) + 0.3))
    for row, result in enumerate(results):
        target, start_images, metamer_images = metamer_unit_images(result)
        _show(axes[row, 0], target, "target", f"{result.schedule()}\n{result.seconds:.1f} s")
        axes[row, 0].set_ylabel(labels[row], fontsize=9)
        for k, name in enumerate(result.start_names):
            numbers = result.numbers[k]
            _show(axes[row, 1 + k], start_images[k], f"start: {name}",
                  f"RMSE {_fmt(numbers['start_rmse'])}")
            ratio = numbers["loss_ratio"]
            lines = ["loss " + ("n/a" if ratio is None else f"{100 * ratio:.2g}% of start"),
                     f"RMSE {_fmt(numbers['rmse'])}", *_colour_lines(numbers)]
            _show(axes[row, 1 + len(starts) + k], metamer_images[k], f"metamer from {name}",
                  "\n".join(lines))
    figure.suptitle(title or "What each loss considers equal to the target (loss metamers)",
                    fontsize=11)
    return _save(figure, path)


def mad_caption(result: MADResult) -> str:
    """What to look for in a MAD figure."""
    return (
        f"Top row: {result.spec_a} held at its value for the noisy start; left the image "
        f"{result.spec_b} scores best, right the one it scores worst. Bottom row: the same with "
        f"{result.spec_b} held. A pair that one loss calls equal but the other ranks far apart "
        "shows what the first loss does not see."
    )


def plot_mad(result: MADResult, path: str | Path, *, title: str | None = None) -> Path:
    """Save the MAD figure: target and start on the left, then the four images (2 x 2).

    Under each image: both losses as a ratio of the start's value, RMSE and SSIM to the target.
    """
    images = mad_unit_images(result)
    figure, axes = plt.subplots(2, 3, squeeze=False, layout="constrained",
                                figsize=(_PANEL * 3 + 0.9, 2 * _PANEL + 2.0))

    def text(key: str) -> str:
        numbers = result.numbers[key]
        return (f"A {result.spec_a}: {_fmt(numbers['ratio_a'])}x\n"
                f"B {result.spec_b}: {_fmt(numbers['ratio_b'])}x\n"
                f"RMSE {_fmt(numbers['rmse'])} SSIM {_fmt(numbers['ssim'])}")

    _show(axes[0, 0], images["target"], "target", "")
    _show(axes[1, 0], images["start"], f"start: target + noise {result.noise:g}", text("start"))
    positions = {"best_b": (0, 1), "worst_b": (0, 2), "best_a": (1, 1), "worst_a": (1, 2)}
    for key in MAD_IMAGES:
        row, column = positions[key]
        _show(axes[row, column], images[key], result.label(key), text(key))
    figure.suptitle(title or f"MAD competition: A = {result.spec_a}, B = {result.spec_b} "
                    "(ratios: loss / the start's)", fontsize=10)
    return _save(figure, path)


def write_json(payload: Any, path: str | Path) -> Path:
    """Write ``payload`` (``result.to_dict()`` or a list of them) as indented JSON, atomically."""
    return write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=True) + "\n")


def format_metamers(results: Sequence[MetamerResult]) -> str:
    """A terminal table: one line per (loss, start) with the loss ratio, RMSE and colour errors."""
    lines = [f"{'loss':28s} {'start':14s} {'loss/start':>10s} {'rmse':>7s} {'luma':>7s} "
             f"{'chroma':>7s} {'red':>6s} {'green':>6s} {'blue':>6s} {'seconds':>8s}"]
    for result in results:
        for name, numbers in zip(result.start_names, result.numbers, strict=True):
            ratio = numbers["loss_ratio"]
            lines.append(
                f"{result.spec[:28]:28s} {name[:14]:14s} "
                f"{'n/a' if ratio is None else f'{ratio:.4f}':>10s} {_fmt(numbers['rmse'], 4):>7s} "
                f"{_fmt(numbers['err_luma'], 4):>7s} {_fmt(numbers['err_chroma'], 4):>7s} "
                f"{_fmt(numbers['err_red']):>6s} {_fmt(numbers['err_green']):>6s} "
                f"{_fmt(numbers['err_blue']):>6s} {result.seconds:8.1f}"
            )
    schedules = [f"{result.spec}: {result.schedule()}" for result in results
                 if result.continuation is not None or result.cycles > 1]
    if schedules:  # say when a loss was not descended plainly (docs/synthesis.md says why)
        lines.append("continuation over scale (losses blind to edge signs): " + "; ".join(schedules))
    return "\n".join(lines)


def format_mad(result: MADResult) -> str:
    """A terminal table of the MAD images: both losses (absolute and / start), RMSE, SSIM."""
    lines = [f"A = {result.spec_a}, B = {result.spec_b}; start = target + noise {result.noise:g}; "
             f"{result.steps} steps per image, {result.seconds:.1f} s",
             f"{'image':40s} {'A':>10s} {'A/start':>8s} {'B':>10s} {'B/start':>8s} "
             f"{'rmse':>7s} {'ssim':>7s}"]
    for key in ("start", *MAD_IMAGES):
        numbers = result.numbers[key]
        label = "start" if key == "start" else result.label(key)
        lines.append(f"{label[:40]:40s} {numbers['loss_a']:10.4g} {numbers['ratio_a']:8.4f} "
                     f"{numbers['loss_b']:10.4g} {numbers['ratio_b']:8.4f} "
                     f"{_fmt(numbers['rmse'], 4):>7s} {_fmt(numbers['ssim'], 4):>7s}")
    return "\n".join(lines)
