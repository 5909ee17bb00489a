"""Experiment files: shipped experiments, validation messages, resolution by name or path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from losslab.experiments import (
    ExperimentError,
    experiment_from_dict,
    list_experiments,
    load_experiment,
    resolve_experiment,
)
from losslab.losses import parse_spec
from losslab.train import TrainConfig


def _minimal(**changes: object) -> dict:
    values = {"name": "t", "question": "q?", "task": "reconstruct", "data": "bundled",
              "budget": {"steps": 3}, "entries": [{"loss": "l1"}, "l1(luma)"]}
    values.update(changes)
    return values


def test_shipped_experiments_are_listed_and_valid() -> None:
    names = list_experiments()
    assert {"colors", "blur", "future", "colorize", "colorize_photos"} <= set(names)
    for name in names:
        experiment = resolve_experiment(name)
        assert experiment.name == name and experiment.question and experiment.entries
        for entry in experiment.entries:
            parse_spec(entry.loss.replace("perceptual(", "perceptual(weights=random, "))


def test_colors_entries_and_budget() -> None:
    colors = resolve_experiment("colors")
    assert [e.loss for e in colors.entries] == ["l1", "l1(luma)", "l1(red)", "l1(green)",
                                                "l1(blue)"]
    assert colors.task == "reconstruct" and colors.data == "bundled"
    assert colors.budget.steps >= 100  # the seed saw the colour effects after ~500 steps


def test_shipped_experiments_build_valid_train_configs(tmp_path: Path) -> None:
    from losslab.experiments import plan_runs

    for name in list_experiments():
        for plan in plan_runs(resolve_experiment(name), tmp_path):
            config = TrainConfig.from_dict(plan.config)
            assert config.loss == plan.loss
    blur = plan_runs(resolve_experiment("blur"), tmp_path)
    assert TrainConfig.from_dict(blur[0].config).task_options.scale == 4
    future = plan_runs(resolve_experiment("future"), tmp_path)
    configs = [TrainConfig.from_dict(p.config) for p in future]
    assert [c.hypotheses.count for c in configs] == [1, 1, 1, 4, 1, 1, 1]
    assert [c.latent.mode for c in configs] == ["none"] * 5 + ["cvae", "noise"]  # issue 19
    # every seed experiment but colors has a weight-free remedy entry (issue 10)
    for name in ("blur", "future", "colorize", "colorize_photos"):
        losses = [entry.loss for entry in resolve_experiment(name).entries]
        assert any("swd" in loss and "adversarial" not in loss for loss in losses), name


def test_defaults_and_shorthand_entries() -> None:
    experiment = experiment_from_dict(_minimal())
    assert [e.name for e in experiment.entries] == ["l1", "l1(luma)"]
    assert experiment.budget.batch_size == 16 and experiment.budget.seed == 0
    again = experiment_from_dict(yaml.safe_load(experiment.to_yaml()))
    assert again == experiment


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"questoin": "x"}, r"unknown experiment key 'questoin'\. Did you mean 'question'"),
        ({"budget": {"step": 3}},
         r"unknown experiment key 'budget\.step'\. Did you mean 'steps'.*\(1 more problem"),
        ({"budget": {"batch_size": 3}}, r"budget needs 'steps' \(optimiser steps per run"),
        ({"budget": {"steps": 0}}, r"budget.steps must be an integer >= 1; got 0"),
        ({"budget": {"steps": 3.0}}, r"budget.steps must be an integer >= 1; got 3\.0"),
        ({"task": "reconstrut"},
         r"task must be one of 'reconstruct', .*; got 'reconstrut'\. Did you mean 'reconstruct'"),
        ({"entries": []}, r"entries must be a non-empty list"),
        ({"entries": {"loss": "l1"}}, r"entries must be a non-empty list.*got \{'loss': 'l1'\}"),
        ({"entries": [{"los": "l1"}]},
         r"unknown experiment key 'entries\[0\]\.los'\. Did you mean 'loss'"),
        ({"entries": [{"name": "a"}]}, r"entries\[0\] needs 'loss' \(a loss spec such as"),
        ({"entries": [{"loss": "l1", "crop_size": 8}]},
         r"unknown experiment key 'entries\[0\]\.crop_size'\. crop_size and seed are shared"),
        ({"entries": ["l1", {"loss": "l1"}]}, r"entries\[0\] and entries\[1\] are both named 'l1'"),
        ({"perceptual_weights": "imagenett"},
         r"perceptual_weights must be one of imagenet, random, auto, or the path of a VGG19 .*"
         r"Did you mean 'imagenet'"),
        ({"entries": [{"loss": "l1", "hypotheses": 0}]},
         r"entries\[0\]\.hypotheses must be an integer >= 1; got 0"),
        # train_options is a partial training config: checked key by key when the file is read
        ({"train_options": {"val_evry": 2}},
         r"unknown experiment key 'train_options\.val_evry'\. Did you mean 'val_every'"),
        ({"entries": [{"loss": "l1", "train_options": {"optimizer": {"lr": -1}}}]},
         r"entries\[0\]\.train_options\.optimizer\.lr must be a finite number > 0 .*got -1"),
        # the same field type, the same message, in the config and the experiment
        ({"budget": {"steps": 3, "seed": -1}}, r"budget.seed must be an integer from 0 to 4294967295"),
    ],
)
def test_validation_errors_name_the_key_and_the_fix(changes: dict, message: str) -> None:
    with pytest.raises(ExperimentError, match=message) as info:
        experiment_from_dict(_minimal(**changes))
    assert "\n" not in str(info.value) and str(info.value).startswith("experiment: ")


def test_missing_fields_are_listed() -> None:
    values = _minimal()
    del values["question"], values["data"]
    with pytest.raises(ExperimentError, match=r"missing required field\(s\): question, data"):
        experiment_from_dict(values)
    del values["name"]
    values["data"] = "bundled"
    with pytest.raises(ExperimentError, match=r"missing required field\(s\): name, question\. "
                                              r"The experiment needs name, question, task"):
        experiment_from_dict(values)


def test_resolve_by_path_and_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(_minimal(name="mine")))
    assert resolve_experiment(str(path)).name == "mine"
    assert load_experiment(path).source == str(path)
    with pytest.raises(ExperimentError, match=r"Did you mean 'colors'"):
        resolve_experiment("colours")
    with pytest.raises(ExperimentError, match="no such file"):
        resolve_experiment(str(tmp_path / "absent.yaml"))
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ExperimentError, match="not valid YAML"):
        load_experiment(tmp_path / "bad.yaml")


def test_models_built_in_code_give_the_same_one_line_errors() -> None:
    from losslab.experiments import Budget, Entry

    with pytest.raises(ExperimentError, match=r"^steps must be an integer >= 1; got 0\.$"):
        Budget(steps=0)
    with pytest.raises(ExperimentError, match=r"^unknown experiment key 'los'\. Did you mean 'loss'"):
        Entry(los="l1")
    budget = Budget(steps=3)
    with pytest.raises(ExperimentError, match=r"steps cannot be changed: a validated experiment "
                                              r"is read-only"):
        budget.steps = 4
    assert budget.model_copy(update={"steps": 4}).steps == 4 and budget.steps == 3


def test_a_file_error_names_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    text = yaml.safe_dump(_minimal(), sort_keys=False).replace("budget:\n  steps: 3",
                                                               "budget:\n  steps: 3\n  sed: 1")
    path.write_text(text)
    line = text.splitlines().index("  sed: 1") + 1
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    assert str(info.value).startswith(f"{path}, line {line}, column 3: unknown experiment key "
                                      "'budget.sed'. Did you mean 'seed'")
