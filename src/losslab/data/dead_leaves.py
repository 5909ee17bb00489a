"""Dead-leaves images: coloured disks dropped on top of each other (later disks occlude).

The model has scale-invariant statistics close to natural images when the radii follow
``p(r) ∝ r^-3`` on ``[rmin, rmax]`` (sampled exactly by inverting the CDF,
``r = (rmin^-2 - u (rmin^-2 - rmax^-2))^(-1/2)``, ``u ~ U[0, 1)``). Centres are uniform
over the image; a random background colour shows where no disk lands.

Colours
-------
- default: each disk's RGB is uniform in the cube ``[0, 1]^3``;
- ``colour_given_luma=True``: the luma ``Y`` (BT.601) is drawn first, ``Y ~ U[0, 1]``, then a
  chroma consistent with it: ``rgb = Y (1, 1, 1) + t d`` with ``d`` a unit direction of
  constant luma (``w · d = 0``) at a uniform angle and ``t = sqrt(u) * t_max``, where
  ``t_max`` is the largest step keeping both ``Y + t d`` and ``Y - t d`` inside the cube.
  Every colour therefore has an equally likely mirror colour ``Y (1, 1, 1) - t d`` of the
  same luma, so given the grey image the colour is exactly ambiguous and its conditional mean
  is grey (what an MSE colouriser regresses to).

Every item is a pure function of ``(seed, split, index)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from losslab.core.color import luma_weights
from losslab.data._common import (
    DatasetPair,
    check_index,
    check_positive_int,
    item_rng,
    register_dataset,
)

#: Expected number of disks covering a pixel when ``disks`` is not given.
DEFAULT_COVERAGE = 5.0


@dataclass(frozen=True)
class Leaves:
    """The disks of one image, bottom to top: centres ``(D, 2)`` as ``(y, x)`` in pixels,
    radii ``(D,)`` in pixels, colours ``(D, 3)`` RGB in ``[0, 1]``, background ``(3,)``."""

    centres: np.ndarray
    radii: np.ndarray
    colours: np.ndarray
    background: np.ndarray


def power_law_radii(
    rng: np.random.Generator, count: int, rmin: float, rmax: float, exponent: float = 3.0
) -> np.ndarray:
    """``count`` radii with density ``∝ r^-exponent`` on ``[rmin, rmax]`` (inverse CDF).

    ``exponent`` must differ from 1 (for ``exponent = 3``, the dead-leaves law, the CDF is
    ``(rmin^-2 - r^-2) / (rmin^-2 - rmax^-2)``).
    """
    if not 0 < rmin <= rmax:
        raise ValueError(f"radii need 0 < rmin <= rmax; got rmin={rmin}, rmax={rmax}.")
    if exponent == 1.0:
        raise ValueError("exponent=1 is not supported (log-uniform); use e.g. 3.")
    power = 1.0 - exponent
    low, high = rmin**power, rmax**power
    u = rng.random(count)
    return (low + u * (high - low)) ** (1.0 / power)


def mean_disk_area(rmin: float, rmax: float) -> float:
    """Expected area ``E[π r²]`` in pixels of a disk with ``p(r) ∝ r^-3`` on ``[rmin, rmax]``."""
    if rmin == rmax:
        return math.pi * rmin**2
    normaliser = 2.0 / (rmin**-2 - rmax**-2)
    return math.pi * normaliser * math.log(rmax / rmin)


def luma_first_colours(
    rng: np.random.Generator, count: int, luma: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Colours whose BT.601 luma is drawn first: returns ``(rgb (count, 3), luma (count,))``.

    See the module docstring: ``rgb = Y + t d`` with ``d`` of zero luma, symmetric in ``±d``.
    ``luma`` may be given (values in ``[0, 1]``) instead of drawn uniformly.
    """
    weights = np.asarray(luma_weights("bt601"))
    # Orthonormal basis of the plane of constant luma {d : w . d = 0}.
    basis = np.linalg.svd(weights[None, :])[2][1:]  # (2, 3), rows orthogonal to w
    y = rng.random(count) if luma is None else np.asarray(luma, dtype=np.float64)
    angle = rng.random(count) * 2.0 * math.pi
    direction = np.cos(angle)[:, None] * basis[0] + np.sin(angle)[:, None] * basis[1]
    # Largest t with 0 <= y + t d <= 1 and 0 <= y - t d <= 1 (per channel: |d| t <= min(y, 1-y)).
    limit = np.minimum(y, 1.0 - y)[:, None] / np.maximum(np.abs(direction), 1e-12)
    t_max = limit.min(axis=1)
    t = np.sqrt(rng.random(count)) * t_max
    rgb = y[:, None] + t[:, None] * direction
    return np.clip(rgb, 0.0, 1.0), y


def sample_leaves(
    rng: np.random.Generator,
    size: int,
    *,
    disks: int,
    rmin: float,
    rmax: float,
    colour_given_luma: bool = False,
) -> Leaves:
    """Draw the disks of one ``size x size`` dead-leaves image from ``rng``."""
    radii = power_law_radii(rng, disks, rmin, rmax)
    centres = rng.random((disks, 2)) * size
    if colour_given_luma:
        colours, _ = luma_first_colours(rng, disks + 1)
    else:
        colours = rng.random((disks + 1, 3))
    return Leaves(centres, radii, colours[1:], colours[0])


def render_leaves(leaves: Leaves, size: int) -> Tensor:
    """Paint ``leaves`` bottom to top: ``(3, size, size)`` float32 in ``[0, 1]``.

    A pixel (centre at ``(i + 0.5, j + 0.5)``) takes the colour of the last disk that covers
    it, or the background. Each disk only touches its bounding box, so the cost grows with
    the number of disks, not with ``disks x size²``.
    """
    canvas = np.empty((size, size, 3), dtype=np.float32)
    canvas[:] = leaves.background
    coords = np.arange(size, dtype=np.float64) + 0.5
    for (cy, cx), radius, colour in zip(leaves.centres, leaves.radii, leaves.colours, strict=True):
        y0, y1 = max(0, math.floor(cy - radius)), min(size, math.ceil(cy + radius) + 1)
        x0, x1 = max(0, math.floor(cx - radius)), min(size, math.ceil(cx + radius) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        dy = (coords[y0:y1] - cy) ** 2
        dx = (coords[x0:x1] - cx) ** 2
        inside = dy[:, None] + dx[None, :] <= radius * radius
        canvas[y0:y1, x0:x1][inside] = colour
    return torch.from_numpy(canvas).permute(2, 0, 1).contiguous()


class DeadLeavesDataset(Dataset):
    """Generated dead-leaves images ``(3, size, size)`` float32 in ``[0, 1]``.

    Item ``i`` is drawn from ``item_rng(seed, split, i)`` only (reproducible in any order,
    in any worker). ``leaves(i)`` returns the disks of item ``i`` for inspection.

    Args:
        length: number of items.
        size: image side in pixels.
        seed: base seed.
        split: ``'train'`` or ``'val'`` (different streams for the same seed).
        disks: disks per image.
        rmin, rmax: radius range in pixels.
        colour_given_luma: draw luma first, then a symmetric random chroma (module docstring).
    """

    def __init__(
        self,
        length: int,
        size: int,
        *,
        seed: int = 0,
        split: str = "train",
        disks: int,
        rmin: float,
        rmax: float,
        colour_given_luma: bool = False,
    ) -> None:
        self.length = length
        self.size = size
        self.seed = seed
        self.split = split
        self.disks = disks
        self.rmin = rmin
        self.rmax = rmax
        self.colour_given_luma = colour_given_luma

    def __len__(self) -> int:
        return self.length

    def leaves(self, index: int) -> Leaves:
        """The disks (centres, radii, colours, background) of item ``index``."""
        rng = item_rng(self.seed, self.split, check_index(index, self.length))
        return sample_leaves(
            rng,
            self.size,
            disks=self.disks,
            rmin=self.rmin,
            rmax=self.rmax,
            colour_given_luma=self.colour_given_luma,
        )

    def __getitem__(self, index: int) -> Tensor:
        return render_leaves(self.leaves(index), self.size)


@register_dataset("dead_leaves")
def build_dead_leaves(
    *,
    crop_size: int,
    seed: int = 0,
    train_size: int = 2048,
    val_size: int = 16,
    rmin: float | None = None,
    rmax: float | None = None,
    disks: int | None = None,
    colour_given_luma: bool = False,
) -> DatasetPair:
    """Generated dead-leaves images (occluding disks, p(r) ∝ r^-3), train and val streams.

    Args:
        crop_size: image side in pixels.
        seed: base seed; train and val use different streams of it.
        train_size, val_size: number of items of each split.
        rmin: smallest radius in pixels (default ``max(1, crop_size / 32)``).
        rmax: largest radius in pixels (default ``crop_size / 2``).
        disks: disks per image (default: enough for each pixel to be covered
            ``DEFAULT_COVERAGE = 5`` times on average, about 290 whatever the size).
        colour_given_luma: luma first, then a random chroma of that luma (ambiguous colour).

    Returns:
        ``(train, val)`` :class:`DeadLeavesDataset` of ``(3, crop, crop)`` float32 in ``[0, 1]``.
    """
    crop_size = check_positive_int("crop_size", crop_size)
    train_size = check_positive_int("train_size", train_size)
    val_size = check_positive_int("val_size", val_size, minimum=0)
    rmin = max(1.0, crop_size / 32) if rmin is None else float(rmin)
    rmax = max(rmin, crop_size / 2) if rmax is None else float(rmax)
    if not 0 < rmin <= rmax:
        raise ValueError(f"dead_leaves needs 0 < rmin <= rmax; got rmin={rmin}, rmax={rmax}.")
    if disks is None:
        disks = math.ceil(DEFAULT_COVERAGE * crop_size**2 / mean_disk_area(rmin, rmax))
    disks = check_positive_int("disks", disks)
    datasets = tuple(
        DeadLeavesDataset(
            length,
            crop_size,
            seed=seed,
            split=split,
            disks=disks,
            rmin=rmin,
            rmax=rmax,
            colour_given_luma=bool(colour_given_luma),
        )
        for split, length in (("train", train_size), ("val", val_size))
    )
    return datasets[0], datasets[1]
