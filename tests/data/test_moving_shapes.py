"""Tests of the ``moving_shapes`` video dataset: clip layout, ambiguous futures, ghost mean."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.measure import label

from losslab.data import build_datasets


def _centroid(frame: torch.Tensor) -> np.ndarray:
    mask = frame.amax(dim=0) > 0
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return np.array([ys.float().mean().item(), xs.float().mean().item()])


def test_clip_shape_range_and_determinism() -> None:
    train, val = build_datasets("moving_shapes", crop_size=32, seed=1, train_size=5, val_size=2)
    again, _ = build_datasets("moving_shapes", crop_size=32, seed=1, train_size=5, val_size=2)
    clip = train[0]
    assert clip.shape == (4, 3, 32, 32) and clip.dtype == torch.float32
    assert float(clip.min()) >= 0.0 and float(clip.max()) <= 1.0
    for index in range(5):
        assert torch.equal(train[index], again[index])
    assert not torch.equal(train[0], val[0])


def test_static_past_then_one_step_of_speed() -> None:
    train, _ = build_datasets("moving_shapes", crop_size=64, seed=0, train_size=30)
    steps = {0: (0, 1), 1: (1, 0), 2: (0, -1), 3: (-1, 0)}  # right, down, left, up
    for index in range(30):
        clip = train[index]
        assert torch.equal(clip[0], clip[1]) and torch.equal(clip[1], clip[2])
        # The whole shape is visible in every frame (same pixel count).
        counts = {int((frame.amax(dim=0) > 0).sum()) for frame in clip}
        assert len(counts) == 1
        move = _centroid(clip[3]) - _centroid(clip[2])
        direction = train.future_direction(index)
        np.testing.assert_allclose(move, np.array(steps[direction]) * train.speed, atol=1e-4)


def test_future_directions_are_uniform() -> None:
    train, _ = build_datasets("moving_shapes", crop_size=32, seed=0, train_size=800)
    counts = np.bincount([train.future_direction(i) for i in range(800)], minlength=4)
    assert counts.min() > 150 and counts.max() < 250  # 200 each expected, sd ~12


def test_futures_hold_every_possible_last_frame() -> None:
    train, _ = build_datasets("moving_shapes", crop_size=64, seed=2, train_size=10)
    for index in range(10):
        futures = train.futures(index)
        assert futures.shape == (4, 3, 64, 64)
        assert torch.equal(futures[train.future_direction(index)], train[index][-1])
        flat = futures.flatten(1)
        assert all(not torch.equal(flat[a], flat[b]) for a in range(4) for b in range(a))


@pytest.mark.parametrize(("directions", "speed"), [(4, None), (2, None), (8, 16)])
def test_mean_of_futures_is_a_ghost_of_faint_copies(directions: int, speed: int | None) -> None:
    options = {"directions": directions} if speed is None else {"directions": directions,
                                                                "speed": speed}
    train, _ = build_datasets("moving_shapes", crop_size=64, seed=3, train_size=6, **options)
    for index in range(6):
        clip = train[index]
        mean = train.futures(index).mean(dim=0)
        # Each copy has 1/directions of the shape's intensity (the copies do not overlap).
        torch.testing.assert_close(mean.amax(), clip[-1].amax() / directions)
        assert label((mean.amax(dim=0) > 0).numpy(), connectivity=1).max() == directions


def test_straight_past_motion_has_constant_velocity() -> None:
    train, _ = build_datasets("moving_shapes", crop_size=64, seed=4, train_size=10,
                              past_motion="straight", shapes="square")
    for index in range(10):
        clip = train[index]
        first, second = (_centroid(clip[1]) - _centroid(clip[0]),
                         _centroid(clip[2]) - _centroid(clip[1]))
        np.testing.assert_allclose(first, second, atol=1e-4)
        assert np.linalg.norm(first) == pytest.approx(train.speed, abs=1.0)


def test_too_small_frames_and_bad_options_raise() -> None:
    with pytest.raises(ValueError, match=r"crop_size=16 is too small.*crop_size >= 18"):
        build_datasets("moving_shapes", crop_size=16, shape_size=4, speed=7)
    with pytest.raises(ValueError, match="shapes must be one of"):
        build_datasets("moving_shapes", crop_size=32, shapes=["triangle"])
    with pytest.raises(ValueError, match="frames must be >= 2"):
        build_datasets("moving_shapes", crop_size=32, frames=1)
