"""The loss metamers of a comparison: one row per entry (:mod:`losslab.synthesis`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from losslab.core.records import METAMERS_JSON, METAMERS_PNG
from losslab.experiments.evaluate import write_json_atomic
from losslab.experiments.planning import PlannedRun
from losslab.experiments.preflight import LossFacts
from losslab.experiments.probing import SAMPLE_BASED_NOTE, sample_based
from losslab.experiments.specs import probe_spec
from losslab.losses import loss as build_loss
from losslab.synthesis import load_image, minimum_size, write_metamers

#: The target photo and start images of the report's metamer rows (cheap: 64 px, 150 steps).
METAMER_IMAGE = "astronaut"
METAMER_STARTS: tuple[str, ...] = ("noise", "photo")


def run_metamers(plans: list[PlannedRun], out_dir: Path, size: int, steps: int,
                 facts: Mapping[str, LossFacts] | None = None) -> None:
    """One metamer row per run (adversarial terms left out); writes metamers.json/png.

    ``facts``: :func:`~losslab.experiments.preflight.preflight`'s ``{spec: LossFacts}``, so a
    loss built there is not built again here (sample-based losses get no row).

    The image is the bundled photo :data:`METAMER_IMAGE` at ``size`` px, or larger when a loss
    needs it (5-scale MS-SSIM: 161 px). A synthesis error is written into ``metamers.json``
    (``{"error": ...}``) for the report to show, so finished training is never lost to it.
    """
    rows: list[tuple[str, str]] = []
    notes: dict[str, str] = {}
    for plan in plans:
        spec, note = probe_spec(plan.loss)
        if spec is not None and sample_based(plan, spec, facts):
            spec, note = None, SAMPLE_BASED_NOTE
        if plan.hypotheses > 1 and spec is not None:
            note = (f"shown for its per-hypothesis loss {spec!r} (a winner-takes-all minimum over "
                    f"{plan.hypotheses} outputs has no single image to synthesise)")
        if not plan.metamer:
            spec, note = None, ("no row: left out by the experiment file (metamer: false; see "
                                "the entry's note)")
        elif spec is None and note != SAMPLE_BASED_NOTE:
            note = ("no row: its only term is adversarial, a discriminator trained with the "
                    "generator, not a fixed function of (image, target)")
        elif spec is not None and spec != plan.loss and plan.hypotheses == 1:
            note = f"shown as {spec!r}: adversarial terms have no fixed value to synthesise for"
        if note:
            notes[plan.label] = note
        if spec is not None:
            rows.append((plan.label, spec))
    if not rows:
        write_json_atomic(out_dir / METAMERS_JSON, {"error": "no loss without adversarial "
                                                               "terms to synthesise for"})
        return
    try:
        known = facts or {}
        needed = max(known[spec].min_size if spec in known else minimum_size(build_loss(spec))[0]
                     for _, spec in rows)
        image_size = max(size, needed)
        load_image(METAMER_IMAGE, image_size)  # fail here, not after the first row
        write_metamers(
            [spec for _, spec in rows], METAMER_IMAGE, out_dir, size=image_size,
            starts=METAMER_STARTS, steps=steps, labels=[label for label, _ in rows],
            name=Path(METAMERS_JSON).stem, title="What each loss considers equal (loss metamers)",
            extra={"notes": notes},
        )
    except (ValueError, RuntimeError, FloatingPointError, OSError) as error:
        (out_dir / METAMERS_PNG).unlink(missing_ok=True)
        write_json_atomic(out_dir / METAMERS_JSON, {"error": str(error), "notes": notes})


