"""The loss probe of a comparison: the entries' specs (adversarial terms left out), probed once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from losslab import probe as probe_module
from losslab.core.records import PROBE_CSV, PROBE_JSON, PROBE_PNG
from losslab.experiments.planning import PlannedRun
from losslab.experiments.preflight import LossFacts, loss_facts
from losslab.experiments.specs import called_losses, probe_spec
from losslab.losses import loss as build_loss

SAMPLE_BASED_NOTE = ("not probed and no metamer row: a sample-based score (energy_score, crps, "
                     "kernel_score) compares a set of draws with the target; the probe and the "
                     "metamers change one image")


def sample_based(plan: PlannedRun, spec: str, facts: Mapping[str, LossFacts] | None) -> bool:
    """Whether ``spec`` (``plan``'s loss, adversarial terms left out) has a sample-based term;
    read from ``facts`` of ``plan.loss`` (:func:`preflight`: leaving out adversarial terms
    keeps every sample-based one), else built."""
    known = (facts or {}).get(plan.loss)
    return (known if known is not None else loss_facts(build_loss(spec))).sample_based


def run_probe(plans: list[PlannedRun], out_dir: Path, image_size: int | None = None,
              facts: Mapping[str, LossFacts] | None = None) -> dict[str, dict[str, Any]]:
    """Probe the runs' losses (adversarial and sample-based terms left out); write
    probe.json/csv/png. ``facts``: :func:`preflight`'s, so no loss is built only to ask.

    ``image_size``: side of the probe's photo crops (``None``: the probe's default, 192 px, which
    5-scale MS-SSIM needs; specs that mention ``ms_ssim`` always get the default).

    Returns ``{run_name: {"spec": probed spec or None, "note": what was left out}}``.
    """
    notes: dict[str, dict[str, Any]] = {}
    specs: list[str] = []
    for plan in plans:
        spec, note = probe_spec(plan.loss)
        if spec is not None and sample_based(plan, spec, facts):
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
        probe_module.write_probe_json(result, out_dir / PROBE_JSON)
        probe_module.write_probe_csv(result, out_dir / PROBE_CSV)
        probe_module.plot_probe_heatmap(result, out_dir / PROBE_PNG)
    return notes


