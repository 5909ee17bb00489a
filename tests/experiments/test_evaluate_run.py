"""evaluate_run: refusing non-runs, scoring multi-hypothesis outputs, the files it writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from losslab.experiments import NotARunError, evaluate_run
from losslab.experiments.evaluate import best_hypothesis, compute_metrics, write_metrics_csv


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
    import losslab.train

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("task: predict_next\nloss: mse\n", encoding="utf-8")
    for name in ("best", "last"):
        (run / "checkpoints" / f"{name}.ckpt").write_bytes(b"")
    asked: list[str] = []
    targets = torch.zeros(2, 3, 8, 8)
    targets[:, :, 2:6, 2:6] = 1.0
    weights = {"best": 0.0, "last": 0.9}  # best predicts black (6 dB), last is close (26 dB)

    def fake_predict(run_dir: Path, checkpoint: str = "best", batch_size: int = 16):
        asked.append(checkpoint)
        return targets, targets * weights[checkpoint], targets

    monkeypatch.setattr(losslab.train, "predict_validation", fake_predict)
    metrics = evaluate_run(run)
    assert asked == ["last"]
    assert metrics["psnr"] == pytest.approx(26.02, abs=0.05)
