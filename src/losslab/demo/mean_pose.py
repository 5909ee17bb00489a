"""Part (c) of ``losslab demo mean``: the orientation of a 180-degree-symmetric shape.

See :mod:`losslab.demo.mean` for the whole demo and its JSON.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losslab.demo._training import optimise as _optimise
from losslab.demo._training import wta as _wta


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

