"""psnr_plausible: PSNR to the nearest plausible answer, best hypothesis, per hypothesis."""

from __future__ import annotations

import math

import pytest
import torch

from losslab.data import build_datasets
from losslab.metrics import (
    best_plausible_hypothesis,
    nearest_plausible,
    plausible_per_hypothesis,
    psnr_plausible,
)
from losslab.metrics import pooled_psnr as psnr


@pytest.fixture(scope="module")
def shapes() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(last past frame, actual future, every future)`` of 8 moving-shape clips."""
    _, val = build_datasets("moving_shapes", crop_size=48, frames=2, shape_size=8, speed=10,
                            val_size=8)
    clips = torch.stack([val[i] for i in range(8)])
    futures = torch.stack([val.futures(i) for i in range(8)])
    return clips[:, 0], clips[:, 1], futures


def test_a_committed_future_scores_infinite_the_smear_and_the_copy_do_not(shapes) -> None:
    past, actual, futures = shapes
    other = futures[:, 0]  # always "moved right": plausible, but not always what happened
    assert math.isinf(psnr_plausible(other, futures))
    assert psnr(other, actual) < 30  # wrong for the clips that moved elsewhere
    smear = futures.mean(dim=1)  # what MSE converges to
    copy = past
    assert psnr_plausible(smear, futures) < 25
    assert psnr_plausible(copy, futures) < 25
    # independent reference: nearest answer by brute force, then one MSE over the set
    errors = [[float((smear[i] - futures[i, p]).square().mean()) for p in range(4)]
              for i in range(8)]
    pooled = sum(min(row) for row in errors) / 8
    assert psnr_plausible(smear, futures) == pytest.approx(-10 * math.log10(pooled), abs=1e-4)


def test_psnr_plausible_is_at_least_psnr_when_the_target_is_plausible(shapes) -> None:
    _, actual, futures = shapes
    noisy = (actual + 0.1 * torch.rand(actual.shape, generator=torch.Generator().manual_seed(0)))
    assert psnr_plausible(noisy, futures) >= psnr(noisy, actual) - 1e-9


def test_nearest_plausible_returns_the_answer_and_index(shapes) -> None:
    _, _, futures = shapes
    answer, index = nearest_plausible(futures[:, 2] * 0.9, futures)
    assert index.tolist() == [2] * 8
    assert torch.equal(answer, futures[:, 2])


def test_hypotheses_best_and_per_hypothesis_with_nearest_counts(shapes) -> None:
    _, actual, futures = shapes
    smear = futures.mean(dim=1)
    hypotheses = torch.stack([futures[:, 1], smear, futures[:, 3]], dim=1)  # (N, 3, C, H, W)
    best, index = best_plausible_hypothesis(hypotheses, futures)
    assert set(index.tolist()) <= {0, 2}  # the smear is never the nearest
    assert math.isinf(psnr_plausible(hypotheses, futures))
    per = plausible_per_hypothesis(hypotheses, actual, futures)
    assert math.isinf(per["psnr_plausible"][0]) and math.isinf(per["psnr_plausible"][2])
    assert per["psnr_plausible"][1] < 25
    assert per["nearest_counts"][0] == [0, 8, 0, 0]  # hypothesis 1 commits to direction 1
    assert per["nearest_counts"][2] == [0, 0, 0, 8]
    assert len(per["psnr"]) == 3 and "psnr_plausible" not in plausible_per_hypothesis(
        hypotheses, actual, None)
    assert torch.equal(best, hypotheses[torch.arange(8), index])


def test_bad_shapes_name_the_expected_layout(shapes) -> None:
    _, actual, futures = shapes
    with pytest.raises(ValueError, match=r"\(N, P, C, H, W\)"):
        psnr_plausible(actual, futures[:, 0])
    with pytest.raises(ValueError, match="do not match"):
        psnr_plausible(actual[:4], futures)
