"""The loss probe: what does each loss charge for each kind of image change, at equal strength?

``run_probe(["mse", "l1(luma)", "l1(red)"])`` applies hue, saturation, brightness, single-channel,
blur, noise, JPEG and contrast changes, all at the same pixel RMSE, plus the natural-strength
pair ``shift`` / ``mean_of_two`` and ``mean_of_two_noise`` (the blur plus noise of the two
shifts' spread), and returns a :class:`ProbeResult`
(``result[spec][perturbation]["raw" | "normalised"]``). Writers: :func:`format_probe_table`,
:func:`write_probe_csv`, :func:`write_probe_json`, :func:`plot_probe_heatmap`.
"""

from losslab.probe.output import (
    format_probe_table,
    plot_probe_heatmap,
    probe_caption,
    write_probe_csv,
    write_probe_json,
)
from losslab.probe.perturbations import (
    MATCHED_PERTURBATIONS,
    NATURAL_PERTURBATIONS,
    PERTURBATIONS,
    clip_keep_luma,
    gaussian_blur,
    jpeg_round_trip,
    match_strength,
    mean_of_two_noise,
    perturb,
    shifted_pair,
)
from losslab.probe.probe import (
    DEFAULT_PROBE_SPECS,
    ProbeResult,
    default_probe_images,
    folder_probe_images,
    run_probe,
)

__all__ = [
    "DEFAULT_PROBE_SPECS",
    "MATCHED_PERTURBATIONS",
    "NATURAL_PERTURBATIONS",
    "PERTURBATIONS",
    "ProbeResult",
    "clip_keep_luma",
    "default_probe_images",
    "folder_probe_images",
    "format_probe_table",
    "gaussian_blur",
    "jpeg_round_trip",
    "match_strength",
    "mean_of_two_noise",
    "perturb",
    "plot_probe_heatmap",
    "probe_caption",
    "run_probe",
    "shifted_pair",
    "write_probe_csv",
    "write_probe_json",
]
