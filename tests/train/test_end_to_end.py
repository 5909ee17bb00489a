"""Slow end-to-end checks: learning, kill-and-resume, DDP on CPU, multiple hypotheses."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from train_helpers import tiny_config

from losslab.train import TaskModule, load_module, predict_validation, train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("quiet_lightning")]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from losslab.train import train_from_args

    if __name__ == "__main__":
        overrides = json.loads(sys.argv[1])
        result = train_from_args(**overrides)
        print("RESULT " + json.dumps({"resumed_from_step": result.resumed_from_step,
                                      "global_step": result.global_step,
                                      "processes": result.processes}), flush=True)
    """
)


def _run_script(tmp_path: Path, overrides: dict, **popen: object) -> subprocess.Popen:
    script = tmp_path / "run_training.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, str(script), json.dumps(overrides)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def _result(process: subprocess.Popen, timeout: float) -> dict:
    output, _ = process.communicate(timeout=timeout)
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, output[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def _cli_overrides(out: Path, **extra: object) -> dict:
    values = {"task": "reconstruct", "data": "bundled", "loss": "l1", "out": str(out),
              "crop_size": 32, "batch_size": 4, "accelerator": "cpu", "progress_bar": False,
              "sample_every": 0, "grad_share_every": 0, "log_every": 10,
              "data.options": {"val_size": 4}, "data.val_items": 4,
              "model.options": {"width": 8, "depth": 2}}
    return values | extra


def test_reconstruct_training_reduces_validation_l1(tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "run", steps=300, val_every=100, batch_size=16, lr=3e-3,
                         **{"data.val_items": 16, "data.options": {"val_size": 16},
                            "model.options": {"width": 16, "depth": 2}})
    L.seed_everything(config.seed)
    untrained = TaskModule(config)  # the very initial weights of the run (same seed)
    images = torch.stack([untrained.val_set[i] for i in range(16)])
    with torch.no_grad():
        before = float((untrained.model(images) - images).abs().mean())
    result = train(config)
    after = result.metrics["val/l1"]
    _, outputs, targets = predict_validation(result.run_dir, "last")
    assert float((outputs - targets).abs().mean()) == pytest.approx(after, rel=1e-4)
    assert after < before / 4, (before, after)  # measured: 0.289 -> 0.034


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    overrides = _cli_overrides(out, steps=400, val_every=10)
    process = _run_script(tmp_path, overrides)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists():
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = int(torch.load(last, weights_only=False)["global_step"])
    assert 10 <= killed_at < 400, "the run finished before it could be killed"

    resumed = _result(_run_script(tmp_path, overrides), timeout=180)  # the same command again
    assert resumed["resumed_from_step"] >= killed_at
    assert resumed["global_step"] == 400
    assert int(torch.load(last, weights_only=False)["global_step"]) == 400


def _wait_for_logged_step(process: subprocess.Popen, csv_path: Path, step: int) -> None:
    deadline = time.monotonic() + 180
    while True:
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, f"step {step} not logged within 180 s"
        if csv_path.is_file():
            logged = [int(line.split(",", 1)[0]) for line in csv_path.read_text().splitlines()[1:]
                      if line and line[0].isdigit()]
            if logged and max(logged) >= step:
                return
        time.sleep(0.02)


def _train_steps(csv_path: Path) -> list[int]:
    with open(csv_path, newline="") as file:
        return [int(row["step"]) for row in csv.DictReader(file) if row.get("train/loss")]


def test_killed_run_keeps_its_log_and_resumes_it_without_gaps(tmp_path: Path) -> None:
    """Issue 11: after a SIGKILL at step 170 there was no metrics.csv (Lightning flushed every 100
    steps); after resuming only steps 160-300 remained."""
    out = tmp_path / "run"
    overrides = _cli_overrides(out, steps=300, val_every=100)
    csv_path = out / "logs" / "csv" / "metrics.csv"
    process = _run_script(tmp_path, overrides)
    _wait_for_logged_step(process, csv_path, 170)
    process.send_signal(signal.SIGKILL)
    process.wait()
    logged = _train_steps(csv_path)
    assert logged == list(range(0, max(logged) + 1, 10)) and max(logged) >= 170  # nothing lost
    checkpoint_step = int(torch.load(out / "checkpoints" / "last.ckpt",
                                     weights_only=True)["global_step"])
    assert checkpoint_step < 300

    resumed = _result(_run_script(tmp_path, overrides), timeout=240)
    assert resumed["resumed_from_step"] == checkpoint_step
    assert _train_steps(csv_path) == list(range(0, 300, 10))  # no gap, no duplicate
    with open(csv_path, newline="") as file:
        val_steps = [int(row["step"]) for row in csv.DictReader(file) if row.get("val/loss")]
    assert val_steps == [100, 200, 300]
    # the replayed rows equal an uninterrupted run's (the resume is exact)
    straight_out = tmp_path / "straight"
    _result(_run_script(tmp_path, _cli_overrides(straight_out, steps=300, val_every=100)), 240)
    with open(csv_path, newline="") as a, \
            open(straight_out / "logs" / "csv" / "metrics.csv", newline="") as b:
        ours = [(r["step"], r.get("train/loss")) for r in csv.DictReader(a)]
        reference = [(r["step"], r.get("train/loss")) for r in csv.DictReader(b)]
    assert ours == reference


@pytest.mark.parametrize(("signal_number", "name", "status"),
                         [(signal.SIGTERM, "SIGTERM", 143), (signal.SIGINT, "SIGINT", 130)])
def test_sigterm_saves_a_checkpoint_and_exits_non_zero_with_a_message(
    tmp_path: Path, signal_number: int, name: str, status: int
) -> None:
    """Issue 11: SIGTERM (schedulers, docker stop) exited 0 with no message and no checkpoint;
    Ctrl-C (SIGINT) now checkpoints the same way."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "losslab.cli", "train", "--task", "reconstruct", "--data",
               "bundled", "--loss", "l1", "--steps", "5000", "--out", str(out), "--crop-size",
               "32", "--batch-size", "4", "--accelerator", "cpu", "--set", "val_every=1000",
               "--set", "log_every=1", "--set", "sample_every=0", "--set", "grad_share_every=0",
               "--set", "progress_bar=false", "--set", "data.options={val_size: 4}",
               "--set", "data.val_items=4", "--set", "model.options={width: 8, depth: 2}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    csv_path = out / "logs" / "csv" / "metrics.csv"
    _wait_for_logged_step(process, csv_path, 20)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr[-2000:]
    last_line = stderr.strip().splitlines()[-1]
    assert f"stopped by {name}" in last_line and "Run the same command again to resume" in last_line
    assert "Traceback" not in stderr
    saved = int(torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"])
    assert saved >= 20 and f"the {saved} steps done are saved" in last_line
    assert max(_train_steps(csv_path)) == saved - 1  # every step done is in the checkpoint


@pytest.mark.parametrize("loss", ["l1", "robust(learn_alpha=true, learn_scale=true)"])
def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path: Path, loss: str) -> None:
    # The robust loss's learned alpha and scale are optimised with the model: DDP must average
    # their gradients too (they are not in the ignore list), or the ranks would drift apart.
    steps = {"steps": 6, "val_every": 6, "batch_size": 8, "loss": loss}
    ddp = _run_script(tmp_path, _cli_overrides(tmp_path / "ddp", strategy="ddp", devices=2, **steps))
    result = _result(ddp, timeout=240)
    assert (result["global_step"], result["processes"]) == (6, 2)
    single = train(tiny_config(tmp_path / "single", **{k: v for k, v in _cli_overrides(
        tmp_path / "single", **steps).items() if k not in ("task", "out")}))
    ddp_module, single_module = load_module(tmp_path / "ddp", "last"), load_module(single.run_dir,
                                                                                  "last")
    for part in ("model", "loss"):
        ddp_weights = getattr(ddp_module, part).state_dict()
        single_weights = getattr(single_module, part).state_dict()
        assert single.processes == 1 and ddp_weights.keys() == single_weights.keys()
        for key, value in single_weights.items():
            # Same global batches and averaged gradients: only float summation order differs.
            torch.testing.assert_close(ddp_weights[key], value, rtol=1e-4, atol=1e-5)


def _future_errors(run_dir: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per clip: errors (N, K, D) of each hypothesis to each possible future, the futures' mean
    error to each future (N, D), and the outputs' distance to that mean (N, K)."""
    _, outputs, _ = predict_validation(run_dir, "last")
    val_set = load_module(run_dir, "last").val_set
    futures = torch.stack([val_set.futures(i) for i in range(outputs.shape[0])])  # (N, D, 3, H, W)
    hypotheses = outputs if outputs.dim() == 5 else outputs.unsqueeze(1)
    errors = (hypotheses.unsqueeze(2) - futures.unsqueeze(1)).pow(2).flatten(3).mean(3)
    mean = futures.mean(1, keepdim=True)
    blur = (mean - futures).pow(2).flatten(2).mean(2)
    to_mean = (hypotheses - mean).pow(2).flatten(2).mean(2)
    return errors, blur, to_mean


def test_hypotheses_cover_the_futures_while_one_mse_output_blurs(tmp_path: Path) -> None:
    def config(name: str, hypotheses: int, steps: int):
        return tiny_config(
            tmp_path / name, task="predict_next", data="moving_shapes", loss="mse", steps=steps,
            val_every=steps, batch_size=16, lr=3e-3, crop_size=24, hypotheses=hypotheses,
            check_values=False,  # linear outputs may overshoot [0, 1] while training
            **{"data.val_items": 16, "model.options": {"width": 16, "depth": 2, "output": "linear"},
               "data.options": {"val_size": 16, "shape_size": 6, "speed": 7, "directions": 2}})

    errors, blur, _ = _future_errors(train(config("multi", 2, 300)).run_dir)
    winners = errors.argmin(dim=1)  # (N, D): which hypothesis is closest to each future
    assert bool((winners[:, 0] != winners[:, 1]).all())  # each future has its own hypothesis
    cover = errors.min(dim=1).values  # (N, D)
    assert float(cover.mean()) < 0.5 * float(blur.mean()), (cover.mean(), blur.mean())  # ~0.3x

    errors, blur, to_mean = _future_errors(train(config("single", 1, 200)).run_dir)
    # The single output sits on the mean of the futures (a two-ghost blur), far from each future.
    assert float(to_mean.mean()) < 0.35 * float(errors.mean()), (to_mean.mean(), errors.mean())
    # ... so even its closest future is much farther than the hypotheses' (measured ~3x).
    assert float(errors.min(dim=2).values.mean()) > 2 * float(cover.mean())


RANK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import lightning as L
    from losslab.train import config_from_overrides, train

    class RecordShares(L.Callback):
        def on_train_batch_end(self, trainer, module, *args):
            rows = Path(sys.argv[2]) / f"rank{trainer.global_rank}.jsonl"
            with rows.open("a") as handle:
                handle.write(json.dumps({"step": trainer.global_step,
                                         "weights": module.criterion.current_weights(),
                                         "d_accuracy": [t.d_accuracy for t in module.adversarial]})
                             + "\\n")

    if __name__ == "__main__":
        train(config_from_overrides(None, json.loads(sys.argv[1])), callbacks=[RecordShares()])
    """
)


def test_ddp_ranks_agree_on_share_weights_and_adaptive_d_decisions(tmp_path: Path) -> None:
    """Each process sees half the batch, so measured norms and D accuracies differ per rank;
    both are averaged over processes, so every rank uses the same weights and D update count."""
    script = tmp_path / "rank_script.py"
    script.write_text(RANK_SCRIPT)
    overrides = _cli_overrides(tmp_path / "run", strategy="ddp", devices=2, steps=6, val_every=6,
                               batch_size=8, ema_decay=0.9,
                               loss="l1 + 10*mse@share(0.3) + 0.1*adversarial(width=4, depth=1, "
                                    "adaptive_d=true)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, str(script), json.dumps(overrides), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ranks = [[json.loads(line) for line in (tmp_path / f"rank{r}.jsonl").read_text().splitlines()]
             for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 6
    for first, second in zip(*ranks, strict=True):
        assert first == second  # identical weights and running D accuracies, step by step
    assert ranks[0][-1]["weights"]["mse"] != 10.0
