"""evaluate_run: refusing non-runs, scoring multi-hypothesis outputs, the files it writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from losslab.experiments import NotARunError, evaluate_run
from losslab.experiments.evaluate import (
    best_hypothesis,
    compute_metrics,
    score_summary,
    write_metrics_csv,
)
from losslab.train import TrainConfig


def test_a_directory_that_is_not_a_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotARunError, match="does not exist"):
        evaluate_run(tmp_path / "absent")
    with pytest.raises(NotARunError, match=r"is not a losslab run: it has no config\.yaml"):
        evaluate_run(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(NotARunError, match="looks like a comparison directory"):
        evaluate_run(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("task: reconstruct\n")
    with pytest.raises(NotARunError, match="has no checkpoint"):
        evaluate_run(run)


def test_best_hypothesis_is_the_closest_per_image() -> None:
    targets = torch.rand(2, 3, 8, 8)
    outputs = torch.stack([torch.stack([targets[0] * 0, targets[0]]),
                           torch.stack([targets[1], targets[1] * 0])])
    assert torch.equal(best_hypothesis(outputs, targets), targets)
    with pytest.raises(ValueError, match=r"\(N, K, C, H, W\)"):
        best_hypothesis(targets, targets)


def test_metrics_of_hypotheses_use_the_best_and_say_so() -> None:
    generator = torch.Generator().manual_seed(0)
    targets = torch.rand(4, 3, 16, 16, generator=generator)
    outputs = torch.stack([1 - targets, targets.clamp(0.02, 0.98)], dim=1)
    metrics = compute_metrics(outputs, targets)
    single = compute_metrics(targets.clamp(0.02, 0.98), targets)
    assert metrics["psnr"] == pytest.approx(single["psnr"])
    assert "best of 2 hypotheses" in metrics["notes"]["all"]
    assert metrics["retrieval_top1"] is None and "autoencoders" in metrics["unavailable"][
        "retrieval_top1"]


def test_metrics_csv_has_one_row_per_run(tmp_path: Path) -> None:
    rows = {"a": {"psnr": 1.5, "lpips": None, "unavailable": {"lpips": "x"}},
            "b": {"psnr": 2.0, "ssim": 0.5}}
    write_metrics_csv(tmp_path / "m.csv", rows)
    table = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert [r["run"] for r in table] == ["a", "b"]
    assert table[0]["lpips"] == "" and table[1]["ssim"] == "0.5" and "unavailable" not in table[0]
    json.dumps(rows)  # the same rows are JSON-serialisable


def test_evaluate_run_scores_the_last_checkpoint_not_the_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An adversarial run's val/loss is 0 while the term is gated off (start=...), so best.ckpt
    # would be a warm-up model; a comparison must judge the model after its full budget.
    import losslab.experiments.evaluate as evaluate_module

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("task: predict_next\nloss: mse\n", encoding="utf-8")
    for name in ("best", "last"):
        (run / "checkpoints" / f"{name}.ckpt").write_bytes(b"")
    asked: list[str] = []
    targets = torch.zeros(2, 3, 8, 8)
    targets[:, :, 2:6, 2:6] = 1.0
    weights = {"best": 0.0, "last": 0.9}  # best predicts black (6 dB), last is close (26 dB)

    def fake_open_run(run_dir: Path, checkpoint: str = "best") -> SimpleNamespace:
        asked.append(checkpoint)
        return SimpleNamespace(
            config=SimpleNamespace(task="predict_next"), model=None, plausible=lambda: None,
            predict=lambda: (targets, targets * weights[checkpoint], targets))

    monkeypatch.setattr(evaluate_module, "open_run", fake_open_run)
    metrics = evaluate_run(run)
    assert asked == ["last"]  # read once: outputs (and codes, for autoencoders) of one model
    assert metrics["psnr"] == pytest.approx(26.02, abs=0.05)


def _tiny_run(out: Path, **overrides: object) -> TrainConfig:
    from losslab.train import config_from_overrides

    values = {
        "task": "super_resolve", "data": "bundled", "loss": "mse", "steps": 3, "out": str(out),
        "crop_size": 16, "batch_size": 4, "val_every": 3, "sample_every": 0,
        "grad_share_every": 0, "log_every": 1, "accelerator": "cpu", "progress_bar": False,
        "data.val_items": 6, "data.options": {"val_size": 6}, "task_options.scale": 2,
        "model.options": {"width": 8},
    }
    values.update(overrides)
    return config_from_overrides(None, values)


def _logged(run_dir: Path, name: str) -> float:
    with open(run_dir / "logs" / "csv" / "metrics.csv", newline="") as file:
        values = [float(row[name]) for row in csv.DictReader(file) if row.get(name)]
    return values[-1]


@pytest.mark.parametrize("overrides", [
    {},  # 6 validation images in batches of 4 and 2: pooled across batches, not averaged
    {"task": "predict_next", "data": "moving_shapes", "crop_size": 24, "hypotheses.count": 2,
     "data.options": {"val_size": 6, "frames": 2}, "model.options": {"width": 8, "depth": 2,
                                                                      "output": "linear"},
     "check_values": False},
], ids=["super_resolve", "predict_next-2-hypotheses"])
def test_logged_val_psnr_equals_the_evaluated_psnr(tmp_path: Path, overrides: dict) -> None:
    from losslab.train import train

    result = train(_tiny_run(tmp_path / "run", **overrides))
    metrics = evaluate_run(result.run_dir)  # scores last.ckpt: the model validated at step 3
    assert _logged(result.run_dir, "val/psnr") == pytest.approx(metrics["psnr"], abs=1e-4)
    assert result.metrics["val/psnr"] == pytest.approx(metrics["psnr"], abs=1e-4)
    per_image = metrics["per_image"]["psnr"]
    assert len(per_image) == 6 and min(per_image) <= metrics["psnr"] <= max(per_image)


def test_logged_ssim_term_is_one_minus_the_evaluated_ssim(tmp_path: Path) -> None:
    """One SSIM implementation: the validation log's loss term (val/loss/ssim, averaged over
    batches of 4 and 2 images) is 1 - the ssim in metrics.json, for the same model and images."""
    from losslab.train import train

    result = train(_tiny_run(tmp_path / "run", loss="mse + 0.5*ssim"))
    metrics = evaluate_run(result.run_dir)
    assert 0.0 < metrics["ssim"] < 1.0
    assert 1.0 - _logged(result.run_dir, "val/loss/ssim") == pytest.approx(metrics["ssim"], abs=1e-5)
    assert result.metrics["val/psnr"] == pytest.approx(metrics["psnr"], abs=1e-4)


def test_baselines_are_scored_by_the_same_metric_code(tmp_path: Path) -> None:
    import torch.nn.functional as F

    from losslab.data import build_datasets
    from losslab.data.degradations import downscale
    from losslab.experiments.evaluate import evaluate_baseline

    config = _tiny_run(tmp_path / "unused")
    metrics = evaluate_baseline(config, tmp_path / "bicubic")
    _, val = build_datasets("bundled", crop_size=16, val_size=6)
    targets = torch.stack([val[i] for i in range(6)])
    bicubic = F.interpolate(downscale(targets, 2, "bicubic"), size=(16, 16), mode="bicubic",
                            align_corners=False).clamp(0, 1)
    expected = compute_metrics(bicubic, targets)
    for key in ("psnr", "ssim", "hf_ratio", "grad_ratio"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-5), key
    assert (tmp_path / "bicubic" / "evaluation" / "predictions.pt").is_file()

    grey = evaluate_baseline(_tiny_run(tmp_path / "u", task="colorize"), tmp_path / "grey")
    assert grey["chroma_ratio"] == pytest.approx(0.0, abs=1e-6)  # no colour at all

    copy = evaluate_baseline(
        _tiny_run(tmp_path / "u", task="predict_next", data="moving_shapes", crop_size=24,
                  **{"data.options": {"val_size": 6, "frames": 2}}), tmp_path / "copy")
    assert copy["grad_ratio"] == pytest.approx(1.0, abs=1e-4)  # a copy is perfectly sharp...
    assert copy["psnr_plausible"] == pytest.approx(copy["psnr"], abs=1e-6)  # ...and never right
    saved = torch.load(tmp_path / "copy" / "evaluation" / "predictions.pt")
    assert saved["plausible"].shape == (6, 4, 3, 24, 24)

    assert evaluate_baseline(_tiny_run(tmp_path / "u", task="reconstruct"),
                             tmp_path / "none") is None


def test_multi_hypothesis_metrics_carry_per_hypothesis_scores() -> None:
    targets = torch.zeros(3, 3, 16, 16)
    targets[:, :, 4:8, 4:8] = 1.0
    plausible = torch.stack([targets, targets.roll(6, dims=-1)], dim=1)
    outputs = torch.stack([plausible[:, 1], plausible.mean(dim=1)], dim=1)
    metrics = compute_metrics(outputs, targets, plausible=plausible)
    assert metrics["psnr_plausible"] is None  # inf: hypothesis 1 is exactly a plausible answer
    per = metrics["per_hypothesis"]
    assert per["nearest_counts"][0] == [0, 3] and per["psnr_plausible"][0] is None
    assert per["psnr_plausible"][1] < 20
    assert metrics["per_image"]["psnr_plausible"] == [None, None, None]


def test_score_summary_means_probabilities_and_counts_the_head_picking_the_best() -> None:
    targets = torch.zeros(3, 3, 4, 4)
    outputs = torch.stack([targets, targets + 0.5], dim=1)  # hypothesis 0 is always best
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    summary = score_summary(probabilities, outputs, targets)
    assert summary["score_mean"] == pytest.approx([1.7 / 3, 1.3 / 3])
    assert summary["score_accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"must be \(N, K\) = \(3, 2\)"):
        score_summary(probabilities[:2], outputs, targets)


def test_a_scored_run_reports_score_means_per_hypothesis(tmp_path: Path) -> None:
    from losslab.train import train

    train(_tiny_run(tmp_path / "run", task="predict_next", data="moving_shapes", crop_size=24,
                    **{"hypotheses.count": 3, "hypotheses.scores": True, "check_values": False,
                       "data.options": {"val_size": 6, "frames": 2},
                       "model.options": {"width": 8, "depth": 2, "output": "linear"}}))
    per = evaluate_run(tmp_path / "run")["per_hypothesis"]
    assert len(per["score_mean"]) == 3 and sum(per["score_mean"]) == pytest.approx(1.0)
    assert 0.0 <= per["score_accuracy"] <= 1.0
    assert len(per["psnr_plausible"]) == 3
