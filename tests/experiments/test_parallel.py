"""Runs side by side: local worker processes (--jobs) and submitit jobs (--launcher slurm)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from losslab.experiments import experiment_from_dict, run_comparison
from losslab.experiments.parallel import Job, run_local, visible_device_groups
from losslab.experiments.runner import RunsFailedError

_FAST = {"val_every": 3, "sample_every": 0, "grad_share_every": 0, "log_every": 1,
         "accelerator": "cpu", "data": {"val_items": 6}}


def _experiment(entries: list[Any], **changes: Any):
    values = {
        "name": "tiny", "question": "q", "task": "reconstruct", "data": "bundled",
        "model_options": {"width": 8, "depth": 2, "code_channels": 4},
        "budget": {"steps": 4, "batch_size": 4, "crop_size": 16, "lr": 0.01},
        "train_options": _FAST, "entries": entries,
    }
    values.update(changes)
    return experiment_from_dict(values)


def _job(value: int, *, env: dict[str, str], messages: Any) -> tuple[int, str | None]:
    """A toy run: reports one step, fails for a negative value, returns its devices."""
    os.environ.update(env)
    if value < 0:
        raise ValueError(f"bad value {value}\nsecond line")
    messages.put((value, 1, None))
    return value * 2, os.environ.get("CUDA_VISIBLE_DEVICES")


def test_device_groups_hand_out_distinct_gpus_and_refuse_too_few() -> None:
    assert visible_device_groups(2, 2, available=4) == ["0,1", "2,3"]
    assert visible_device_groups(3, 1, available=0) == [None, None, None]  # CPU: thread rule
    with pytest.raises(ValueError, match=r"needs 6 GPUs; this machine has 4\. Use --jobs 2"):
        visible_device_groups(3, 2, available=4)


@pytest.mark.slow  # starts the worker server, which imports torch and Lightning once
def test_a_failed_job_does_not_stop_the_others_and_each_job_sees_its_own_gpus() -> None:
    messages: list[Any] = []
    jobs = [Job(str(v), _job, (v,)) for v in (1, -1, 2, 3)]
    results = run_local(jobs, 2, devices_per_job=2, on_message=messages.append, available_gpus=4)
    assert results["-1"].value is None
    assert results["-1"].error == "ValueError: bad value -1"  # one line
    finished = {key: r.value for key, r in results.items() if r.error is None}
    assert {key: value[0] for key, value in finished.items()} == {"1": 2, "2": 4, "3": 6}
    assert {value[1] for value in finished.values()} <= {"0,1", "2,3"}
    assert sorted(m[0] for m in messages) == [1, 2, 3]  # progress reached this process
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        run_local(jobs, 0)


@pytest.mark.slow
def test_jobs_give_the_numbers_of_one_at_a_time_ddp_runs_inside_and_a_failure_is_listed(tmp_path: Path) -> None:
    entries = [{"loss": "l1"}, {"loss": "l1(luma)"}]
    run_comparison(_experiment(entries), tmp_path / "serial", probe=False, metamers=False,
                   progress=False)
    # an entry that passes the preflight but fails when its data are built
    broken = {"name": "broken", "loss": "l1",
              "train_options": {"data": {"options": {"val_size": 0}}}}
    # a run that uses DDP inside its job (2 CPU processes), as it may alone
    ddp = {"name": "ddp", "loss": "l1", "train_options": {"strategy": "ddp", "devices": 2}}
    with pytest.raises(RunsFailedError) as caught:
        run_comparison(_experiment([*entries, broken, ddp]), tmp_path / "jobs", jobs=2,
                       probe=False, metamers=False, progress=False)
    assert list(caught.value.failures) == ["broken"]
    assert "\n" not in caught.value.failures["broken"]
    serial = json.loads((tmp_path / "serial" / "metrics.json").read_text())
    parallel = json.loads((tmp_path / "jobs" / "metrics.json").read_text())
    for label in ("l1", "l1(luma)"):  # same threads, same seed: the same numbers, bit for bit
        assert parallel[label]["psnr"] == serial[label]["psnr"]
    # DDP takes the same global batches: the numbers of one process, up to summation order
    assert parallel["ddp"]["psnr"] == pytest.approx(serial["l1"]["psnr"], rel=1e-5)
    summary = json.loads((tmp_path / "jobs" / "comparison.json").read_text())
    assert list(summary["failed"]) == ["broken"]
    assert parallel["broken"]["psnr"] is None  # listed, without numbers
    assert (tmp_path / "jobs" / "report" / "index.html").exists() is False  # the CLI builds it


@pytest.mark.slow
def test_the_slurm_launcher_runs_through_submitit_and_reuses_finished_runs(
        tmp_path: Path) -> None:
    """submitit's LocalExecutor: the cluster code path without a cluster."""
    experiment = _experiment([{"loss": "l1"}], seeds=[0, 1],
                             launcher={"name": "slurm", "time": 5, "cpus_per_job": 1})
    run_comparison(experiment, tmp_path, submitit_cluster="local", probe=False,
                   metamers=False, progress=False)
    summary = json.loads((tmp_path / "comparison.json").read_text())
    assert sorted(summary["trained_this_call"]) == ["l1", "l1/seed-1"]
    assert summary["failed"] == {}
    assert (tmp_path / "runs" / "l1" / "seed-1" / "DONE").is_file()
    assert any((tmp_path / "slurm").rglob("*_log.out"))  # submitit's job logs
    jobs_before = len(list((tmp_path / "slurm").rglob("*_submitted.pkl")))
    run_comparison(experiment, tmp_path, submitit_cluster="local", probe=False,
                   metamers=False, progress=False)
    summary = json.loads((tmp_path / "comparison.json").read_text())
    assert summary["trained_this_call"] == []
    assert len(list((tmp_path / "slurm").rglob("*_submitted.pkl"))) == jobs_before  # no job
