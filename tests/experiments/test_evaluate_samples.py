"""evaluate_run on stochastic runs: S seeded samples per input, the single-sample headline, the
sample metrics against values computed from the data's futures, the samples saved for the
report, and the --samples option.

The stochastic model is a tiny one defined here (:class:`ShiftSampler`): for a ``moving_shapes``
clip with a static past on black, moving the last frame by the data's step in direction ``k``
*is* future ``k``, so the sampler draws exactly plausible futures (or their mean), and what
its samples should score is known without the metric code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from test_evaluate_run import _tiny_run  # the tiny run of the evaluate tests, same folder
from torch import Tensor, nn

from losslab.cli import main
from losslab.data import build_datasets
from losslab.data.moving_shapes import direction_offsets
from losslab.experiments import evaluate_run
from losslab.metrics import SAMPLE_KEYS, psnr
from losslab.models.registry import MODELS, register_model

SPEED = 6
DATA_OPTIONS = {"val_size": 6, "frames": 2, "speed": SPEED, "shape_size": 4}


class ShiftSampler(nn.Module):
    """Draws next frames of a static moving shape: the last frame shifted in a drawn direction.

    ``mode``: ``random`` (direction ``k ~ U{0..3}`` from the generator), ``cycle`` (sample ``j``
    moves in direction ``j mod 4``: every future exactly) or ``mean`` (every sample is the mean
    of the four futures, MSE's ghost). ``forward`` is the ghost times a learnable gain, so the
    run trains like any other.
    """

    is_stochastic = True

    def __init__(self, in_channels: int = 3, out_channels: int = 3, mode: str = "random") -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))
        self.mode = mode
        self.offsets = [tuple(int(v) for v in o) for o in direction_offsets(4, SPEED)]
        self.directions: list[list[int]] = []  # what each sample call drew, per input

    def _moved(self, inputs: Tensor, k: int) -> Tensor:
        return torch.roll(inputs[:, -3:], shifts=self.offsets[k], dims=(-2, -1))

    def forward(self, inputs: Tensor) -> Tensor:
        return self.gain * torch.stack([self._moved(inputs, k) for k in range(4)]).mean(dim=0)

    def sample(self, inputs: Tensor, count: int, generator: torch.Generator | None = None
               ) -> Tensor:
        if self.mode == "mean":
            return self.forward(inputs).unsqueeze(1).repeat(1, count, 1, 1, 1)
        if self.mode == "cycle":
            drawn = torch.arange(count).remainder(4).repeat(inputs.shape[0], 1)
        else:
            drawn = torch.randint(0, 4, (inputs.shape[0], count), generator=generator)
        self.directions.extend(drawn.tolist())
        return torch.stack([torch.stack([self._moved(inputs[n : n + 1], int(k))[0] for k in row])
                            for n, row in enumerate(drawn)])


if "test_shift_sampler" not in MODELS:
    register_model("test_shift_sampler")(ShiftSampler)


def _set_mode(run: Path, mode: str) -> None:
    """Same weights, another sampling rule (the mode is a constructor option in config.yaml)."""
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    config["model"]["options"]["mode"] = mode
    (run / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from losslab.train import train

    out = tmp_path_factory.mktemp("stochastic") / "run"
    train(_tiny_run(out, task="predict_next", data="moving_shapes", crop_size=24,
                    model="test_shift_sampler", **{"data.options": DATA_OPTIONS,
                                                   "model.options": {"mode": "random"}}))
    return out


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _futures() -> tuple[Tensor, Tensor]:
    """``(targets (6, 3, 24, 24), futures (6, 4, 3, 24, 24))`` straight from the data set."""
    _, val = build_datasets("moving_shapes", crop_size=24, **DATA_OPTIONS)
    targets = torch.stack([val[i][-1] for i in range(6)])
    return targets, torch.stack([val.futures(i) for i in range(6)])


def test_samples_that_are_every_future_cover_all_four(run: Path) -> None:
    _set_mode(run, "cycle")
    metrics = evaluate_run(run)  # the default: 8 samples, each future twice
    assert metrics["mode_coverage"] == 4.0 and metrics["plausible_hit_rate"] == 1.0
    # best of 8 is exactly a plausible answer (and the target): PSNR inf, stored as null
    assert metrics["psnr_plausible_best_of_n"] is None and metrics["psnr_best_of_n"] is None
    assert "not finite" in metrics["unavailable"]["psnr_plausible_best_of_n"]
    # the headline is sample 0 of each input: direction 0 (right) for every clip
    targets, futures = _futures()
    assert metrics["psnr"] == pytest.approx(psnr(futures[:, 0], targets), abs=1e-4)
    assert metrics["psnr_plausible"] is None  # sample 0 is exactly a future
    assert "one sample per input" in metrics["notes"]["all"]
    assert "sample 0 of each input's 8 seeded draws" in metrics["notes"]["all"]
    # the samples' mean is the futures' mean (each drawn twice): MSE's answer
    assert metrics["psnr_sample_mean"] == pytest.approx(psnr(futures.mean(dim=1), targets),
                                                        abs=1e-4)
    # diversity: of the 28 pairs of 8 samples, 4 repeat one future (RMSE 0) and 24 are two
    # non-overlapping futures, whose RMSE is the same for every pair of one clip
    apart = (futures[:, 0] - futures[:, 1]).square().flatten(1).mean(dim=1).sqrt()
    assert metrics["sample_diversity"] == pytest.approx(float(apart.mean()) * 24 / 28, rel=1e-5)
    saved = torch.load(run / "evaluation" / "predictions.pt")
    assert saved["samples"].shape == (6, 8, 3, 24, 24)
    assert torch.allclose(saved["samples"][:, :4], futures, atol=1e-6)
    assert torch.equal(saved["outputs"], saved["samples"][:, 0])
    # outputs is saved as its own tensor, not as a view carrying all 8 samples
    assert saved["outputs"].untyped_storage().nbytes() == saved["outputs"].numel() * 4
    assert torch.allclose(saved["sample_mean"], futures.mean(dim=1), atol=1e-6)
    block = metrics["samples"]
    assert block["count"] == 8 and block["seed"] == 0 and block["stored"] == 6
    assert len(block["per_sample"]["psnr"]) == 8 and block["per_sample"]["psnr_plausible"] == [
        None] * 8


def test_the_ghost_sampler_reaches_no_future(run: Path) -> None:
    _set_mode(run, "mean")
    metrics = evaluate_run(run, samples=4)
    assert metrics["mode_coverage"] == 0.0 and metrics["plausible_hit_rate"] == 0.0
    assert metrics["sample_diversity"] == 0.0 and metrics["spread_skill"] == 0.0
    targets, futures = _futures()
    assert metrics["psnr_plausible"] == pytest.approx(
        metrics["psnr_plausible_best_of_n"], abs=1e-6)  # every sample is the same ghost
    assert metrics["psnr"] == pytest.approx(psnr(futures.mean(dim=1), targets), abs=1e-4)


def test_random_draws_are_seeded_and_counted_by_what_was_drawn(run: Path) -> None:
    first = evaluate_run(run)
    again = evaluate_run(run)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    # coverage is the number of distinct directions each clip's 8 draws took: read the draws
    # back from a fresh model with the same seeds (input i is drawn with seed 0 + i)
    model = ShiftSampler()
    for i in range(6):
        model.sample(torch.zeros(1, 3, 24, 24), 8, torch.Generator().manual_seed(i))
    distinct = [len(set(row)) for row in model.directions]
    assert first["mode_coverage"] == pytest.approx(sum(distinct) / 6)
    assert first["plausible_hit_rate"] == 1.0 and 1.0 < first["mode_coverage"] <= 4.0
    for key in SAMPLE_KEYS:
        assert key in first, key
    drawn = torch.load(run / "evaluation" / "predictions.pt")["samples"]
    other = evaluate_run(run, samples=8, seed=5)
    assert other["samples"]["seed"] == 5 and "seeded 5 + i" in other["notes"]["all"]
    assert not torch.equal(torch.load(run / "evaluation" / "predictions.pt")["samples"], drawn)


def test_deterministic_runs_have_no_sample_metrics(tmp_path: Path) -> None:
    from losslab.train import train

    result = train(_tiny_run(tmp_path / "run"))
    metrics = evaluate_run(result.run_dir, samples=3)  # ignored: the model is deterministic
    assert not set(SAMPLE_KEYS) & set(metrics) and "samples" not in metrics
    assert "samples" not in torch.load(result.run_dir / "evaluation" / "predictions.pt")


def test_bad_sample_counts_are_one_line_errors(run: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match=r"samples must be a whole number >= 1.*got 0"):
        evaluate_run(run, samples=0)
    with pytest.raises(SystemExit) as stopped:
        main(["evaluate", str(run), "--samples", "none"])
    assert stopped.value.code == 2
    assert "--samples: must be a whole number >= 1" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--samples", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["samples"]["count"] == 3 and len(printed["samples"]["per_sample"]["psnr"]) == 3


@pytest.mark.slow
def test_a_comparison_evaluates_its_stochastic_entry_on_the_experiments_sample_count(
        tmp_path: Path) -> None:
    from losslab.experiments import experiment_from_dict, run_comparison
    from losslab.report import build_report

    raw = {
        "name": "future-tiny", "question": "Do the samples reach the futures?",
        "task": "predict_next", "data": "moving_shapes", "data_options": DATA_OPTIONS,
        "model": "test_shift_sampler", "samples": 4,
        "budget": {"steps": 3, "batch_size": 4, "crop_size": 24},
        "train_options": {"val_every": 3, "sample_every": 0, "grad_share_every": 0,
                          "accelerator": "cpu", "check_values": False,
                          "data": {"val_items": 6}},
        "entries": [
            {"loss": "mse", "train_options": {"model": {"name": "unet", "options": {
                "width": 8, "depth": 2, "output": "linear"}}}},
            {"name": "sampler", "loss": "l1", "model_options": {"mode": "cycle"}},
        ],
    }
    run_comparison(experiment_from_dict(raw), tmp_path, progress=False, probe=False,
                   metamers=False)
    sampler = json.loads((tmp_path / "runs" / "sampler" / "metrics.json").read_text())
    assert sampler["samples"]["count"] == 4 and sampler["mode_coverage"] == 4.0
    table = json.loads((tmp_path / "metrics.json").read_text())
    assert "mode_coverage" not in table["mse"] and table["sampler"]["mode_coverage"] == 4.0
    text = build_report(tmp_path).read_text()
    part = text[text.index('<section id="samples">'):]
    assert "mean of its samples ↔ mse output" in part[: part.index("</section>")]
    # the same comparison with another sample count re-evaluates; it does not retrain
    checkpoint = (tmp_path / "runs" / "sampler" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    run_comparison(experiment_from_dict({**raw, "samples": 8}), tmp_path, progress=False,
                   probe=False, metamers=False)
    again = json.loads((tmp_path / "runs" / "sampler" / "metrics.json").read_text())
    assert again["samples"]["count"] == 8
    assert (tmp_path / "runs" / "sampler" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == checkpoint
