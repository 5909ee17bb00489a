"""Seeds per entry: parsing, the layout of the seeds' runs, the spread and the median seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from losslab.experiments import ExperimentError, experiment_from_dict, plan_runs
from losslab.experiments.seeds import (
    combine,
    headline_metric,
    median_seed,
    parse_seeds,
    seed_run_name,
    spread,
)
from losslab.train import TrainConfig
from losslab.train.data import build_data


def _experiment(**changes):
    values = {
        "name": "tiny", "question": "q", "task": "reconstruct", "data": "bundled",
        "budget": {"steps": 4, "batch_size": 4, "crop_size": 16, "seed": 3},
        "train_options": {"accelerator": "cpu", "data": {"val_items": 6}},
        "entries": [{"loss": "l1"}, {"name": "luma", "loss": "l1(luma)"}],
    }
    values.update(changes)
    return experiment_from_dict(values)


def test_parse_seeds_reads_the_cli_text_and_names_bad_values() -> None:
    assert parse_seeds("0, 1,2") == [0, 1, 2]
    assert parse_seeds([5, 2]) == [5, 2]  # order kept
    with pytest.raises(ValueError, match=r"comma-separated integers .* got 'x' in '0,x'"):
        parse_seeds("0,x")
    with pytest.raises(ValueError, match="distinct; 1 is given twice"):
        parse_seeds("1,1")
    with pytest.raises(ValueError, match="at least one seed"):
        parse_seeds(" , ")
    with pytest.raises(ValueError, match="integers >= 0"):
        parse_seeds([True])


def test_the_experiment_file_takes_distinct_seeds() -> None:
    assert _experiment().training_seeds == [3]  # budget.seed alone, as before
    assert _experiment(seeds=[3, 7]).training_seeds == [3, 7]
    with pytest.raises(ExperimentError, match="seeds must be distinct; 7 is given twice"):
        _experiment(seeds=[7, 7])
    with pytest.raises(ExperimentError, match="seeds"):
        _experiment(seeds=[])
    assert _experiment(seeds=[3, 7]).to_dict()["seeds"] == [3, 7]
    assert "seeds" not in _experiment().to_dict()


def test_spread_matches_numpy_and_the_median_seed_is_the_middle_one() -> None:
    values = [21.5, 19.25, 25.0]
    record = spread(values)
    assert record["mean"] == pytest.approx(np.mean(values))
    assert record["sd"] == pytest.approx(np.std(values, ddof=1))
    assert (record["min"], record["max"], record["n"]) == (19.25, 25.0, 3)
    assert spread([4.0]) == {"mean": 4.0, "sd": 0.0, "min": 4.0, "max": 4.0, "n": 1}
    assert spread([1.0, float("nan"), 3.0])["n"] == 2  # a diverged seed does not poison it
    with pytest.raises(ValueError, match="finite"):
        spread([float("inf")])

    per_seed = {0: {"psnr": 21.5}, 1: {"psnr": 19.25}, 2: {"psnr": 25.0}}
    assert median_seed(per_seed, "psnr") == 0
    assert median_seed({0: {"psnr": 2.0}, 1: {"psnr": 1.0}}, "psnr") == 1  # lower middle
    assert median_seed({4: {}, 5: {"psnr": 1.0}}, "psnr") == 5  # an unevaluated seed is skipped
    means, spreads = combine(per_seed, ["psnr", "ssim"])
    assert means == {"psnr": pytest.approx(np.mean([21.5, 19.25, 25.0]))}
    assert set(spreads) == {"psnr"}
    assert headline_metric(per_seed) == "psnr"
    assert headline_metric({0: {"psnr": 1.0, "psnr_plausible": 2.0}}) == "psnr_plausible"


def test_the_experiments_own_seed_keeps_todays_run_and_config(tmp_path) -> None:
    before = plan_runs(_experiment(), tmp_path)
    plans = plan_runs(_experiment(seeds=[3, 7]), tmp_path)
    assert [p.run_name for p in plans] == ["l1", "l1/seed-7", "luma", "luma/seed-7"]
    assert seed_run_name("l1", 3, 3) == "l1" and seed_run_name("l1", 7, 3) == "l1/seed-7"
    # the budget.seed run is planned exactly as without seeds: finished runs are reused
    assert plans[0].config == before[0].config and plans[2].config == before[1].config
    other = plans[1].config
    assert other["seed"] == 7 and other["data"]["seed"] == 3
    assert other["out"] == str(tmp_path / "runs" / "l1" / "seed-7")
    assert {k: v for k, v in other.items() if k not in ("seed", "data", "out")} == \
        {k: v for k, v in before[0].config.items() if k not in ("seed", "data", "out")}
    assert [p.display for p in plans[:2]] == ["l1", "l1 (seed 7)"]


def test_every_seed_is_validated_on_the_same_images() -> None:
    """data.seed fixes the data sets; the run's seed alone would draw other validation crops."""
    base = {"data": {"name": "bundled", "crop_size": 16, "batch_size": 4, "val_items": 6}}
    _, val_own = build_data(TrainConfig.from_dict({**base, "seed": 3}))
    _, val_pinned = build_data(TrainConfig.from_dict(
        {**base, "seed": 7, "data": {**base["data"], "seed": 3}}))
    _, val_other = build_data(TrainConfig.from_dict({**base, "seed": 7}))
    assert all(torch.equal(val_own[i], val_pinned[i]) for i in range(4))
    assert not all(torch.equal(val_own[i], val_other[i]) for i in range(4))


def test_data_seed_is_left_out_of_configs_that_do_not_set_it() -> None:
    """Configs and checkpoint fingerprints of runs made before data.seed existed are unchanged."""
    assert "seed" not in TrainConfig().to_dict()["data"]
    pinned = TrainConfig.from_dict({"data": {"seed": 3}})
    assert pinned.to_dict()["data"]["seed"] == 3
    assert pinned.fingerprint() != TrainConfig().fingerprint()
    assert TrainConfig.from_dict(pinned.to_dict()) == pinned
