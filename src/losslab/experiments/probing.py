"""The loss probe of a comparison: the entries' specs (adversarial terms left out), probed once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from losslab import probe as probe_module
from losslab.core.records import PROBE_CSV, PROBE_JSON, PROBE_PNG
from losslab.experiments.planning import PlannedRun
from losslab.experiments.specs import called_losses, probe_spec


def run_probe(plans: list[PlannedRun], out_dir: Path,
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


