"""Benchmark: reading a finished run back for evaluation, the whole training module vs the model only.

Trains one tiny run (``--loss``, default ``mse + 0.01*perceptual(weights=random)``), then measures
in a fresh process per repetition (so peak memory is that of the one path):

- ``module``: what ``losslab evaluate`` did before: the whole :class:`TaskModule` (data sets, loss
  with its VGG, discriminators, EMA copy) built from ``last.ckpt`` for the outputs, built again
  from ``best.ckpt`` for the autoencoder codes (task ``reconstruct`` only), and the data built
  once more for the plausible targets;
- ``model``: :func:`losslab.train.open_run`: the task's model and the validation set, once.

Both predict the same fixed validation items (the script checks that the outputs agree).
Time is wall and CPU seconds of that phase (imports excluded); memory is the growth of the
process's peak resident set (``VmHWM``) during it. tracemalloc would miss tensor storage,
which torch allocates outside Python's allocator. Also prints the size of ``last.ckpt`` as
written now and with the frozen VGG entries added back (the layout before they were left out).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/evaluation_load.py
    python benchmarks/evaluation_load.py --loss "mse + 0.01*perceptual(weights=random, layers=relu5_4)"
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from losslab.train import config_from_overrides, load_module, open_run, train
from losslab.train.data import build_data
from losslab.train.tasks import get_task


def _peak_rss_mib() -> float:
    """This process's peak resident set in MiB: ``VmHWM`` on Linux (per process image; a child's
    ``ru_maxrss`` starts at its parent's size after fork + exec), else ``ru_maxrss``."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(run_dir: Path, path: str) -> dict[str, float]:
    """Time and peak-memory growth of reading ``run_dir`` back by ``path`` (in this process)."""
    rss_before = _peak_rss_mib()
    wall, cpu = time.perf_counter(), _cpu_seconds()
    if path == "module":
        module = load_module(run_dir, "last")
        count = min(module.config.data.val_items, len(module.val_set))
        batch = torch.stack([module.val_set[i] for i in range(count)])
        inputs, _ = module.task.split(batch)
        with torch.no_grad():
            outputs = module.eval_model(inputs)
        if module.config.task == "reconstruct":  # the old evaluate_run's codes: load_run(best)
            load_module(run_dir, "best")
        _, val_set = build_data(module.config)  # and validation_plausible built the data again
        get_task(module.config).plausible_targets(val_set, list(range(count)))
    else:
        run = open_run(run_dir, "last")
        _, outputs, _ = run.predict()
        run.plausible()
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_growth_mib": _peak_rss_mib() - rss_before,
            "output_sum": float(outputs.double().sum())}


def with_frozen_entries(checkpoint: Path, out: Path) -> int:
    """Write ``checkpoint`` with every loss term's frozen network added back; its size in bytes."""
    stored = torch.load(checkpoint, map_location="cpu", weights_only=True)
    module = load_module(checkpoint.parents[1], "last")
    for name, term in module.named_modules():
        for attribute in ("slices", "model"):
            network = getattr(term, attribute, None)
            if name.startswith("loss.") and isinstance(network, torch.nn.Module):
                prefix = f"{name}.{attribute}."
                if not any(key.startswith(prefix) for key in stored["state_dict"]):
                    stored["state_dict"] |= {prefix + key: value.clone()
                                             for key, value in network.state_dict().items()}
    torch.save(stored, out)
    return out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", default="mse + 0.01*perceptual(weights=random)")
    parser.add_argument("--task", default="reconstruct")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("RUN_DIR", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        torch.set_num_threads(1)
        print(json.dumps(measure(Path(args.child[0]), args.child[1])))
        return
    logging.getLogger("lightning").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        train(config_from_overrides(None, {
            "task": args.task, "data": "bundled", "loss": args.loss, "steps": 4, "out": str(run_dir),
            "crop_size": 32, "batch_size": 4, "val_every": 2, "sample_every": 0,
            "grad_share_every": 0, "accelerator": "cpu", "progress_bar": False,
            "data.val_items": 8, "data.options": {"val_size": 8}}))
        last = run_dir / "checkpoints" / "last.ckpt"
        print(f"loss {args.loss!r}, task {args.task}")
        print(f"last.ckpt: {last.stat().st_size / 1e6:.2f} MB now, "
              f"{with_frozen_entries(last, Path(folder) / 'old.ckpt') / 1e6:.2f} MB with the "
              "frozen feature network (the layout before)")
        results: dict[str, list[dict[str, float]]] = {"module": [], "model": []}
        for _ in range(args.repeats):  # alternate, so both see the same machine load
            for path in results:
                child = subprocess.run([sys.executable, __file__, "--child", str(run_dir), path],
                                       check=True, capture_output=True, text=True)
                results[path].append(json.loads(child.stdout.strip().splitlines()[-1]))
        sums = {round(r["output_sum"], 3) for runs in results.values() for r in runs}
        if len(sums) != 1:
            raise SystemExit(f"the two paths predicted different outputs: {sums}")
        for path, runs in results.items():
            cells = {key: statistics.median(r[key] for r in runs)
                     for key in ("wall_s", "cpu_s", "peak_rss_growth_mib")}
            print(f"{path:>6}: wall {cells['wall_s']:.2f} s, cpu {cells['cpu_s']:.2f} s, "
                  f"peak RSS +{cells['peak_rss_growth_mib']:.0f} MiB (median of {args.repeats})")


if __name__ == "__main__":
    main()
