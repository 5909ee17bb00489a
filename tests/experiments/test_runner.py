"""How often a comparison validates each training config, builds each loss spec and makes each
task adapter, counted on a real tiny comparison (training, evaluation, probe, metamers)."""

from __future__ import annotations

import collections
import json
import traceback
from pathlib import Path
from typing import Any

import pytest

import losslab.losses.spec as spec_module
import losslab.train.config as config_module
import losslab.train.tasks as tasks_module
from losslab.core.records import COMPARISON_FILE, ComparisonRecord, read_record
from losslab.experiments import experiment_from_dict, run_comparison


def _callers() -> list[str]:
    """The losslab modules on the stack, innermost first (``experiments/preflight.py``)."""
    return [frame.filename.split("/losslab/")[-1] for frame in traceback.extract_stack()[::-1]
            if "/src/losslab/" in frame.filename or "/site-packages/losslab/" in frame.filename]


@pytest.mark.slow
def test_each_config_is_validated_and_each_spec_built_once_by_the_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts: collections.Counter[str] = collections.Counter()
    parse, validated, task_class = (spec_module.parse_spec, config_module.validated,
                                    tasks_module.get_task_class)

    def counted_parse(spec: Any, **options: Any) -> Any:
        runner_built = _callers()[1].startswith("experiments/")  # [0] is losses/spec.py
        counts[f"spec {spec}" + (" by the runner" if runner_built else "")] += 1
        return parse(spec, **options)

    def counted_validated(model: type, raw: Any, **options: Any) -> Any:
        if model is config_module.TrainConfig:  # a file read back names its origin
            counts["config from " + ("a file" if options.get("origin") else "values")] += 1
        return validated(model, raw, **options)

    def counted_task_class(name: str) -> Any:
        counts["task"] += 1
        return task_class(name)

    monkeypatch.setattr(spec_module, "parse_spec", counted_parse)
    monkeypatch.setattr(config_module, "validated", counted_validated)
    monkeypatch.setattr(tasks_module, "get_task_class", counted_task_class)
    experiment = experiment_from_dict({
        "name": "tiny", "question": "q", "task": "reconstruct", "data": "bundled",
        "model_options": {"width": 8, "depth": 2, "code_channels": 4},
        "budget": {"steps": 2, "batch_size": 4, "crop_size": 16, "lr": 0.01},
        "train_options": {"val_every": 2, "sample_every": 0, "log_every": 1,
                          "accelerator": "cpu", "data": {"val_items": 4}},
        "entries": [{"loss": "l1"}, {"loss": "l1(luma)"}],
    })
    run_comparison(experiment, tmp_path, progress=False, probe_image_size=32,
                   metamer_image_size=16, metamer_steps=2)
    for spec in ("l1", "l1(luma)"):
        assert counts[f"spec {spec} by the runner"] == 1  # preflight; was 2 (metamer size too)
        # and once each by the trainer, the probe and the synthesis (which builds its own
        # copy to check, then one to optimise): modules with state of their own
        assert counts[f"spec {spec}"] == 4
    # the planned values once per run (was 3: preflight, the runner again, train); evaluation
    # reads the run back from its config.yaml once, as `losslab evaluate RUN_DIR` does
    assert counts["config from values"] == 2
    assert counts["config from a file"] == 2
    assert counts["task"] == 2 * 4  # per run: 2 in the trainer's module, 2 in evaluation (was 5)

    record = read_record(ComparisonRecord, tmp_path / COMPARISON_FILE)
    assert [run.run_dir for run in record.runs] == ["l1", "l1-luma"]
    assert json.loads((tmp_path / COMPARISON_FILE).read_text())["version"] == 1
