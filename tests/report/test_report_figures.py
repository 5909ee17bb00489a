"""Figure helpers: where the detail crop goes, how inputs are displayed, best hypotheses."""

from __future__ import annotations

import torch

from losslab.report.figures import best_of, choose_crop, displayable, run_colours


def test_crop_lands_where_the_runs_disagree() -> None:
    target = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    good = target.clone()
    bad = target.clone()
    bad[:, 20:26, 5:11] = 1 - bad[:, 20:26, 5:11]  # the only disagreement
    y, x = choose_crop([good, bad], target, 6)
    assert (y, x) == (20, 5)


def test_crop_with_equal_errors_prefers_detail() -> None:
    target = torch.zeros(3, 24, 24)
    target[:, 2:8, 14:20] = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(1))
    outputs = [target + 0.1, target + 0.1]  # identical runs: variance 0 everywhere
    y, x = choose_crop(outputs, target, 6)
    assert 0 <= y <= 8 and 10 <= x <= 20  # the window overlaps the textured patch


def test_displayable_handles_every_input_kind() -> None:
    luma = torch.rand(2, 1, 8, 8)
    shown = displayable(luma, (8, 8))
    assert shown.shape == (2, 3, 8, 8) and torch.equal(shown[:, 0], shown[:, 2])
    low = torch.rand(2, 3, 4, 4)
    up = displayable(low, (16, 16))
    assert up.shape == (2, 3, 16, 16) and torch.equal(up[:, :, :4, :4][:, :, ::4, ::4],
                                                      low[:, :, :1, :1])
    stacked = torch.rand(2, 6, 8, 8)  # two frames on channels: the last frame is shown
    assert torch.equal(displayable(stacked, (8, 8)), stacked[:, 3:])
    clip = torch.rand(2, 3, 3, 8, 8)
    assert torch.equal(displayable(clip, (8, 8)), clip[:, -1])


def test_best_of_picks_the_closest_hypothesis_per_image() -> None:
    targets = torch.rand(3, 3, 4, 4)
    far = targets + 0.5
    outputs = torch.stack([torch.stack([far[0], targets[0]]), torch.stack([targets[1], far[1]]),
                           torch.stack([far[2], targets[2] + 0.01])])
    best = best_of(outputs, targets)
    assert torch.allclose(best[:2], targets[:2]) and torch.allclose(best[2], targets[2] + 0.01)


def test_run_colours_are_distinct() -> None:
    assert len(set(run_colours(10))) == 10
    assert len(set(run_colours(14))) == 14
