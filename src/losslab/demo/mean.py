"""Regression to the mean, shown three ways in well under a minute on a CPU.

(a) **1-D** (:func:`run_one_dimensional_demo`): one constant input, targets drawn from a mixture
    of three Gaussians with unequal weights (modes -3, 0.5 and 3.5 with weights 0.45, 0.35, 0.2
    and standard deviation 0.4), so mean, median and modes all differ. A predictor trained with
    MSE converges to the sample mean, with MAE (L1) to the sample median, a winner-takes-all
    head with ``K = 3`` hypotheses to the modes, and a mixture density network (3 Gaussians,
    negative log-likelihood) puts its component means on the modes.
(b) **image** (:func:`run_image_demo`): one input, two equally likely targets (a bright disk on
    the left or on the right). MSE draws both disks at half intensity (a ghost); L1 has no
    unique answer (any value between the two targets costs the same) and keeps its
    initial grey; WTA with ``K = 2`` draws one sharp disk per hypothesis.
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
     "image": {"mse": {...}, "l1": {...}, "wta": {...}},
     "pose": {"mse_error_deg": float, "wta_error_deg": float, "wta_best_error_deg": float,
              "chance_error_deg": 45.0},
     "files": {"histogram": path, "image": path}}

``sample.modes`` are the modes of the generating mixture (its component means); ``wta`` and
``mdn`` are sorted ascending (``mdn_weights`` follow the ``mdn`` order).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losslab.losses.multi_hypothesis import winner_takes_all
from losslab.metrics.plausibility import psnr_plausible
from losslab.models import MultiHypothesisHead

MIXTURE_MODES = (-3.0, 0.5, 3.5)
MIXTURE_WEIGHTS = (0.45, 0.35, 0.2)
MIXTURE_STD = 0.4
WTA_EPSILON = 0.05


# ----------------------------------------------------------------------------- training helpers
def _wta(losses: Tensor, step: int, steps: int) -> Tensor:
    """Relaxed WTA for the first half of training, plain WTA afterwards."""
    if step < steps // 2:
        return winner_takes_all(losses, mode="relaxed", epsilon=WTA_EPSILON)
    return winner_takes_all(losses, mode="wta")


def _optimise(parameters: Any, loss_fn: Any, steps: int, lr: float) -> None:
    """Adam with a cosine learning-rate decay to zero (L1 then settles on the median)."""
    optimizer = torch.optim.Adam(parameters, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    for step in range(steps):
        optimizer.zero_grad()
        loss_fn(step).backward()
        optimizer.step()
        schedule.step()


# ----------------------------------------------------------------------------- (a) 1-D
def sample_mixture(count: int, generator: torch.Generator) -> Tensor:
    """``count`` samples ``(count,)`` of the 3-Gaussian mixture (see the module docstring)."""
    component = torch.multinomial(torch.tensor(MIXTURE_WEIGHTS), count, replacement=True,
                                  generator=generator)
    means = torch.tensor(MIXTURE_MODES)[component]
    return means + MIXTURE_STD * torch.randn(count, generator=generator)


def run_one_dimensional_demo(seed: int = 0, *, samples: int = 4000, steps: int = 300) -> dict:
    """Train MSE, MAE, WTA (K=3) and MDN (K=3) predictors on one constant input (part a).

    Returns ``{"sample": {...}, "predictions": {...}, "mdn_weights": [...], "targets": Tensor}``
    (see the module docstring); every predictor starts near the sample mean.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    targets = sample_mixture(samples, generator)
    mean, std = float(targets.mean()), float(targets.std())
    start = mean + std * torch.tensor([-0.5, 0.0, 0.5])

    mse = nn.Parameter(torch.tensor(mean + 0.5 * std))
    _optimise([mse], lambda step: (targets - mse).square().mean(), steps, lr=0.1)
    mae = nn.Parameter(torch.tensor(mean + 0.5 * std))
    _optimise([mae], lambda step: (targets - mae).abs().mean(), steps, lr=0.1)

    hypotheses = nn.Parameter(start.clone())
    _optimise(
        [hypotheses],
        lambda step: _wta((targets[:, None] - hypotheses[None]).square(), step, steps),
        steps, lr=0.1,
    )

    logits = nn.Parameter(torch.zeros(3))
    centres = nn.Parameter(start.clone())
    log_sigma = nn.Parameter(torch.full((3,), math.log(std / 2)))

    def nll(step: int) -> Tensor:
        log_weights = torch.log_softmax(logits, dim=0)
        sigma = log_sigma.exp()
        log_density = (
            -0.5 * ((targets[:, None] - centres[None]) / sigma).square()
            - log_sigma - 0.5 * math.log(2 * math.pi)
        )
        return -torch.logsumexp(log_weights + log_density, dim=1).mean()

    _optimise([logits, centres, log_sigma], nll, steps * 2, lr=0.05)
    order = torch.argsort(centres.detach())
    return {
        "sample": {
            "mean": mean,
            "median": float(targets.median()),
            "modes": list(MIXTURE_MODES),
        },
        "predictions": {
            "mse": float(mse.detach()),
            "mae": float(mae.detach()),
            "wta": sorted(float(v) for v in hypotheses.detach()),
            "mdn": [float(v) for v in centres.detach()[order]],
        },
        "mdn_weights": [float(v) for v in torch.softmax(logits.detach(), 0)[order]],
        "targets": targets,
    }


def plot_one_dimensional(result: dict, path: str | Path) -> Path:
    """Histogram of the 1-D targets with each loss's prediction marked (PNG)."""
    import matplotlib  # heavy (~0.5 s) and only needed to draw: imported when a figure is drawn

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    predictions = result["predictions"]
    figure, axes = plt.subplots(figsize=(7.5, 3.6), layout="constrained")
    axes.hist(result["targets"].numpy(), bins=80, color="0.8", density=True, label="targets")
    axes.axvline(predictions["mse"], color="tab:red", linewidth=2.5, label="MSE → mean")
    axes.axvline(predictions["mae"], color="tab:blue", linewidth=2.5, linestyle="--",
                 label="MAE → median")
    for i, value in enumerate(predictions["wta"]):
        axes.axvline(value, color="tab:green", linewidth=2, linestyle=":",
                     label="WTA (K=3) → modes" if i == 0 else None)
    for i, (value, weight) in enumerate(zip(predictions["mdn"], result["mdn_weights"], strict=True)):
        axes.plot([value], [0.02], marker="v", markersize=6 + 20 * weight, color="tab:purple",
                  linestyle="none", label="MDN means (size = weight)" if i == 0 else None)
    axes.set_xlabel("target value")
    axes.set_ylabel("density")
    axes.set_title("One input, many valid targets: which value does each loss predict?")
    axes.legend(fontsize=8, loc="upper right")
    figure.text(0.0, -0.02, "Look for: MSE lands between modes where no target lies; only WTA and "
                "the mixture head land on the modes.", fontsize=8, va="top")
    figure.savefig(target, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return target


# ----------------------------------------------------------------------------- (b) image
def _disk(size: int, centre_x: float, radius: float) -> Tensor:
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    distance = torch.sqrt((xs - centre_x) ** 2 + (ys - (size - 1) / 2) ** 2)
    return (radius + 0.5 - distance).clamp(0, 1)  # anti-aliased edge


def _fourier_input(size: int, frequencies: int = 4) -> Tensor:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    channels = [xs, ys]
    for k in range(frequencies):
        for grid in (xs, ys):
            channels += [torch.sin(math.pi * 2**k * grid), torch.cos(math.pi * 2**k * grid)]
    return torch.stack(channels)[None]  # (1, 2 + 4 * frequencies, size, size)


class _TinyConvNet(nn.Module):
    """Three convolutions plus a learnable per-pixel offset, sigmoid output in ``[0, 1]``.

    ``start`` ``(out_channels, S, S)`` initialises the offset so the untrained net outputs about
    ``start`` (a k-means++-style start from training targets); without it the offset is 0.
    """

    def __init__(self, in_channels: int, out_channels: int, start: Tensor, width: int = 16) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, out_channels, 1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)
        self.offset = nn.Parameter(torch.logit(start.clamp(0.1, 0.9)).reshape(out_channels,
                                                                               *start.shape[-2:]))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.body(x) + self.offset)


def run_image_demo(seed: int = 0, *, size: int = 24, steps: int = 150, batch: int = 8) -> dict:
    """One input, two equally likely targets (disk left / right); train MSE, L1, WTA K=2 (part b).

    Each step draws ``batch`` targets, each left or right with probability 1/2 (the input is
    always the same coordinate image), as a data loader over such pairs would.

    Every net starts k-means++-style from training targets (its output about equals the first
    drawn target; WTA's second hypothesis the target farthest from it), because with a single
    input nothing else breaks the symmetry between hypotheses (from identical starts both
    hypotheses stay on the mean). The demo therefore shows which answers are *stable*: MSE and
    L1 leave a valid answer for the mean / an arbitrary value, WTA keeps both answers.

    Returns ``{"targets": (2, 3, S, S), "outputs": {"mse": (1, 3, S, S), "l1": ..., "wta":
    (2, 3, S, S)}, "metrics": {method: {"left_centre": [...], "right_centre": [...],
    "error_to_nearest_target": [...]}}}``: intensities at the two disk centres and the MSE of
    each output (each hypothesis for WTA) to its nearest target.
    """
    quarter = size / 4
    left = _disk(size, quarter - 0.5, size / 6)
    right = _disk(size, 3 * quarter - 0.5, size / 6)
    targets = torch.stack([left, right])[:, None].expand(2, 3, size, size).contiguous()
    inputs = _fourier_input(size).expand(batch, -1, -1, -1)
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, 2, (steps, batch), generator=generator)  # same draws for every loss
    first = targets[draws[0, 0]]
    farthest = targets[(targets - first).square().sum(dim=(1, 2, 3)).argmax()]
    outputs: dict[str, Tensor] = {}
    for method in ("mse", "l1"):
        torch.manual_seed(seed)
        net = _TinyConvNet(inputs.shape[1], 3, first)
        distance = F.mse_loss if method == "mse" else F.l1_loss
        _optimise(net.parameters(),
                  lambda step, n=net, d=distance: d(n(inputs), targets[draws[step]]),
                  steps, lr=3e-2)
        with torch.no_grad():
            outputs[method] = net(inputs[:1])
    torch.manual_seed(seed)
    starts = torch.cat([first, farthest])  # (K * 3, S, S)
    head = MultiHypothesisHead(
        lambda out_channels: _TinyConvNet(inputs.shape[1], out_channels, starts), hypotheses=2
    )

    def wta_loss(step: int) -> Tensor:
        hypotheses = head(inputs)  # (B, K, 3, S, S)
        chosen = targets[draws[step]]
        per_hypothesis = (hypotheses - chosen[:, None]).square().mean(dim=(2, 3, 4))
        return _wta(per_hypothesis, step, steps)

    _optimise(head.parameters(), wta_loss, steps, lr=3e-2)
    with torch.no_grad():
        outputs["wta"] = head(inputs[:1])[0]
    centre_row = size // 2
    left_col, right_col = round(quarter - 0.5), round(3 * quarter - 0.5)
    metrics = {}
    for method, images in outputs.items():
        errors = (images[:, None] - targets[None]).square().mean(dim=(2, 3, 4)).amin(dim=1)
        metrics[method] = {
            "left_centre": [float(v) for v in images[:, 0, centre_row, left_col]],
            "right_centre": [float(v) for v in images[:, 0, centre_row, right_col]],
            "error_to_nearest_target": [float(v) for v in errors],
            # PSNR (dB) to the nearest of the two plausible targets; None = exactly one of them
            "psnr_plausible": [_finite(psnr_plausible(image[None], targets[None]))
                               for image in images],
        }
    return {"targets": targets, "outputs": outputs, "metrics": metrics}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def plot_image_demo(result: dict, path: str | Path) -> Path:
    """Side-by-side PNG: the two targets, then the MSE, L1 and both WTA outputs."""
    import matplotlib  # heavy (~0.5 s) and only needed to draw: imported when a figure is drawn

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    panels = [
        ("target A (p=1/2)", result["targets"][0]),
        ("target B (p=1/2)", result["targets"][1]),
        ("MSE output", result["outputs"]["mse"][0]),
        ("L1 output", result["outputs"]["l1"][0]),
        ("WTA hypothesis 1", result["outputs"]["wta"][0]),
        ("WTA hypothesis 2", result["outputs"]["wta"][1]),
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(2.0 * len(panels), 2.5),
                                layout="constrained")
    for ax, (title, image) in zip(axes, panels, strict=True):
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    figure.suptitle("One input, two equally likely targets: MSE draws a ghost of both; "
                    "WTA keeps each sharp", fontsize=10)
    figure.savefig(target, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return target


# ----------------------------------------------------------------------------- (c) pose
def render_ellipses(angles: Tensor, size: int = 24, axes: tuple[float, float] = (9.0, 3.0)) -> Tensor:
    """Anti-aliased ellipses ``(N, 1, size, size)`` in ``[0, 1]`` at orientations ``angles``.

    The image of ``theta`` equals the image of ``theta + pi`` (180 degree symmetry).
    """
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    cos, sin = torch.cos(angles)[:, None, None], torch.sin(angles)[:, None, None]
    along = xs * cos + ys * sin
    across = -xs * sin + ys * cos
    radius = torch.sqrt((along / axes[0]) ** 2 + (across / axes[1]) ** 2)
    return ((1 - radius) * axes[1] + 0.5).clamp(0, 1)[:, None]


def _pose_net(outputs: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 6 * 6, 64), nn.ReLU(), nn.Linear(64, outputs),
    )


def angular_error(predicted: Tensor, angles: Tensor) -> Tensor:
    """Degrees from ``predicted`` to the nearest valid answer, ``angles`` or ``angles + pi``."""
    difference = torch.remainder(predicted - angles, math.pi)  # the symmetry folds pi away
    return torch.rad2deg(torch.minimum(difference, math.pi - difference))


def run_pose_demo(seed: int = 0, *, train: int = 2048, test: int = 512, steps: int = 400,
                  batch: int = 128) -> dict:
    """Regress the orientation of a 180-degree-symmetric shape with MSE and WTA K=2 (part c).

    Returns mean angular errors in degrees on fresh test images: ``mse_error_deg`` (MSE on
    ``(cos, sin)``), ``wta_error_deg`` (mean over both hypotheses), ``wta_best_error_deg`` (the
    better hypothesis) and ``chance_error_deg`` (45, a random angle).
    """
    generator = torch.Generator().manual_seed(seed)
    # Every training orientation appears with both labels, theta and theta + pi: the two answers
    # are exactly equally likely for every image (no finite-sample imbalance to exploit).
    half = torch.rand(train // 2, generator=generator) * math.pi
    train_angles = torch.cat([half, half + math.pi])
    train = train_angles.shape[0]
    test_angles = torch.rand(test, generator=generator) * 2 * math.pi
    train_images, test_images = render_ellipses(train_angles), render_ellipses(test_angles)
    train_labels = torch.stack([torch.cos(train_angles), torch.sin(train_angles)], dim=1)

    def batches(step: int) -> tuple[Tensor, Tensor]:
        index = torch.randint(0, train, (batch,), generator=generator)
        return train_images[index], train_labels[index]

    torch.manual_seed(seed)
    mse_net = _pose_net(2)
    _optimise(mse_net.parameters(), lambda step: _mse_step(mse_net, batches(step)), steps, lr=3e-3)
    torch.manual_seed(seed)
    wta_net = _pose_net(4)

    def wta_step(step: int) -> Tensor:
        images, labels = batches(step)
        hypotheses = wta_net(images).view(-1, 2, 2)
        per_hypothesis = (hypotheses - labels[:, None]).square().sum(dim=2)
        return _wta(per_hypothesis, step, steps)

    _optimise(wta_net.parameters(), wta_step, steps, lr=3e-3)
    with torch.no_grad():
        single = mse_net(test_images)
        mse_error = angular_error(torch.atan2(single[:, 1], single[:, 0]), test_angles)
        pairs = wta_net(test_images).view(-1, 2, 2)
        wta_errors = angular_error(torch.atan2(pairs[..., 1], pairs[..., 0]), test_angles[:, None])
    shown = slice(0, 6)  # a few test images with their predicted directions, for the figure
    return {
        "mse_error_deg": float(mse_error.mean()),
        "wta_error_deg": float(wta_errors.mean()),
        "wta_best_error_deg": float(wta_errors.amin(dim=1).mean()),
        "chance_error_deg": 45.0,
        "mse_output_norm": float(single.norm(dim=1).mean()),
        "examples": {
            "images": test_images[shown, 0],
            "mse": single[shown],
            "wta": pairs[shown],
        },
    }


def plot_pose_demo(result: dict, path: str | Path) -> Path:
    """Draw test ellipses with MSE's predicted (cos, sin) and both WTA hypotheses as arrows.

    An arrow's length is the predicted vector's norm: MSE's arrows shrink towards zero (the mean
    of theta and theta + pi is the origin), WTA's two arrows point along the shape, both ways.
    """
    import matplotlib  # heavy (~0.5 s) and only needed to draw: imported when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    examples = result["examples"]
    count = examples["images"].shape[0]
    size = examples["images"].shape[-1]
    centre = (size - 1) / 2
    scale = size * 0.45
    figure, axes = plt.subplots(1, count, figsize=(2.0 * count, 2.5))
    for index, axis in enumerate(axes):
        axis.imshow(examples["images"][index].numpy(), cmap="gray", vmin=0, vmax=1)
        vectors = [("MSE", examples["mse"][index], "tab:red")]
        vectors += [(f"WTA {k + 1}", examples["wta"][index, k], "tab:green") for k in range(2)]
        for label, (cos, sin), colour in vectors:
            axis.arrow(centre, centre, float(cos) * scale, float(sin) * scale, color=colour,
                       width=0.4, head_width=1.6, length_includes_head=True,
                       label=label if index == 0 else None)
        axis.set_axis_off()
    axes[0].legend(loc="upper left", fontsize=7, bbox_to_anchor=(0, -0.02), ncol=3)
    figure.suptitle(
        f"Orientation of a 180°-symmetric shape: MSE error {result['mse_error_deg']:.1f}° "
        f"(chance 45°), WTA {result['wta_error_deg']:.1f}°", fontsize=10,
    )
    figure.text(0.01, -0.04, "Look for: MSE's arrows (red) are short and point anywhere, the average "
                "of two opposite answers; WTA's two arrows (green) lie along the shape.", fontsize=8)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return target


def _mse_step(net: nn.Module, pair: tuple[Tensor, Tensor]) -> Tensor:
    images, labels = pair
    return F.mse_loss(net(images), labels)


# ----------------------------------------------------------------------------- all together
def run_mean_demo(out_dir: str | Path | None = None, seed: int = 0) -> dict:
    """Run parts (a), (b) and (c) (about 10-20 s on one CPU core); write figures to ``out_dir``.

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
        "image": image["metrics"],
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
