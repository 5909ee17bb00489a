"""Regression-to-the-mean demo: MSE -> mean, MAE -> median, WTA -> modes, pose ambiguity."""

from __future__ import annotations

import json

import pytest

from losslab.demo.mean import (
    angular_error,
    format_mean_demo,
    run_image_demo,
    run_mean_demo,
    run_one_dimensional_demo,
    run_pose_demo,
    write_mean_demo_json,
)


@pytest.fixture(scope="module")
def one_d() -> dict:
    return run_one_dimensional_demo(seed=0)


def test_mse_predicts_the_mean_and_mae_the_median(one_d) -> None:
    sample, predictions = one_d["sample"], one_d["predictions"]
    assert predictions["mse"] == pytest.approx(sample["mean"], abs=0.01)
    assert predictions["mae"] == pytest.approx(sample["median"], abs=0.03)
    # The mean lies far from every mode: no target is ever near the MSE answer.
    assert min(abs(predictions["mse"] - m) for m in sample["modes"]) > 0.9


def test_wta_and_mdn_find_the_modes(one_d) -> None:
    modes = one_d["sample"]["modes"]
    assert one_d["predictions"]["wta"] == pytest.approx(modes, abs=0.1)
    assert one_d["predictions"]["mdn"] == pytest.approx(modes, abs=0.1)
    assert one_d["mdn_weights"] == pytest.approx([0.45, 0.35, 0.2], abs=0.03)


def test_image_demo_mse_ghost_and_wta_sharp() -> None:
    import math

    result = run_image_demo(seed=0)
    metrics = result["metrics"]
    mse = metrics["mse"]
    assert 0.3 < mse["left_centre"][0] < 0.7 and 0.3 < mse["right_centre"][0] < 0.7
    left, right = metrics["wta"]["left_centre"], metrics["wta"]["right_centre"]
    assert sorted(left) == pytest.approx([0.0, 1.0], abs=0.1)
    assert sorted(right) == pytest.approx([0.0, 1.0], abs=0.1)
    assert max(metrics["wta"]["error_to_nearest_target"]) < 0.2 * mse["error_to_nearest_target"][0]
    # psnr_plausible is the same error in dB: each WTA hypothesis is >= 7 dB closer to a target
    ghost = mse["psnr_plausible"][0]
    for value, error in zip(metrics["wta"]["psnr_plausible"],
                            metrics["wta"]["error_to_nearest_target"], strict=True):
        assert value is None or value > ghost + 7
        assert value is None or value == pytest.approx(-10 * math.log10(error), abs=0.05)
    # The VGG-feature energy-score sampler commits: most draws near a disk, both disks drawn.
    near = result["sampler"]["near_target"]
    assert min(near) > 0.15 and sum(near) > 0.6


def test_angular_error_folds_the_symmetry() -> None:
    import math

    import torch

    angles = torch.tensor([0.1, 0.1, 0.1])
    predicted = torch.tensor([0.1 + math.pi, 0.1 + math.pi / 2, 0.1 - 0.2])
    assert angular_error(predicted, angles).tolist() == pytest.approx([0.0, 90.0, 11.459], abs=1e-3)


@pytest.mark.slow
def test_pose_wta_error_much_smaller_than_mse() -> None:
    pose = run_pose_demo(seed=0)
    assert pose["wta_error_deg"] < 3.0
    assert pose["mse_error_deg"] > 10 * pose["wta_error_deg"]
    assert pose["mse_error_deg"] > 30  # near chance (45): the averaged answer has no angle
    assert pose["mse_output_norm"] < 0.1  # MSE learns the average of the two answers, ~(0, 0)


@pytest.mark.slow
def test_run_mean_demo_writes_figures_and_json(tmp_path) -> None:
    result = run_mean_demo(tmp_path, seed=0)
    for name in ("histogram", "image", "pose"):
        assert (tmp_path / result["files"][name].split("/")[-1]).read_bytes()[:4] == b"\x89PNG"
    data = json.loads(write_mean_demo_json(result, tmp_path / "mean.json").read_text())
    assert set(data["sample"]) == {"mean", "median", "modes"}
    assert set(data["predictions"]) == {"mse", "mae", "wta", "mdn"}
    assert len(data["sampler"]["mode_fractions"]) == 3
    assert set(data["image_sampler"]) == {"spec", "near_target", "near_none"}
    assert "energy-score sampler" in format_mean_demo(result)
    assert len(data["predictions"]["wta"]) == 3
    assert "MSE predicts" in format_mean_demo(result)


def test_energy_score_sampler_draws_near_the_modes_with_their_weights(one_d) -> None:
    """The sampler's draws: most within 2 sd of a mode (the data: 95 %), each mode about as often
    as the data (weights 0.45 / 0.35 / 0.2), unlike MSE's one value between the modes."""
    sampler = one_d["sampler"]
    drawn, data = sampler["mode_fractions"], sampler["data_mode_fractions"]
    assert sum(data) > 0.94
    assert sum(drawn) > 0.75
    assert sampler["histogram_distance"] < 0.2
    shares = [value / sum(drawn) for value in drawn]
    assert shares == pytest.approx([0.45, 0.35, 0.2], abs=0.08)
    assert one_d["sampler"]["samples"].std() > 2.0  # it spreads over the modes, not one value


def test_mode_fractions_count_values_within_three_sd_of_each_mode() -> None:
    import torch

    from losslab.demo.mean_1d import mode_fractions

    values = torch.tensor([-3.0, -2.3, 0.5, 1.2, 3.5, 3.5, -1.2, 1.5])
    # -2.3 is 0.7 from -3 (< 0.8: near); 1.2 is 0.7 from 0.5 (near); -1.2 and 1.5 are in gaps.
    assert mode_fractions(values) == pytest.approx([2 / 8, 2 / 8, 2 / 8])


def test_histogram_distance_is_total_variation() -> None:
    import torch

    from losslab.demo.mean_1d import histogram_distance

    values = torch.tensor([0.05, 0.1, 2.05, 2.1])
    assert histogram_distance(values, values) == 0.0
    assert histogram_distance(values, torch.tensor([4.05, 4.1, 2.05, 2.1])) == pytest.approx(0.5)
    assert histogram_distance(values, torch.tensor([9.0, 9.0, 9.0, 9.0])) == pytest.approx(1.0)


def test_committed_fractions_sort_draws_by_the_target_they_are_near() -> None:
    import torch

    from losslab.demo.mean_image import committed_fractions

    targets = torch.zeros(2, 3, 4, 4)
    targets[0, :, :, :2] = 1.0
    targets[1, :, :, 2:] = 1.0
    draws = torch.stack([targets[0], targets[0] + 0.05, targets[1], targets.mean(dim=0)])
    assert committed_fractions(draws, targets) == pytest.approx([0.5, 0.25])
