"""TrainConfig: defaults, YAML round trip, error messages with close matches, CLI overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from losslab.train import TrainConfig, config_from_overrides, load_config, save_config
from losslab.train.config import RESUME_SAFE_FIELDS, config_differences, flatten
from losslab.train.config_errors import ConfigError

#: A config that sets a non-default value in every section.
EVERY_FIELD_SET: dict = {
    "task": "super_resolve", "loss": "mse + 0.01*l1@ramp(10,20)", "steps": 7, "seed": 3,
    "data": {"name": "dead_leaves", "crop_size": 48, "options": {"train_size": 8}},
    "model": {"name": "super_resolution", "options": {"width": 16}},
    "task_options": {"scale": 4, "downscale_method": "area"},
    "hypotheses": {"count": 3, "mode": "wta", "epsilon": 0.1},
    "optimizer": {"lr": 2e-4, "betas": [0.5, 0.9]}, "precision": "bf16-mixed",
    "deterministic": True,
}


def test_yaml_round_trip_keeps_every_field(tmp_path: Path) -> None:
    config = TrainConfig.from_dict(EVERY_FIELD_SET)
    path = save_config(config, tmp_path / "config.yaml")
    loaded = load_config(path)
    assert loaded == config
    assert loaded.optimizer.betas == (0.5, 0.9)
    assert loaded.to_dict() == config.to_dict()
    assert not list(tmp_path.glob("*.tmp"))  # written via a temp file, then renamed


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"stepz": 3}, "Did you mean 'steps'"),
        ({"data": {"crop": 32}}, "'data.crop'. Did you mean 'crop_size'"),
        ({"task": "reconstrut"}, "Did you mean 'reconstruct'"),
        ({"data": {"name": "bundeld"}}, "Did you mean 'bundled'"),
        ({"model": {"name": "unett"}}, "Did you mean 'unet'"),
        ({"precision": "16"}, "'32', '16-mixed', 'bf16-mixed'"),
        ({"strategy": "dp"}, "Did you mean 'ddp'"),
        ({"hypotheses": {"mode": "hard"}}, "'relaxed', 'wta'"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"task_options": {"scale": 3}}, "scale must be 2 or 4"),
        ({"hypotheses": {"epsilon": 1.0}}, "epsilon must be a number in [0, 1)"),
        ({"hypotheses": {"assignment": "aneal"}}, "Did you mean 'annealed'"),
        ({"hypotheses": {"count": 4, "assignment": "evolving", "mode": "wta"}},
         "applies to assignment 'relaxed' only"),
        ({"hypotheses": {"count": 4, "assignment": "annealed", "temperature_end": 0.0}},
         "temperature_schedule: linear"),
        ({"hypotheses": {"scores": True}}, "scores needs hypotheses.count >= 2"),
        ({"data": {"batch_size": 6}, "devices": 4}, "multiple of 4"),
    ],
)
def test_bad_values_raise_clear_errors(values: dict, expected: str) -> None:
    with pytest.raises(ValueError) as info:
        TrainConfig.from_dict(values)
    assert expected in str(info.value)


def test_overrides_convert_cli_strings_and_aliases(tmp_path: Path) -> None:
    config = config_from_overrides(None, {
        "task": "colorize", "data": "dead_leaves", "steps": "1500", "lr": "1e-4",
        "crop_size": "48", "hypotheses": "2", "data.options": "{train_size: 16}",
        "check_values": "false", "deterministic": "warn", "seed": None,  # None = flag not given
    })
    assert (config.task, config.data.name, config.steps) == ("colorize", "dead_leaves", 1500)
    assert config.optimizer.lr == pytest.approx(1e-4)
    assert config.data.crop_size == 48 and config.hypotheses.count == 2
    assert config.data.options == {"train_size": 16}
    assert config.check_values is False and config.seed == TrainConfig().seed


def test_overrides_apply_on_top_of_a_yaml_file(tmp_path: Path) -> None:
    path = save_config(TrainConfig(loss="mse", steps=10), tmp_path / "base.yaml")
    config = config_from_overrides(path, {"steps": 20, "out": "runs/y"})
    assert (config.loss, config.steps, config.out) == ("mse", 20, "runs/y")


def test_one_option_key_can_be_set_with_a_dotted_override() -> None:
    config = config_from_overrides(None, {
        "model.options": "{depth: 2}", "model.options.width": "8",
        "data.options.images": "[astronaut, coffee]", "model.options.name": "x",
    })
    assert config.model.options == {"depth": 2, "width": 8, "name": "x"}
    assert config.data.options == {"images": ["astronaut", "coffee"]}
    with pytest.raises(ValueError, match=r"Did you mean 'model\.options'"):
        config_from_overrides(None, {"model.option.width": "8"})


def test_unknown_override_suggests_the_flag() -> None:
    with pytest.raises(ValueError, match="Did you mean 'crop_size'"):
        config_from_overrides(None, {"cropsize": 32})
    with pytest.raises(ValueError, match="cannot be read as int"):
        config_from_overrides(None, {"steps": "many"})


def test_fingerprint_ignores_resume_safe_fields_only() -> None:
    base = TrainConfig()
    assert TrainConfig(steps=5, out="elsewhere", devices=2, data=base.data).fingerprint() == base.fingerprint()
    changed = TrainConfig(loss="mse")
    assert changed.fingerprint() != base.fingerprint()
    assert config_differences(base, changed) == ["loss: 'l1' -> 'mse'"]
    assert set(flatten(base.to_dict())) >= RESUME_SAFE_FIELDS  # every safe name is a real field


def test_fingerprints_of_existing_runs_are_unchanged() -> None:
    """Checkpoints store the fingerprint; these values were computed by the dataclass
    implementation this schema replaced (commit 3ccc2f9), so old runs still resume."""
    assert TrainConfig().fingerprint() == "4a4e5e25ecbecf4e"
    config = TrainConfig.from_dict(EVERY_FIELD_SET)
    assert config.fingerprint() == "a054542bcc1831d3"
    assert list(config.to_dict()) == list(TrainConfig.model_fields)  # the YAML's key order


def test_the_task_list_is_the_task_table() -> None:
    from losslab.train.config import TASKS
    from losslab.train.tasks import TASKS_TABLE

    assert sorted(TASKS) == TASKS_TABLE.names()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"steps": 3.0}, "steps must be an integer >= 1; got 3.0."),
        ({"steps": "3"}, "steps must be an integer >= 1; got '3'."),
        ({"steps": True}, "steps must be an integer >= 1; got True."),
        ({"optimizer": {"lr": True}}, "optimizer.lr must be a finite number > 0 such as 1e-3; got True."),
        ({"optimizer": {"betas": 0.9}}, "optimizer.betas must be two numbers in [0, 1) such as "
                                        "[0.9, 0.999]; got 0.9."),
        ({"data": 5}, "data must be a mapping (key: value lines); got 5."),
        ([1, 2], "the config must be a mapping (key: value lines); got list [1, 2]."),
        ({"devices": "all"}, "devices must be a positive integer or 'auto'; got 'all'."),
        ({"task": "colourize"}, "task must be one of 'reconstruct', 'super_resolve', "
                                "'predict_next', 'colorize'; got 'colourize'. Did you mean "
                                "'colorize'?"),
        ({"steps": 0, "seed": -1}, "steps must be an integer >= 1; got 0. (1 more problem after "
                                   "this one.)"),
    ],
)
def test_bad_types_are_one_line_value_errors(values: object, expected: str) -> None:
    """Strict types (a YAML ``3.0`` or ``"3"`` is a typo, not an integer), one ValueError type,
    one line, the value shown; never pydantic's multi-line dump."""
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(values)
    assert str(info.value) == expected
    assert isinstance(info.value, ValueError)


def test_yaml_quirks_keep_their_meaning() -> None:
    config = TrainConfig.from_dict({"precision": 32, "data": None, "optimizer": {"lr": 1}})
    assert config.precision == "32" and config.data == TrainConfig().data
    assert config.optimizer.lr == 1.0 and isinstance(config.optimizer.lr, float)


def test_a_config_file_error_names_the_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("loss: l1\ndata:\n  crop_size: 32\n  bach_size: 4\noptimizer: {lr: .inf}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(
        f"config file {str(path)!r}, line 4, column 3: unknown config key 'data.bach_size'. "
        "Did you mean 'batch_size'")
    assert str(info.value).endswith("(1 more problem after this one.)")
    path.write_text("loss: l1\noptimizer: {lr: .inf}\n")
    with pytest.raises(ConfigError, match=r"line 2, column 17: optimizer\.lr must be a finite "
                                          r"number > 0 such as 1e-3; got inf\."):
        load_config(path)


def test_sections_built_or_changed_in_code_get_the_same_messages() -> None:
    from losslab.train.config import DataConfig

    with pytest.raises(ConfigError, match=r"^crop_size must be an integer >= 1; got 'x'\.$"):
        DataConfig(crop_size="x")
    config = TrainConfig()
    with pytest.raises(ConfigError, match=r"^progress_bar must be true or false; got 'yes'\.$"):
        config.progress_bar = "yes"
    config.progress_bar = False  # a valid change is applied
    assert config.progress_bar is False
    config.data.crop_size = 45  # a section alone cannot know the model: validate() checks all
    with pytest.raises(ConfigError, match="Use crop_size 40 or 48"):
        config.validate()


#: A run's config.yaml as the dataclass implementation (commit 3ccc2f9) wrote it.
OLD_CONFIG_YAML = """\
task: super_resolve
loss: mse + 0.01*l1@ramp(10,20)
steps: 7
out: runs/run
name: ''
seed: 3
data:
  name: dead_leaves
  crop_size: 48
  batch_size: 8
  num_workers: 0
  val_items: 16
  sample_count: 6
  options:
    train_size: 8
model:
  name: super_resolution
  options:
    width: 16
task_options:
  scale: 4
  downscale_method: area
  context_frames: null
hypotheses:
  count: 3
  mode: wta
  epsilon: 0.1
optimizer:
  lr: 0.0002
  betas:
  - 0.5
  - 0.9
  weight_decay: 0.0
checkpoint:
  save_best: true
  resume: true
precision: bf16-mixed
accelerator: auto
devices: 1
num_nodes: 1
strategy: auto
val_every: 100
sample_every: 100
grad_share_every: 50
log_every: 10
progress_bar: true
check_values: true
deterministic: true
ema_decay: 0.0
skip_nonfinite: 0
"""


def test_an_existing_runs_config_yaml_loads_and_is_written_back_identically(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(OLD_CONFIG_YAML)
    config = load_config(path)
    assert config.fingerprint() == "a054542bcc1831d3"  # its checkpoints still resume
    assert config.to_yaml() == OLD_CONFIG_YAML


def test_run_identity_is_the_one_definition_of_a_run_and_of_what_may_resume() -> None:
    from losslab.train.config import LATER_FIELDS, RESUME_SAFE_FIELDS, run_identity

    config = TrainConfig.from_dict({"loss": "l1", "steps": 4, "optimizer": {"lr": 0.01},
                                    "out": "runs/a"})
    values = config.to_dict()
    finished = run_identity(values)
    resumable = run_identity(values, resuming=True)
    assert config.identity() == resumable
    assert finished["steps"] == 4 and finished["optimizer.lr"] == 0.01 and "out" not in finished
    assert not set(resumable) & RESUME_SAFE_FIELDS
    assert set(finished) - set(resumable) <= RESUME_SAFE_FIELDS
    moved = {**values, "out": "elsewhere/a"}  # where a run lives is not what it is
    assert run_identity(moved) == finished
    # a field added later counts only away from its default (runs written before it reuse)
    key, default = next(iter(LATER_FIELDS.items()))
    section, name = key.split(".")
    assert key not in finished
    assert run_identity({**values, section: {**values[section], name: default}}) == finished
