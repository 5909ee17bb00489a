"""Two losslab trainings at once: how much slower is each than one alone?

Issue 11 measured 7x (``compare colors`` 782 s beside another training job against 109 s alone on
a 2-core machine): every process started one torch thread per core, so two processes ran twice as
many busy threads as there were cores. losslab now shares the cores
(:mod:`losslab.train.threads`: ``cores // running losslab trainings`` threads each).

This script trains the ``colors`` experiment's model (autoencoder width 32, depth 2, batch 16,
64x64 crops of the bundled photos, ``l1``) for ``--steps`` steps, in rounds of

- ``fixed``: torch's default thread count in every process (the old behaviour; set through
  ``LOSSLAB_THREADS=<cores>``, which switches the sharing rule off), one process alone, then two
  at once;
- ``share``: the sharing rule, one alone, then two at once;

and prints the wall-clock and CPU seconds per step of each (the training loop only, timed between
the first and the last step, so start-up is left out; CPU time sums every thread of the
process) and the slowdown, pair / alone. Rounds alternate the two modes so that a change in the
machine's other load affects both alike. On a machine shared with other work the wall times
mostly measure that work; the CPU seconds per step show the threads' wasted spinning directly.

    python benchmarks/concurrency.py --steps 60 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = "worker"


def _worker(steps: int, out: str) -> None:
    """One training; prints ``{"seconds_per_step": ...}`` (first to last step)."""
    from losslab.train import StepReporter, config_from_overrides, quiet_lightning, train

    times: dict[int, tuple[float, float]] = {}

    def report(step: int, loss: float | None) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
        times.setdefault(step, (time.perf_counter(), usage.ru_utime + usage.ru_stime))

    config = config_from_overrides(None, {
        "task": "reconstruct", "data": "bundled", "loss": "l1", "steps": steps, "out": out,
        "crop_size": 64, "batch_size": 16, "lr": 2e-3, "accelerator": "cpu",
        "val_every": steps, "sample_every": 0, "grad_share_every": 0, "log_every": 10,
        "progress_bar": False, "data.val_items": 4, "data.options": {"val_size": 4},
        "model.options": {"width": 32, "depth": 2, "code_channels": 8},
    })
    with quiet_lightning():
        train(config, callbacks=[StepReporter(report)])
    import torch

    first, last = min(times), max(times)
    steps_timed = max(1, last - first)
    print(json.dumps({"seconds_per_step": (times[last][0] - times[first][0]) / steps_timed,
                      "cpu_seconds_per_step": (times[last][1] - times[first][1]) / steps_timed,
                      "threads_at_end": torch.get_num_threads()}), flush=True)


def _launch(count: int, steps: int, mode: str, folder: Path) -> list[dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "LOSSLAB_THREADS")}
    if mode == "fixed":
        env["LOSSLAB_THREADS"] = str(len(os.sched_getaffinity(0)))
    processes = [
        subprocess.Popen([sys.executable, __file__, WORKER, str(steps), str(folder / f"{mode}{i}")],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for i in range(count)
    ]
    results = []
    for process in processes:
        output, _ = process.communicate()
        line = [text for text in output.splitlines() if text.startswith("{")][-1]
        results.append(json.loads(line))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    keys = ("seconds_per_step", "cpu_seconds_per_step")
    measured: dict[str, dict[str, list[dict[str, float]]]] = {
        m: {"alone": [], "pair": []} for m in ("fixed", "share")}
    print(f"start: {os.getloadavg()} load average, {len(os.sched_getaffinity(0))} cores", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            order = ("fixed", "share") if round_index % 2 == 0 else ("share", "fixed")
            for mode in order:
                round_folder = Path(folder) / f"r{round_index}"
                alone = _launch(1, args.steps, mode, round_folder / "alone")
                pair = _launch(2, args.steps, mode, round_folder / "pair")
                measured[mode]["alone"] += alone
                measured[mode]["pair"] += pair
                print(f"round {round_index} {mode}: alone "
                      f"{alone[0][keys[0]]:.3f} s/step ({alone[0][keys[1]]:.3f} CPU s/step), pair "
                      + " / ".join(f"{p[keys[0]]:.3f} ({p[keys[1]]:.3f})" for p in pair)
                      + f", load {os.getloadavg()[0]:.1f}", flush=True)
    for mode, values in measured.items():
        summary = {key: {kind: statistics.median(r[key] for r in values[kind])
                         for kind in ("alone", "pair")} for key in keys}
        wall, cpu = summary[keys[0]], summary[keys[1]]
        print(f"{mode}: wall alone {wall['alone']:.3f} s/step, pair {wall['pair']:.3f} s/step "
              f"(slowdown {wall['pair'] / wall['alone']:.2f}x); CPU alone {cpu['alone']:.3f} "
              f"s/step, pair {cpu['pair']:.3f} s/step ({cpu['pair'] / cpu['alone']:.2f}x)")
    print(f"end: {os.getloadavg()} load average", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == WORKER:
        _worker(int(sys.argv[2]), sys.argv[3])
    else:
        main()
