"""Sample metrics (metrics/samples.py): values against hand computations, the closeness rule of
mode coverage, the spread-skill ratio of a calibrated sampler, and the table rows."""

from __future__ import annotations

import math

import pytest
import torch

from losslab.metrics import SAMPLE_KEYS, compute_image_metrics, metric_spec
from losslab.metrics.samples import (
    CLOSENESS,
    best_of_samples,
    ideal_mean_error,
    mode_coverage,
    plausible_hit_rate,
    psnr_best_of_samples,
    reached_answers,
    rmse_between,
    sample_diversity,
    sample_mean,
    spread_skill,
)


def _futures(inputs: int = 3, size: int = 12, value: float = 0.8) -> torch.Tensor:
    """``(N, 4, 3, size, size)``: a 3x3 square on black at four non-overlapping places."""
    answers = torch.zeros(inputs, 4, 3, size, size)
    for k, (y, x) in enumerate([(1, 1), (1, 7), (7, 1), (7, 7)]):
        answers[:, k, :, y : y + 3, x : x + 3] = value
    return answers


def test_samples_that_are_exactly_the_futures_cover_all_of_them() -> None:
    answers = _futures()
    samples = torch.cat([answers, answers.flip(1)], dim=1)  # 8 samples: each future twice
    assert mode_coverage(samples, answers) == 4.0
    assert plausible_hit_rate(samples, answers) == 1.0
    assert reached_answers(samples, answers)[0].tolist() == [0, 1, 2, 3, 3, 2, 1, 0]
    targets = answers[:, 2]
    assert psnr_best_of_samples(samples, targets) == math.inf
    result = compute_image_metrics(samples[:, 0], targets, plausible=answers, samples=samples,
                                   lpips=False)
    assert result["psnr_plausible_best_of_n"] == math.inf
    assert result["mode_coverage"] == 4.0 and result["plausible_hit_rate"] == 1.0


def test_the_mean_of_the_futures_reaches_none_though_it_is_nearest_to_one() -> None:
    answers = _futures()
    ghost = answers.mean(dim=1, keepdim=True).repeat(1, 8, 1, 1, 1)
    assert mode_coverage(ghost, answers) == 0.0 and plausible_hit_rate(ghost, answers) == 0.0
    two_way = ((answers[:, 0] + answers[:, 1]) / 2).unsqueeze(1).repeat(1, 2, 1, 1, 1)
    assert mode_coverage(two_way, answers) == 0.0  # at 0.5 of the distance: outside 0.4
    copy = torch.zeros_like(answers[:, :1])
    copy[..., 4:7, 4:7] = 0.8  # the shape where it was: sharp, in no plausible place
    assert mode_coverage(copy, answers) == 0.0


@pytest.mark.parametrize(("intensity", "reached"), [(0.6, True), (0.3, False)])
def test_a_dim_committed_shape_reaches_its_answer_above_the_stated_closeness(
        intensity: float, reached: bool) -> None:
    # RMSE to the answer / RMSE between answers = (1 - f) / sqrt(2): 0.28 at f = 0.6 (< 0.4),
    # 0.49 at f = 0.3 (> 0.4), though at 0.3 that answer is still the nearest one.
    answers = _futures()
    dim = (answers[:, 1] * intensity).unsqueeze(1)
    assert ((1 - intensity) / math.sqrt(2) < CLOSENESS) == reached
    assert reached_answers(dim, answers)[:, 0].tolist() == [1 if reached else -1] * 3


def test_identical_answers_count_once() -> None:
    answers = _futures()[:, :3]
    answers[:, 2] = answers[:, 0]  # answers 0 and 2 are the same image
    samples = answers.clone()
    assert reached_answers(samples, answers)[0].tolist() == [0, 1, 0]
    assert mode_coverage(samples, answers) == 2.0
    single = answers[:, :1].repeat(1, 2, 1, 1, 1)
    with pytest.raises(ValueError, match="at least two different plausible answers"):
        mode_coverage(single[:, :1], single)


def test_best_of_samples_and_sample_mean_against_hand_values() -> None:
    targets = torch.full((2, 3, 8, 8), 0.5)
    samples = torch.stack([torch.stack([targets[0] + 0.1, targets[0] + 0.3]),
                           torch.stack([targets[1] + 0.3, targets[1] + 0.1])])
    assert torch.allclose(best_of_samples(samples, targets), targets + 0.1)
    assert psnr_best_of_samples(samples, targets) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    assert torch.allclose(sample_mean(samples), targets + 0.2)
    result = compute_image_metrics(samples[:, 0], targets, samples=samples, lpips=False)
    assert result["psnr_sample_mean"] == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-4)
    assert rmse_between(sample_mean(samples), targets) == pytest.approx(0.2, abs=1e-6)
    clipped = torch.full((1, 2, 3, 4, 4), 1.5)  # samples are clipped as every output is
    assert torch.equal(sample_mean(clipped), torch.ones(1, 3, 4, 4))


def test_diversity_is_the_mean_pairwise_rmse() -> None:
    base = torch.zeros(2, 3, 4, 4)
    samples = torch.stack([base, base + 0.1, base + 0.2], dim=1)  # pairs: 0.1, 0.2, 0.1
    assert sample_diversity(samples) == pytest.approx(0.4 / 3, abs=1e-7)
    assert sample_diversity(base.unsqueeze(1).repeat(1, 5, 1, 1, 1)) == 0.0
    with pytest.raises(ValueError, match="at least 2 samples"):
        sample_diversity(samples[:, :1])


def test_spread_skill_against_a_hand_value() -> None:
    # two samples 0.2 and 0.6, target 0.1: spread = 0.4 / sqrt(2), skill = |0.4 - 0.1|
    samples = torch.stack([torch.full((1, 3, 4, 4), 0.2), torch.full((1, 3, 4, 4), 0.6)], dim=1)
    result = spread_skill(samples, torch.full((1, 3, 4, 4), 0.1))
    assert result["spread"] == pytest.approx(0.4 / math.sqrt(2), abs=1e-7)
    assert result["skill"] == pytest.approx(0.3, abs=1e-7)
    assert result["ratio"] == pytest.approx(math.sqrt(3 / 2) * 0.4 / math.sqrt(2) / 0.3, abs=1e-6)
    constant = samples[:, :1].repeat(1, 4, 1, 1, 1)
    assert spread_skill(constant, torch.full((1, 3, 4, 4), 0.1))["ratio"] == 0.0


@pytest.mark.parametrize("count", [2, 4, 8])
def test_a_calibrated_sampler_has_ratio_one_and_an_overconfident_one_less(count: int) -> None:
    # Target and samples are independent draws of one distribution per pixel: the corrected
    # ratio is 1 (Fortin et al. 2014); without sqrt((S+1)/S) it would be sqrt(S/(S+1)).
    generator = torch.Generator().manual_seed(count)
    centre = 0.3 + 0.4 * torch.rand(400, 1, 3, 8, 8, generator=generator)
    draws = centre + 0.1 * (torch.rand(400, count + 1, 3, 8, 8, generator=generator) - 0.5)
    samples, targets = draws[:, :count], draws[:, count]
    assert spread_skill(samples, targets)["ratio"] == pytest.approx(1.0, abs=0.02)
    narrow = centre + 0.5 * (samples - centre)
    assert spread_skill(narrow, targets)["ratio"] < 0.8


def test_table_rows_need_samples_and_say_why_they_are_missing() -> None:
    x = torch.rand(2, 3, 8, 8)
    result = compute_image_metrics(x, x, lpips=False)
    assert not set(SAMPLE_KEYS) & set(result)  # deterministic outputs: rows left out
    asked = compute_image_metrics(x, x, metrics=list(SAMPLE_KEYS))
    assert "stochastic model" in asked["unavailable"]["psnr_best_of_n"]
    one = compute_image_metrics(x, x, samples=x.unsqueeze(1), lpips=False)
    assert one["sample_diversity"] is None and "at least 2" in one["unavailable"]["spread_skill"]
    assert "mode_coverage" not in one  # no plausible answers: left out as psnr_plausible is
    assert metric_spec("mode_coverage").direction == "max"
    assert metric_spec("sample_diversity").direction == "none"
    assert metric_spec("spread_skill").value_range == (0.0, math.inf)


def test_bad_shapes_and_closeness_are_refused() -> None:
    answers = _futures()
    with pytest.raises(ValueError, match=r"samples must be \(N, S, C, H, W\)"):
        sample_mean(answers[:, 0])
    with pytest.raises(ValueError, match="do not match targets"):
        best_of_samples(answers, answers[:2, 0])
    with pytest.raises(ValueError, match=r"closeness must be a number in \(0, 0.5\]"):
        reached_answers(answers, answers, closeness=0.7)
    with pytest.raises(ValueError, match="plausible must be"):
        reached_answers(answers, answers[:, 0])


def test_ideal_mean_error_matches_simulated_ideal_samplers() -> None:
    answers = _futures(inputs=1)
    generator = torch.Generator().manual_seed(0)
    drawn = torch.randint(0, 4, (4000, 8), generator=generator)
    means = answers[0][drawn].mean(dim=1)  # 4000 ideal 8-sample means of one input
    simulated = float((means - answers[0].mean(dim=0)).square().mean().sqrt())
    assert ideal_mean_error(answers, 8) == pytest.approx(simulated, rel=0.03)
    # by hand: 9 of 144 pixels per future at 0.8, so a pixel's variance over the 4 futures is
    # 0.8^2 * (1/4)(3/4) inside the 36 covered pixels and 0 elsewhere
    assert ideal_mean_error(answers, 8) == pytest.approx(
        math.sqrt(36 / 144 * 0.64 * 3 / 16 / 8), rel=1e-6)
