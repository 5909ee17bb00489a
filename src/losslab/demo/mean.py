"""Regression to the mean, shown three ways in well under a minute on a CPU.

(a) **1-D** (:func:`run_one_dimensional_demo`): one constant input, targets drawn from a mixture
    of three Gaussians with unequal weights (modes -3, 0.5 and 3.5 with weights 0.45, 0.35, 0.2
    and standard deviation 0.4), so mean, median and modes all differ. A predictor trained with
    MSE converges to the sample mean, with MAE (L1) to the sample median, a winner-takes-all
    head with ``K = 3`` hypotheses to the modes, and a mixture density network (3 Gaussians,
    negative log-likelihood) puts its component means on the modes. A *sampler* (a small MLP of
    a 4-d Gaussian noise, trained by the fair energy score with 8 draws per target) draws
    values whose histogram follows the three modes and their weights, with some draws
    bridging the gaps (``sampler.mode_fractions``: within 2 sd of each mode, against
    ``sampler.data_mode_fractions``; ``sampler.histogram_distance``: total variation between
    the two histograms, 0 = equal).
(b) **image** (:func:`run_image_demo`): one input, two equally likely targets (a bright disk on
    the left or on the right). MSE draws both disks at half intensity (a ghost); L1 has no
    unique answer (any value between the two targets costs the same) and keeps its
    initial grey; WTA with ``K = 2`` draws one sharp disk per hypothesis. A noise-input net
    trained by the energy score on random-VGG features (``image_sampler``, started from the
    ghost) draws one sharp disk per sample, both disks about equally often
    (``image_sampler.near_target``: the fraction of 64 draws near each disk); under the pixel
    energy score (``sampler="energy_score"``) the same net ends as "mean + noise" or on one disk
    (the score's blind spot, measured in docs/losses.md).
(c) **pose** (:func:`run_pose_demo`): images of an ellipse (180 degree symmetry) at orientation
    ``theta`` uniform in ``[0, 2 pi)``, labelled with ``theta``; ``theta`` and ``theta + pi``
    give identical images. MSE on ``(cos theta, sin theta)`` learns their average, about
    ``(0, 0)``, whose angle is meaningless; a WTA head with ``K = 2`` predicts both valid angles.
    Errors are angular distances to the nearest valid answer (``theta`` or ``theta + pi``), in
    degrees, on fresh test images.

Winner-takes-all uses :func:`losslab.losses.multi_hypothesis.winner_takes_all`: relaxed
(``epsilon = 0.05``, so hypotheses that never win still move) for the first half of training,
then plain WTA, so the epsilon pull towards the mean does not bias the final hypotheses.

JSON (``write_mean_demo_json``, the CLI's ``--json FILE``)::

    {"sample": {"mean": float, "median": float, "modes": [float, float, float]},
     "predictions": {"mse": float, "mae": float, "wta": [float x3], "mdn": [float x3]},
     "mdn_weights": [float x3],
     "sampler": {"mode_fractions": [float x3], "data_mode_fractions": [float x3],
                 "histogram_distance": float},
     "image": {"mse": {...}, "l1": {...}, "wta": {...}, "sampler": {...}},
     "image_sampler": {"spec": str, "near_target": [float, float], "near_none": float},
     "pose": {"mse_error_deg": float, "wta_error_deg": float, "wta_best_error_deg": float,
              "chance_error_deg": 45.0},
     "files": {"histogram": path, "image": path}}

``sample.modes`` are the modes of the generating mixture (its component means); ``wta`` and
``mdn`` are sorted ascending (``mdn_weights`` follow the ``mdn`` order).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from losslab.demo._training import WTA_EPSILON
from losslab.demo.mean_1d import (
    MIXTURE_MODES,
    MIXTURE_STD,
    MIXTURE_WEIGHTS,
    plot_one_dimensional,
    run_one_dimensional_demo,
    sample_mixture,
)
from losslab.demo.mean_image import plot_image_demo, run_image_demo
from losslab.demo.mean_pose import angular_error, plot_pose_demo, render_ellipses, run_pose_demo

__all__ = [
    "MIXTURE_MODES", "MIXTURE_STD", "MIXTURE_WEIGHTS", "WTA_EPSILON", "angular_error",
    "format_mean_demo", "plot_image_demo", "plot_one_dimensional", "plot_pose_demo",
    "render_ellipses", "run_image_demo", "run_mean_demo", "run_one_dimensional_demo",
    "run_pose_demo", "sample_mixture", "write_mean_demo_json",
]


def run_mean_demo(out_dir: str | Path | None = None, seed: int = 0) -> dict:
    """Run parts (a), (b) and (c); write figures to ``out_dir``.

    About 35 s of CPU time on one core (the VGG-feature image sampler is a third of it).

    Returns the JSON-ready dict described in the module docstring (``files`` lists the figures
    written; empty without ``out_dir``) plus ``seconds``, the wall time.
    """
    begin = time.perf_counter()
    one_d = run_one_dimensional_demo(seed)
    image = run_image_demo(seed)
    pose = run_pose_demo(seed)
    files: dict[str, str] = {}
    if out_dir is not None:
        directory = Path(out_dir)
        files["histogram"] = str(plot_one_dimensional(one_d, directory / "mean_1d.png"))
        files["image"] = str(plot_image_demo(image, directory / "mean_image.png"))
        files["pose"] = str(plot_pose_demo(pose, directory / "mean_pose.png"))
    pose = {key: value for key, value in pose.items() if key != "examples"}  # tensors: not JSON
    return {
        "sample": one_d["sample"],
        "predictions": one_d["predictions"],
        "mdn_weights": one_d["mdn_weights"],
        "sampler": {key: value for key, value in one_d["sampler"].items() if key != "samples"},
        "image": image["metrics"],
        "image_sampler": image.get("sampler"),
        "pose": pose,
        "files": files,
        "seconds": time.perf_counter() - begin,
    }


def write_mean_demo_json(result: dict, path: str | Path) -> Path:
    """Write :func:`run_mean_demo`'s result as JSON (structure in the module docstring)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return target


def format_mean_demo(result: dict) -> str:
    """Human-readable summary of :func:`run_mean_demo` for the terminal."""
    sample, predictions = result["sample"], result["predictions"]

    def numbers(values: list[float]) -> str:
        return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"

    lines = [
        "Regression to the mean (1-D, one input, mixture of 3 Gaussians):",
        f"  sample mean {sample['mean']:.3f}, median {sample['median']:.3f}, "
        f"modes {numbers(sample['modes'])}",
        f"  MSE predicts {predictions['mse']:.3f} (the mean)",
        f"  MAE predicts {predictions['mae']:.3f} (the median)",
        f"  WTA (K=3) predicts {numbers(predictions['wta'])} (the modes)",
        f"  MDN (K=3) means {numbers(predictions['mdn'])}, weights "
        f"{numbers(result['mdn_weights'])}",
        f"  energy-score sampler: fraction of draws near each mode "
        f"{numbers(result['sampler']['mode_fractions'])} (data "
        f"{numbers(result['sampler']['data_mode_fractions'])}), histogram distance "
        f"{result['sampler']['histogram_distance']:.3f} (0 = the data's)",
        "Image (two equally likely targets; intensity at the left / right disk centres):",
    ]
    for method, metrics in result["image"].items():
        centres = ", ".join(
            f"{a:.2f}/{b:.2f}" for a, b in zip(metrics["left_centre"], metrics["right_centre"],
                                               strict=True)
        )
        plausible = ", ".join("exact" if v is None else f"{v:.1f}"
                              for v in metrics["psnr_plausible"])
        lines.append(f"  {method:4s} {centres}   MSE to nearest target "
                     f"{numbers(metrics['error_to_nearest_target'])}, psnr_plausible "
                     f"[{plausible}] dB")
    if result.get("image_sampler"):
        sampled = result["image_sampler"]
        lines.append(f"  {sampled['spec']} sampler: fraction of 64 draws near the left / right "
                     f"disk {numbers(sampled['near_target'])}, near neither "
                     f"{sampled['near_none']:.3f} (data: 0.5 / 0.5 / 0)")
    pose = result["pose"]
    lines += [
        "Pose (ellipse, theta and theta+pi look the same; mean angular error, degrees):",
        f"  MSE on (cos, sin): {pose['mse_error_deg']:.1f} (chance {pose['chance_error_deg']:.0f})",
        f"  WTA K=2: {pose['wta_error_deg']:.1f} per hypothesis, "
        f"{pose['wta_best_error_deg']:.1f} best of two",
    ]
    if result.get("files"):
        lines.append("Figures: " + ", ".join(result["files"].values()))
    return "\n".join(lines)
