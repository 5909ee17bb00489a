"""Moving-shapes video with an ambiguous future, for next-frame prediction.

A clip is ``frames`` frames ``(T, 3, crop, crop)`` float32 in ``[0, 1]``: a square or disk of a
random bright colour (largest channel 1) on a black background (``background=0``). The first
``T - 1`` frames are the past, the last frame is the future:

- ``past_motion='static'`` (default): the shape stays still during the past frames;
- ``past_motion='straight'``: it moves ``speed`` pixels per frame in a random direction.

In the last frame it moves ``speed`` pixels in one of ``directions`` equally spaced directions
(angle ``2πk / directions``, ``k = 0`` is to the right, rounded to whole pixels), ``k`` drawn
uniformly. The past frames carry no information about ``k``, so all ``directions`` futures are
equally likely; :meth:`MovingShapesDataset.futures` returns them all. Their mean (what an MSE
predictor converges to) is a ghost of ``directions`` faint copies, each at ``1 / directions`` of
the shape's intensity when the copies do not overlap — true for the defaults (``speed`` exceeds
the shape size; with more directions keep ``2 speed sin(π / directions)`` above
``shape_size * sqrt(2)``).

Every clip is a pure function of ``(seed, split, index)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from losslab.core.validation import check_choice
from losslab.data._common import (
    DatasetPair,
    check_index,
    check_positive_int,
    item_rng,
    register_dataset,
)

ShapeKind = Literal["square", "disk"]
PastMotion = Literal["static", "straight"]
SHAPE_KINDS: tuple[str, ...] = ("square", "disk")


@dataclass(frozen=True)
class ShapeClip:
    """The parameters of one clip: shape kind, colour ``(3,)``, top-left positions ``(T, 2)``
    as ``(y, x)`` of every frame, the chosen future direction and the top-left position of
    every possible future ``(directions, 2)``."""

    kind: str
    colour: np.ndarray
    positions: np.ndarray
    direction: int
    future_positions: np.ndarray


def direction_offsets(directions: int, speed: int) -> np.ndarray:
    """Whole-pixel ``(dy, dx)`` steps of length ``speed`` at angles ``2πk / directions``."""
    angles = 2.0 * math.pi * np.arange(directions) / directions
    offsets = np.stack([np.sin(angles), np.cos(angles)], axis=1) * speed
    return np.rint(offsets).astype(np.int64)


def shape_stamp(kind: str, size: int) -> Tensor:
    """Boolean ``(size, size)`` mask of a square or a disk inscribed in the square."""
    if kind == "square":
        return torch.ones(size, size, dtype=torch.bool)
    centre = size / 2.0
    coords = torch.arange(size, dtype=torch.float32) + 0.5 - centre
    return coords[:, None].square() + coords[None, :].square() <= centre**2


class MovingShapesDataset(Dataset):
    """Clips ``(frames, 3, size, size)`` float32 in ``[0, 1]`` of a shape with a random future.

    Args:
        length: number of clips.
        size: frame side in pixels.
        seed: base seed.
        split: ``'train'`` or ``'val'``.
        frames: clip length ``T >= 2`` (``T - 1`` past frames and one future frame).
        directions: number of equally likely future directions.
        speed: step length in pixels of the future move (and of the straight past motion).
        shape_size: side of the square / diameter of the disk in pixels.
        shapes: kinds to draw from (``'square'``, ``'disk'``).
        past_motion: ``'static'`` or ``'straight'``.
        background: grey level of the background in ``[0, 1]``.
    """

    def __init__(
        self,
        length: int,
        size: int,
        *,
        seed: int = 0,
        split: str = "train",
        frames: int = 4,
        directions: int = 4,
        speed: int,
        shape_size: int,
        shapes: Sequence[str] = SHAPE_KINDS,
        past_motion: PastMotion = "static",
        background: float = 0.0,
    ) -> None:
        self.length = length
        self.size = size
        self.seed = seed
        self.split = split
        self.frames = frames
        self.directions = directions
        self.speed = speed
        self.shape_size = shape_size
        self.shapes = tuple(shapes)
        self.past_motion = past_motion
        self.background = float(background)
        self.offsets = direction_offsets(directions, speed)
        self._stamps = {kind: shape_stamp(kind, shape_size) for kind in SHAPE_KINDS}

    def __len__(self) -> int:
        return self.length

    def clip_parameters(self, index: int) -> ShapeClip:
        """Shape, colour, positions and possible futures of clip ``index``."""
        rng = item_rng(self.seed, self.split, check_index(index, self.length))
        kind = self.shapes[int(rng.integers(0, len(self.shapes)))]
        colour = rng.uniform(0.15, 1.0, size=3)
        colour /= colour.max()
        past_steps = self.frames - 2  # moves between the T - 1 past frames
        if self.past_motion == "straight":
            angle = rng.random() * 2.0 * math.pi
            velocity = np.rint(self.speed * np.array([math.sin(angle), math.cos(angle)]))
        else:
            velocity = np.zeros(2)
        # Offsets of every past frame relative to the last past frame.
        past = -velocity[None, :] * np.arange(past_steps, -1, -1)[:, None]
        every = np.concatenate([past, self.offsets], axis=0)
        low = -every.min(axis=0)
        high = self.size - self.shape_size - every.max(axis=0)
        if np.any(high < low):
            raise ValueError(
                f"moving shapes do not fit: frames of {self.size} pixels cannot hold a "
                f"{self.shape_size}-pixel shape moving {self.speed} pixels per frame over "
                f"{self.frames} frames. Use a larger crop_size or a smaller speed/shape_size."
            )
        anchor = np.array([rng.integers(low[0], high[0] + 1), rng.integers(low[1], high[1] + 1)])
        direction = int(rng.integers(0, self.directions))
        positions = np.concatenate([anchor + past, (anchor + self.offsets[direction])[None]])
        futures = anchor[None, :] + self.offsets
        return ShapeClip(kind, colour, positions.astype(np.int64), direction,
                         futures.astype(np.int64))

    def _frame(self, kind: str, colour: Tensor, position: np.ndarray) -> Tensor:
        frame = torch.full((3, self.size, self.size), self.background)
        top, left = int(position[0]), int(position[1])
        window = frame[:, top : top + self.shape_size, left : left + self.shape_size]
        window[:, self._stamps[kind]] = colour[:, None]
        return frame

    def __getitem__(self, index: int) -> Tensor:
        clip = self.clip_parameters(index)
        colour = torch.from_numpy(clip.colour).float()
        return torch.stack([self._frame(clip.kind, colour, p) for p in clip.positions])

    def futures(self, index: int) -> Tensor:
        """Every possible last frame of clip ``index``: ``(directions, 3, size, size)``.

        Row ``k`` is the future after a move in direction ``k``; the clip's own last frame is
        row ``clip_parameters(index).direction``. Their mean is the MSE-optimal prediction.
        """
        clip = self.clip_parameters(index)
        colour = torch.from_numpy(clip.colour).float()
        return torch.stack([self._frame(clip.kind, colour, p) for p in clip.future_positions])

    def future_direction(self, index: int) -> int:
        """The direction index ``k`` taken by the last frame of clip ``index``."""
        return self.clip_parameters(index).direction


@register_dataset("moving_shapes")
def build_moving_shapes(
    *,
    crop_size: int,
    seed: int = 0,
    train_size: int = 2048,
    val_size: int = 16,
    frames: int = 4,
    directions: int = 4,
    speed: int | None = None,
    shape_size: int | None = None,
    shapes: Sequence[str] = SHAPE_KINDS,
    past_motion: PastMotion = "static",
    background: float = 0.0,
) -> DatasetPair:
    """A shape that moves to one of ``directions`` equally likely places in the last frame.

    Args:
        crop_size: frame side in pixels.
        seed: base seed; train and val use different streams of it.
        train_size, val_size: number of clips of each split.
        frames: clip length ``T`` (default 4: three past frames and one future frame).
        directions: equally likely future directions (default 4: right, down, left, up).
        speed: future step in pixels (default ``shape_size + max(1, crop_size // 32)``).
        shape_size: shape side/diameter in pixels (default ``max(2, crop_size // 8)``).
        shapes: kinds to draw from, ``'square'`` and/or ``'disk'``.
        past_motion: ``'static'`` (default) or ``'straight'`` (constant velocity in the past).
        background: background grey level in ``[0, 1]`` (default 0, black).

    Returns:
        ``(train, val)`` :class:`MovingShapesDataset` of clips ``(T, 3, crop, crop)``.
    """
    crop_size = check_positive_int("crop_size", crop_size)
    train_size = check_positive_int("train_size", train_size)
    val_size = check_positive_int("val_size", val_size, minimum=0)
    frames = check_positive_int("frames", frames, minimum=2)
    directions = check_positive_int("directions", directions)
    shape_size = check_positive_int(
        "shape_size", max(2, crop_size // 8) if shape_size is None else shape_size
    )
    speed = check_positive_int(
        "speed", shape_size + max(1, crop_size // 32) if speed is None else speed
    )
    shapes = (shapes,) if isinstance(shapes, str) else tuple(shapes)
    if not shapes:
        raise ValueError(f"shapes must name at least one of {SHAPE_KINDS}.")
    for kind in shapes:
        check_choice("shapes", kind, SHAPE_KINDS)
    check_choice("past_motion", past_motion, ("static", "straight"))
    if not 0.0 <= background <= 1.0:
        raise ValueError(f"background must be a grey level in [0, 1]; got {background!r}.")
    past_span = (frames - 2) * speed if past_motion == "straight" else 0
    needed = shape_size + max(past_span, speed) + speed
    if needed > crop_size:
        raise ValueError(
            f"crop_size={crop_size} is too small for moving shapes of shape_size={shape_size} "
            f"and speed={speed} over frames={frames} (past_motion={past_motion!r}): frames of at "
            f"least {needed} pixels are needed. Use crop_size >= {needed} or a smaller speed or "
            "shape_size."
        )
    datasets = tuple(
        MovingShapesDataset(
            length,
            crop_size,
            seed=seed,
            split=split,
            frames=frames,
            directions=directions,
            speed=speed,
            shape_size=shape_size,
            shapes=shapes,
            past_motion=past_motion,
            background=background,
        )
        for split, length in (("train", train_size), ("val", val_size))
    )
    return datasets[0], datasets[1]
