"""The ``losslab equal`` and ``losslab mad`` jobs: synthesise, then write a figure and JSON.

Each is one call for the CLI (and for ``losslab compare``'s metamer section), so the command
line stays argument parsing only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from losslab.synthesis._common import check_target, criterion_from
from losslab.synthesis.images import DEFAULT_START_PHOTO, load_image
from losslab.synthesis.mad import DEFAULT_NOISE, MADResult, mad
from losslab.synthesis.mad import DEFAULT_STEPS as MAD_STEPS
from losslab.synthesis.metamers import (
    DEFAULT_STARTS,
    DEFAULT_STEPS,
    MetamerResult,
    metamers,
)
from losslab.synthesis.output import (
    mad_caption,
    metamer_caption,
    plot_mad,
    plot_metamers,
    write_json,
)

#: Photo used for a ``photo`` start when the target itself is the default start photo.
ALTERNATIVE_START_PHOTO = "coffee"


@dataclass
class Written:
    """What a job wrote: the figure, the JSON file, and the results behind them."""

    figure: Path
    json: Path
    results: Any


def _starts_for(image: str, starts: Sequence[str]) -> list[str]:
    """Name the photo of a bare ``photo`` start so that it is never the target itself."""
    other = ALTERNATIVE_START_PHOTO if Path(str(image)).stem == DEFAULT_START_PHOTO else None
    return [f"photo:{other}" if start == "photo" and other else start for start in starts]


def write_metamers(
    specs: Sequence[str],
    image: str | Path,
    out_dir: str | Path,
    *,
    size: int = 128,
    starts: Sequence[str] = DEFAULT_STARTS,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    device: str | torch.device | None = None,
    lr: float | None = None,
    continuation: float | str | None = "auto",
    cycles: int | None = None,
    labels: Sequence[str] | None = None,
    name: str = "equal",
    title: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Written:
    """Metamers of every spec for one image; writes ``OUT/NAME.png`` and ``OUT/NAME.json``.

    Args:
        specs: loss specs (one figure row each; adversarial terms are an error).
        image: a bundled photo name or an image file (see :func:`load_image`).
        size: side in pixels the image is centre-cropped and resized to.
        starts, steps, seed, device, lr, continuation, cycles: passed to
            :func:`losslab.synthesis.metamers` (``continuation``: starting blur sigma in px of
            the continuation over scale, ``"max"``, ``"off"``, or ``"auto"``: on for losses
            blind to edge signs; see ``docs/synthesis.md``).
        labels: row labels (default: the specs).
        name: file stem of the figure and JSON.
        title: the figure's title (default: a generic one).
        extra: more JSON fields (e.g. notes on what was left out of each spec).

    Returns:
        :class:`Written` with ``results`` = the list of :class:`MetamerResult`.

    The JSON holds ``{"image", "size", "caption", "labels", "results": [result.to_dict()]}``.
    Every spec is built and checked before the first synthesis, so a typo fails at once.
    """
    specs = list(specs)
    if not specs:
        raise ValueError("give at least one loss spec, e.g. losslab equal mse 'l1(luma)'.")
    target = load_image(image, size)
    if device is not None:
        target = target.to(device)
    chosen = _starts_for(str(image), starts)
    for spec in specs:  # fail fast: build and check every spec before spending minutes on one
        criterion, spec_name, _ = criterion_from(spec, None)
        check_target(target, criterion, spec_name)
    unique: dict[str, MetamerResult] = {}  # a spec listed twice is synthesised once
    for spec in specs:
        if spec not in unique:
            unique[spec] = metamers(spec, target, starts=chosen, steps=steps, seed=seed, lr=lr,
                                    continuation=continuation, cycles=cycles)
    results = [unique[spec] for spec in specs]
    out = Path(out_dir)
    figure = plot_metamers(results, out / f"{name}.png", labels=labels, title=title)
    payload = {
        "image": str(image),
        "size": size,
        "caption": metamer_caption(),
        "labels": list(labels) if labels is not None else specs,
        "results": [result.to_dict() for result in results],
        **(extra or {}),
    }
    return Written(figure, write_json(payload, out / f"{name}.json"), results)


def write_mad(
    spec_a: str,
    spec_b: str,
    image: str | Path,
    out_dir: str | Path,
    *,
    size: int = 128,
    noise: float = DEFAULT_NOISE,
    steps: int = MAD_STEPS,
    seed: int = 0,
    device: str | torch.device | None = None,
    name: str = "mad",
) -> Written:
    """MAD competition of two specs on one image; writes ``OUT/NAME.png`` and ``OUT/NAME.json``.

    Returns :class:`Written` with ``results`` = the :class:`MADResult`. The JSON is
    ``{"image", "size", "caption", **result.to_dict()}``.
    """
    target = load_image(image, size)
    if device is not None:
        target = target.to(device)
    result: MADResult = mad(spec_a, spec_b, target, noise=noise, steps=steps, seed=seed)
    out = Path(out_dir)
    figure = plot_mad(result, out / f"{name}.png")
    payload = {"image": str(image), "size": size, "caption": mad_caption(result),
               **result.to_dict()}
    return Written(figure, write_json(payload, out / f"{name}.json"), result)
