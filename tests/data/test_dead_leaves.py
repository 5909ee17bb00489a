"""Tests of the ``dead_leaves`` dataset: radius law, occlusion, luma-first colours, determinism."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from losslab.data import build_datasets
from losslab.data.dead_leaves import (
    Leaves,
    luma_first_colours,
    mean_disk_area,
    power_law_radii,
    render_leaves,
)

BT601 = np.array([0.299, 0.587, 0.114])


def test_items_shape_range_and_determinism() -> None:
    train, val = build_datasets("dead_leaves", crop_size=32, seed=5, train_size=6, val_size=3)
    again, _ = build_datasets("dead_leaves", crop_size=32, seed=5, train_size=6, val_size=3)
    other, _ = build_datasets("dead_leaves", crop_size=32, seed=6, train_size=6, val_size=3)
    assert (len(train), len(val)) == (6, 3)
    for index in range(6):
        item = train[index]
        assert item.shape == (3, 32, 32) and item.dtype == torch.float32
        assert float(item.min()) >= 0.0 and float(item.max()) <= 1.0
        assert torch.equal(item, again[index])
        assert not torch.equal(item, other[index])
    assert not torch.equal(train[0], train[1])
    assert not torch.equal(train[0], val[0])  # separate train and val streams


def test_radii_follow_the_inverse_cube_law() -> None:
    rmin, rmax = 1.0, 32.0
    radii = power_law_radii(np.random.default_rng(0), 40_000, rmin, rmax)
    assert radii.min() >= rmin and radii.max() <= rmax
    # Empirical CDF against the analytic one, (rmin^-2 - r^-2) / (rmin^-2 - rmax^-2).
    for r in (1.2, 1.5, 2.0, 4.0, 8.0, 16.0):
        analytic = (rmin**-2 - r**-2) / (rmin**-2 - rmax**-2)
        assert abs(float(np.mean(radii <= r)) - analytic) < 0.01
    # Many more small disks than large: each octave holds 4x the disks of the next one.
    octave = [np.sum((radii >= 2**k) & (radii < 2 ** (k + 1))) for k in range(3)]
    assert 3.6 < octave[0] / octave[1] < 4.4 and 3.3 < octave[1] / octave[2] < 4.7


def test_mean_disk_area_matches_monte_carlo() -> None:
    radii = power_law_radii(np.random.default_rng(1), 200_000, 2.0, 32.0)
    assert abs(float(np.mean(math.pi * radii**2)) / mean_disk_area(2.0, 32.0) - 1) < 0.03


def test_render_paints_later_disks_on_top() -> None:
    leaves = Leaves(
        centres=np.array([[8.0, 8.0], [8.0, 12.0]]),
        radii=np.array([5.0, 3.0]),
        colours=np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
        background=np.array([0.2, 0.2, 0.2]),
    )
    image = render_leaves(leaves, 16)
    # Brute-force reference: each pixel centre takes the last disk containing it.
    for i in range(16):
        for j in range(16):
            colour = leaves.background
            for (cy, cx), radius, disk in zip(leaves.centres, leaves.radii, leaves.colours,
                                              strict=True):
                if (i + 0.5 - cy) ** 2 + (j + 0.5 - cx) ** 2 <= radius**2:
                    colour = disk
            assert torch.allclose(image[:, i, j], torch.tensor(colour, dtype=torch.float32))
    assert torch.equal(image[:, 7, 11], torch.tensor([0.0, 0.0, 1.0]))  # overlap: blue on top


def test_default_images_are_mostly_covered_and_fast() -> None:
    train, _ = build_datasets("dead_leaves", crop_size=64, seed=0, train_size=20)
    assert 200 <= train.disks <= 400
    leaves = train.leaves(0)
    background = torch.tensor(leaves.background, dtype=torch.float32)[:, None, None]
    uncovered = float((train[0] == background).all(dim=0).float().mean())
    assert uncovered < 0.1
    start = time.perf_counter()
    for index in range(20):
        train[index]
    assert (time.perf_counter() - start) / 20 < 0.03  # a few ms per 64x64 image


def test_colour_given_luma_draws_luma_first_with_symmetric_chroma() -> None:
    rng = np.random.default_rng(2)
    rgb, luma = luma_first_colours(rng, 60_000)
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    np.testing.assert_allclose(rgb @ BT601, luma, atol=1e-9)
    assert np.histogram(luma, bins=10, range=(0, 1))[0].min() > 5_000  # luma ~ uniform
    chroma = rgb - luma[:, None]  # offset from the grey of the same luma
    for low in np.arange(0.0, 1.0, 0.2):
        in_bin = (luma >= low) & (luma < low + 0.2)
        # Colour given grey is ambiguous: the conditional mean is grey...
        assert np.abs(chroma[in_bin].mean(axis=0)).max() < 0.01
    mid = (luma > 0.4) & (luma < 0.6)
    # ...while individual colours are far from grey.
    assert np.abs(chroma[mid]).max(axis=1).mean() > 0.1
    # The dataset option uses these colours for the disks and the background.
    train, _ = build_datasets("dead_leaves", crop_size=32, seed=0, train_size=2,
                              colour_given_luma=True)
    colours = train.leaves(0).colours
    assert colours.shape[1] == 3 and np.all((colours >= 0) & (colours <= 1))
    image = train[0].numpy()
    image_luma = np.tensordot(BT601, image, axes=1)
    palette_luma = colours @ BT601
    # Every pixel's luma is one of the disk (or background) lumas.
    known = np.concatenate([palette_luma, [train.leaves(0).background @ BT601]])
    assert np.abs(image_luma.reshape(-1, 1) - known[None, :]).min(axis=1).max() < 1e-5


def test_invalid_radius_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="rmin <= rmax"):
        build_datasets("dead_leaves", crop_size=32, rmin=8, rmax=4)
    with pytest.raises(ValueError, match="disks must be >= 1"):
        build_datasets("dead_leaves", crop_size=32, disks=0)
