"""The comparison runner: planning, resume of killed comparisons, overrides, files written."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import losslab
import losslab.train
from losslab.experiments import (
    ExperimentError,
    experiment_from_dict,
    load_experiment,
    resolve_budget,
    run_comparison,
)
from losslab.experiments import metamers as metamers_module
from losslab.experiments import preflight as preflight_module
from losslab.experiments import probing as probing_module
from losslab.experiments import runner as runner_module
from losslab.experiments import training as training_module


def _experiment(**changes: Any):
    values = {
        "name": "tiny", "question": "Does it run?", "task": "reconstruct", "data": "bundled",
        "model_options": {"width": 8, "depth": 2, "code_channels": 4},
        "budget": {"steps": 4, "batch_size": 4, "crop_size": 16, "lr": 0.01},
        "train_options": {"val_every": 2, "sample_every": 0, "grad_share_every": 2,
                          "log_every": 1, "accelerator": "cpu", "data": {"val_items": 6}},
        "entries": [{"loss": "l1"}, {"loss": "l1(luma)"}],
    }
    values.update(changes)
    return experiment_from_dict(values)


class FakeTrainer:
    """Stands in for train.train and evaluate_run: records calls, writes a minimal run."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.trained: list[str] = []
        self.fail_on = fail_on

    def train(self, config: Any, callbacks: Any = ()) -> None:
        name = Path(config.out).name
        if name == self.fail_on:
            raise KeyboardInterrupt  # the comparison is killed while this run trains
        self.trained.append(name)
        (Path(config.out) / "checkpoints").mkdir(parents=True, exist_ok=True)
        (Path(config.out) / "config.yaml").write_text(config.to_yaml())
        torch.save({"global_step": config.steps, "losslab": {}},
                   Path(config.out) / "checkpoints" / "last.ckpt")

    def evaluate(self, run_dir: Path, samples: int = 8) -> dict:
        metrics = {"psnr": 20.0 + len(self.trained), "unavailable": {}}
        (Path(run_dir) / "metrics.json").write_text(json.dumps(metrics))
        return metrics


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTrainer:
    trainer = FakeTrainer()
    monkeypatch.setattr(training_module, "train", trainer.train)
    monkeypatch.setattr(training_module, "evaluate_run", trainer.evaluate)
    return trainer


def test_a_killed_comparison_continues_with_only_the_missing_runs(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    fake.fail_on = "l1-luma"
    with pytest.raises(KeyboardInterrupt):
        run_comparison(_experiment(), tmp_path, probe=False, progress=False)
    assert fake.trained == ["l1"]
    assert (tmp_path / "runs" / "l1" / "DONE").is_file()
    assert not (tmp_path / "runs" / "l1-luma" / "DONE").exists()

    fake.fail_on = None
    run_comparison(_experiment(), tmp_path, probe=False, progress=False)
    assert fake.trained == ["l1", "l1-luma"]  # only the missing run trained
    summary = json.loads((tmp_path / "comparison.json").read_text())
    assert summary["trained_this_call"] == ["l1-luma"]

    run_comparison(_experiment(), tmp_path, probe=False, progress=False)
    assert fake.trained == ["l1", "l1-luma"]  # everything done: nothing trains


def test_done_runs_with_other_settings_are_refused(fake: FakeTrainer, tmp_path: Path) -> None:
    run_comparison(_experiment(), tmp_path, probe=False, progress=False)
    with pytest.raises(ExperimentError, match=r"finished with other settings .*steps: 4 -> 9"):
        run_comparison(_experiment(), tmp_path, steps=9, probe=False,
                       progress=False)


def test_a_bad_loss_fails_before_any_training(fake: FakeTrainer, tmp_path: Path) -> None:
    experiment = _experiment(entries=[{"loss": "l1"}, {"loss": "l1(lumma)"}])
    with pytest.raises(ExperimentError, match=r"entry 'l1\(lumma\)': cannot build its loss"):
        run_comparison(experiment, tmp_path, probe=False, progress=False)
    assert fake.trained == []
    # a typo in train_options fails when the experiment is read (a partial TrainConfig) ...
    with pytest.raises(ExperimentError, match=r"unknown experiment key 'train_options.val_evry'"
                                              r"\. Did you mean 'val_every'"):
        _experiment(train_options={"val_evry": 2})
    # ... and a combination that only the whole config can judge, before any training
    uneven = _experiment(train_options={"devices": 3})  # batch 4 over 3 processes
    with pytest.raises(ExperimentError, match=r"not a valid TrainConfig: data.batch_size \(4\) "
                                              r"is the global batch .* multiple of 3"):
        run_comparison(uneven, tmp_path, probe=False, progress=False)
    assert fake.trained == []


def test_metrics_files_and_resolved_experiment(fake: FakeTrainer, tmp_path: Path) -> None:
    experiment = _experiment(entries=[{"name": "plain L1", "loss": "l1"}, {"loss": "l1(luma)"}])
    result = run_comparison(experiment, tmp_path, probe=False, progress=False)
    assert result == tmp_path
    table = json.loads((tmp_path / "metrics.json").read_text())
    assert list(table) == ["plain L1", "l1(luma)"]  # human names as keys
    assert table["plain L1"]["run_dir"] == "plain-L1" and table["plain L1"]["psnr"] == 21.0
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [r["name"] for r in rows] == ["plain L1", "l1(luma)"]
    assert rows[1]["run_dir"] == "l1-luma" and rows[1]["psnr"] == "22.0"
    resolved = yaml.safe_load((tmp_path / "experiment.yaml").read_text())
    assert resolved["budget"]["steps"] == 4 and len(resolved["entries"]) == 2
    done = json.loads((tmp_path / "runs" / "plain-L1" / "DONE").read_text())
    assert done["loss"] == "l1" and done["config"]["steps"] == 4


def test_budget_scaling_and_step_override() -> None:
    experiment = _experiment(entries=[{"loss": "l1", "steps": 10}, {"loss": "mse"}])
    scaled = resolve_budget(experiment, budget_scale=2.5)
    assert scaled.budget.steps == 10 and scaled.entries[0].steps == 25
    fixed = resolve_budget(experiment, steps=7, budget_scale=100)
    assert fixed.budget.steps == 7 and fixed.entries[0].steps == 7
    with pytest.raises(ValueError, match="budget_scale must be a positive number"):
        resolve_budget(experiment, budget_scale=0)
    with pytest.raises(ValueError, match="perceptual_weights must be one of"):
        resolve_budget(experiment, perceptual_weights="imagenet1k")


def test_perceptual_weights_are_written_into_the_specs() -> None:
    experiment = _experiment(entries=[{"loss": "mse + 0.01*perceptual(layers=relu1_2)"}],
                             perceptual_weights="imagenet")
    assert resolve_budget(experiment).entries[0].loss == \
        "mse + 0.01*perceptual(layers=relu1_2, weights=imagenet)"
    assert resolve_budget(experiment, perceptual_weights="random").entries[0].loss == \
        "mse + 0.01*perceptual(layers=relu1_2, weights=random)"


def test_a_weights_file_reaches_every_perceptual_term(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``--perceptual-weights PATH`` (the CLI help promises it) and ``perceptual_weights: PATH``
    in a file: made absolute, quoted into each spec, and read by the loss."""
    weights = tmp_path / "my vgg's.pth"  # a space and a quote: the spec must quote it correctly
    torch.save({}, weights)  # not a VGG19 state dict: the loss says so, naming the file
    monkeypatch.chdir(tmp_path)
    experiment = _experiment(entries=[{"loss": "mse + 0.01*perceptual(layers=relu1_2)"},
                                      {"loss": "perceptual(weights=random)"}])
    resolved = resolve_budget(experiment, perceptual_weights="my vgg's.pth")  # relative to cwd
    assert resolved.perceptual_weights == str(weights.resolve())
    spec = resolved.entries[0].loss
    assert spec == f'mse + 0.01*perceptual(layers=relu1_2, weights="{weights.resolve()}")'
    assert resolved.entries[1].loss == "perceptual(weights=random)"  # named weights are kept
    with pytest.raises(ValueError, match=r"is not a torchvision VGG19 state dict") as info:
        losslab.loss(spec)
    assert str(weights.resolve()) in str(info.value)
    with pytest.raises(ValueError, match=r"perceptual_weights must be one of imagenet, random, "
                                         r"auto, or the path .*no such file"):
        resolve_budget(experiment, perceptual_weights="weights/absent.pth")
    # in an experiment file the path is relative to the file's folder
    folder = tmp_path / "experiments"
    folder.mkdir()
    values = yaml.safe_load(experiment.to_yaml())
    values["perceptual_weights"] = "../my vgg's.pth"
    (folder / "mine.yaml").write_text(yaml.safe_dump(values))
    monkeypatch.chdir(folder.parent.parent)
    assert load_experiment(folder / "mine.yaml").perceptual_weights == str(weights.resolve())


def test_missing_weights_point_to_the_compare_flag(
    fake: FakeTrainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from losslab.weights import WeightsUnavailableError

    def offline(spec: str, **_: Any) -> None:
        raise WeightsUnavailableError("VGG19 ImageNet is not available: no file.")

    monkeypatch.setattr(preflight_module, "build_loss", offline)
    experiment = _experiment(entries=[{"loss": "mse + 0.01*perceptual"}])
    with pytest.raises(ExperimentError, match=r"not available.*--perceptual-weights random"):
        run_comparison(experiment, tmp_path, probe=False, progress=False)
    assert fake.trained == []


def test_a_super_resolution_comparison_gets_the_bicubic_baseline_row(
    fake: FakeTrainer, tmp_path: Path
) -> None:
    from losslab.report import build_report

    experiment = _experiment(task="super_resolve", model_options={"width": 8},
                             train_options={"task_options": {"scale": 2},
                                            "data": {"val_items": 6}})
    run_comparison(experiment, tmp_path, probe=False, progress=False)
    summary = json.loads((tmp_path / "comparison.json").read_text())
    first = summary["runs"][0]
    assert first["baseline"] is True and first["label"] == "bicubic (baseline)"
    assert [run["baseline"] for run in summary["runs"][1:]] == [False, False]
    table = json.loads((tmp_path / "metrics.json").read_text())
    assert list(table) == ["bicubic (baseline)", "l1", "l1(luma)"]
    bicubic = table["bicubic (baseline)"]
    assert bicubic["baseline"] is True and 15 < bicubic["psnr"] < 40
    assert 0 < bicubic["grad_ratio"] < 1  # bicubic upsampling is blurrier than the target
    run_dir = tmp_path / "runs" / first["run_dir"]
    assert (run_dir / "DONE").is_file()
    assert len(json.loads((run_dir / "metrics.json").read_text())["per_image"]["psnr"]) == 6
    html = build_report(tmp_path).read_text()
    assert "no training" in html and "untrained baseline" in html
    assert 'src="psnr_per_image.png"' in html and "pooled over the validation set" in html


def test_reconstruction_has_no_baseline_row(fake: FakeTrainer, tmp_path: Path) -> None:
    run_comparison(_experiment(), tmp_path, probe=False, progress=False)
    summary = json.loads((tmp_path / "comparison.json").read_text())
    assert not any(run["baseline"] for run in summary["runs"])
    assert not any(path.name.startswith("baseline") for path in (tmp_path / "runs").iterdir())


def test_auto_perceptual_weights_use_imagenet_only_where_the_file_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from losslab.weights import get_weights_info

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: an offline machine
    experiment = _experiment(entries=[{"loss": "mse + 0.01*perceptual(layers=relu1_2)"}],
                             perceptual_weights="auto")
    offline = resolve_budget(experiment)
    assert offline.perceptual_weights == "random"
    assert offline.entries[0].loss.endswith("weights=random)")
    path = get_weights_info("vgg19-imagenet").path
    path.parent.mkdir(parents=True)
    path.write_bytes(b"stands in for the cached file")
    online = resolve_budget(experiment)
    assert online.perceptual_weights == "imagenet"
    assert online.entries[0].loss.endswith("weights=imagenet)")
    assert resolve_budget(experiment, perceptual_weights="random").perceptual_weights == "random"


def test_the_shipped_blur_comparison_builds_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from losslab.experiments import resolve_experiment
    from losslab.experiments.runner import plan_runs, preflight

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))  # no cached weights at all
    resolved = resolve_budget(resolve_experiment("blur"))
    assert resolved.perceptual_weights == "random"
    plans = plan_runs(resolved, tmp_path)
    preflight(plans)  # every default entry's loss builds without ImageNet weights
    assert all("weights=imagenet" not in plan.loss for plan in plans)


def test_metamer_rows_per_entry_without_adversarial_terms(fake: FakeTrainer,
                                                          tmp_path: Path) -> None:
    experiment = _experiment(entries=[
        {"loss": "l1(luma)"},
        {"name": "with gan", "loss": "mse + 0.01*adversarial(objective=hinge)"},
        {"name": "gan only", "loss": "adversarial"},
        {"name": "again", "loss": "l1(luma)"},
    ])
    run_comparison(experiment, tmp_path, probe=False, progress=False,
                   metamer_image_size=24, metamer_steps=40)
    payload = json.loads((tmp_path / "metamers.json").read_text())
    assert payload["labels"] == ["l1(luma)", "with gan", "again"]  # "gan only" has no row
    assert [row["spec"] for row in payload["results"]] == ["l1(luma)", "mse", "l1(luma)"]
    assert "adversarial" in payload["notes"]["with gan"]
    assert payload["notes"]["gan only"].startswith("no row")
    assert list(payload["results"][0]["starts"]) == list(metamers_module.METAMER_STARTS)
    assert payload["results"][0]["image_size"] == [24, 24]
    assert (tmp_path / "metamers.png").is_file()


def test_an_entry_can_be_left_out_of_the_metamer_rows(fake: FakeTrainer,
                                                     tmp_path: Path) -> None:
    experiment = _experiment(entries=[{"loss": "l1"}, {"loss": "mse", "metamer": False}])
    assert experiment.to_dict()["entries"][1]["metamer"] is False  # round trip
    run_comparison(experiment, tmp_path, probe=False, progress=False,
                   metamer_image_size=16, metamer_steps=5)
    payload = json.loads((tmp_path / "metamers.json").read_text())
    assert payload["labels"] == ["l1"]
    assert "metamer: false" in payload["notes"]["mse"]
    assert fake.trained == ["l1", "mse"]  # it still trains and is scored


def test_metamer_image_grows_to_what_a_loss_needs(fake: FakeTrainer, tmp_path: Path) -> None:
    experiment = _experiment(entries=[{"loss": "mse"}, {"loss": "ms_ssim(scales=3)"}])
    run_comparison(experiment, tmp_path, probe=False, progress=False,
                   metamer_image_size=16, metamer_steps=5)
    payload = json.loads((tmp_path / "metamers.json").read_text())
    assert payload["results"][0]["image_size"] == [41, 41]  # 3-scale MS-SSIM needs 41 px


def test_a_failing_synthesis_is_recorded_not_fatal(fake: FakeTrainer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise FloatingPointError("the metamer of 'l1' diverged")

    monkeypatch.setattr(metamers_module, "write_metamers", fail)
    run_comparison(_experiment(), tmp_path, probe=False, progress=False)
    payload = json.loads((tmp_path / "metamers.json").read_text())
    assert payload["error"] == "the metamer of 'l1' diverged"
    assert not (tmp_path / "metamers.png").exists()
    assert (tmp_path / "metrics.json").is_file()  # the comparison still finished


@pytest.mark.parametrize("damage", ["empty DONE", "missing checkpoint", "short checkpoint",
                                    "missing metrics"])
def test_a_done_run_is_reused_only_when_its_marker_checkpoint_and_metrics_are_sound(
    fake: FakeTrainer, tmp_path: Path, damage: str
) -> None:
    """Issue 11: an empty DONE beside a missing checkpoint was reused (a row of dashes, exit 0)."""
    run_comparison(_experiment(), tmp_path, probe=False, progress=False)
    assert fake.trained == ["l1", "l1-luma"]
    run = tmp_path / "runs" / "l1"
    if damage == "empty DONE":
        (run / "DONE").write_text("")
    elif damage == "missing checkpoint":
        (run / "checkpoints" / "last.ckpt").unlink()
    elif damage == "short checkpoint":
        torch.save({"global_step": 2, "losslab": {}}, run / "checkpoints" / "last.ckpt")
    else:
        (run / "metrics.json").unlink()
    with pytest.warns(UserWarning, match="training and evaluating it again"):
        run_comparison(_experiment(), tmp_path, probe=False, progress=False)
    assert fake.trained == ["l1", "l1-luma", "l1"]  # only the damaged run, once more
    assert json.loads((run / "DONE").read_text())["label"] == "l1"
    run_comparison(_experiment(), tmp_path, probe=False, progress=False)
    assert fake.trained == ["l1", "l1-luma", "l1"]  # now sound: reused


def test_an_entrys_latent_reaches_its_config_and_its_identity(fake: FakeTrainer,
                                                              tmp_path: Path) -> None:
    latent = {"mode": "cvae", "dim": 4, "kl_weight": "1e-3@ramp(2,3)"}
    experiment = _experiment(entries=[{"loss": "l1"}, {"name": "cvae", "loss": "l1",
                                                       "latent": latent}])
    plain, cvae = runner_module.plan_runs(experiment, tmp_path)
    assert "latent" not in plain.config  # plain runs keep the identity they had
    assert cvae.config["latent"] == latent
    assert losslab.train.TrainConfig.from_dict(cvae.config).latent.dim == 4
    assert experiment_from_dict(experiment.to_dict()).entries[1].latent.mode == "cvae"
    run_comparison(experiment, tmp_path, probe=False, metamers=False, progress=False)
    changed = _experiment(entries=[{"loss": "l1"}, {"name": "cvae", "loss": "l1",
                                                    "latent": {**latent, "dim": 5}}])
    with pytest.raises(ExperimentError, match="latent"):  # a finished run notices the change
        run_comparison(changed, tmp_path, probe=False, metamers=False, progress=False)


def test_sample_based_entries_are_left_out_of_the_probe_and_the_metamers(tmp_path: Path) -> None:
    experiment = _experiment(entries=[
        {"loss": "l1"},
        {"name": "es", "loss": "energy_score(alpha=0.95)", "latent": {"mode": "noise"}}])
    plans = runner_module.plan_runs(experiment, tmp_path)
    notes = probing_module.run_probe(plans, tmp_path, image_size=32)
    assert notes["l1"]["spec"] == "l1"
    assert notes["es"]["spec"] is None and "sample-based" in notes["es"]["note"]
    probed = json.loads((tmp_path / "probe.json").read_text())
    assert "energy_score" not in json.dumps(probed)
    metamers_module.run_metamers(plans, tmp_path, size=32, steps=2)
    metamers = json.loads((tmp_path / "metamers.json").read_text())
    assert "error" not in metamers and "sample-based" in metamers["notes"]["es"]
