"""Benchmark: losslab's training step (Lightning Trainer + TaskModule) vs a plain PyTorch loop.

Both train the same autoencoder with the same loss, Adam, data and batch order in this process;
only the loop differs. The Lightning side is timed inside ``losslab.train.train`` from the end of
warm-up step ``--warmup`` to the end of the last step (startup, validation and checkpoints are
outside the window; the default scalar logging every 10 steps is inside it). The plain loop is
timed over the same steps. Each side runs ``--repeats`` times alternately; the best time counts.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/train_step.py            # CPU (and CUDA if present)
    python benchmarks/train_step.py --steps 200 --batch-size 32 --crop-size 64

Prints per device: ms/step and images/s of each side and the ratio losslab / plain (target <= 1.10).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

import losslab
from losslab.train import config_from_overrides, train
from losslab.train.config import TrainConfig
from losslab.train.data import GlobalBatchSampler, build_data
from losslab.train.module import build_network


class StepTimer(L.Callback):
    """Wall time from the end of step ``warmup`` to the end of the last step."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.start = self.end = 0.0

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.warmup:
            self.start = self._now()
        if trainer.global_step == trainer.max_steps:
            self.end = self._now()


def make_config(args: argparse.Namespace, out: Path, accelerator: str) -> TrainConfig:
    return config_from_overrides(None, {
        "task": "reconstruct", "data": "bundled", "loss": args.loss, "steps": args.steps,
        "out": str(out), "crop_size": args.crop_size, "batch_size": args.batch_size,
        "accelerator": accelerator, "val_every": args.steps + 1, "sample_every": 0,
        "grad_share_every": 0, "progress_bar": False, "data.val_items": 4,
        "data.options": {"val_size": 4},
    })


def time_losslab(args: argparse.Namespace, accelerator: str, device: torch.device) -> float:
    with tempfile.TemporaryDirectory() as directory:
        timer = StepTimer(args.warmup, device)
        train(make_config(args, Path(directory) / "run", accelerator), callbacks=[timer])
    return (timer.end - timer.start) / (args.steps - args.warmup)


def time_plain(args: argparse.Namespace, device: torch.device) -> float:
    config = make_config(args, Path(tempfile.gettempdir()) / "unused", "cpu")
    L.seed_everything(config.seed, verbose=False)
    train_set, val_set = build_data(config)
    model = build_network(config, val_set[0]).to(device)
    criterion = losslab.loss(config.loss).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optimizer.lr)
    sampler = GlobalBatchSampler(len(train_set), config.data.batch_size, seed=config.seed)
    loader = DataLoader(train_set, batch_sampler=sampler)
    start = 0.0
    step = 0
    while step < args.steps:
        for batch in loader:
            images = batch.to(device, non_blocking=True)
            prediction = model(images)
            loss = criterion(prediction, images)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step == args.warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
            if step == args.steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / (args.steps - args.warmup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop-size", type=int, default=64)
    parser.add_argument("--loss", default="l1 + 0.1*mse")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all")
    args = parser.parse_args(argv)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    devices = []
    if args.device in ("all", "cpu"):
        devices.append(("cpu", torch.device("cpu")))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(("gpu", torch.device("cuda")))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch "
          f"{args.batch_size}x3x{args.crop_size}x{args.crop_size}, loss {args.loss!r}, "
          f"{args.steps - args.warmup} timed steps, best of {args.repeats}")
    worst = 0.0
    for accelerator, device in devices:
        ours, plain = [], []
        for _ in range(args.repeats):  # alternate, so slow drifts of a shared machine hit both
            plain.append(time_plain(args, device))
            ours.append(time_losslab(args, accelerator, device))
        best_ours, best_plain = min(ours), min(plain)
        ratio = best_ours / best_plain
        worst = max(worst, ratio)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"[{name}] losslab {1e3 * best_ours:7.2f} ms/step ({args.batch_size / best_ours:7.1f} "
              f"img/s) | plain {1e3 * best_plain:7.2f} ms/step ({args.batch_size / best_plain:7.1f} "
              f"img/s) | ratio {ratio:.3f} (target <= 1.10)")
    return 0 if worst <= 1.10 else 1


if __name__ == "__main__":
    raise SystemExit(main())


