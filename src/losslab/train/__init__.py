"""Training: one LightningModule for every task, a YAML config, crash-safe checkpoints and resume.

Entry points:

- :func:`train` (``TrainConfig`` → run directory, :class:`RunResult`);
  :func:`train_from_args` / :func:`config_from_overrides` for the ``losslab train`` command;
  :class:`TrainConfig` (and :class:`TrainSettings`, a partial one) raise :class:`ConfigError`.
- :func:`open_run` (``run_dir`` → :class:`LoadedRun`: config, model, validation set; nothing
  else is built), :func:`load_run` (``run_dir`` → ``(model, config)``) and
  :func:`predict_validation` (``run_dir`` → ``(inputs, outputs, targets)``) for evaluation;
  :func:`baseline_validation` (the task's untrained baseline on the same items) and
  :func:`validation_plausible` (their plausible targets, when the data knows them).
- :class:`TaskModule`, the LightningModule; :mod:`losslab.train.tasks` the task adapters;
  :func:`gradient_shares`, which loss term drives the update.
"""

from losslab.train.config import (
    CheckpointConfig,
    ConfigError,
    DataConfig,
    HypothesesConfig,
    ModelConfig,
    OptimizerConfig,
    TaskOptions,
    TrainConfig,
    TrainSettings,
    config_from_overrides,
    load_config,
    save_config,
)
from losslab.train.console import StepProgress, StepReporter, quiet_lightning
from losslab.train.gradient_share import gradient_shares
from losslab.train.module import TaskModule, TrainingDivergedError
from losslab.train.run import (
    LoadedRun,
    RunResult,
    TrainingInterrupted,
    baseline_validation,
    evaluated_weights,
    load_module,
    load_run,
    open_run,
    predict_validation,
    train,
    train_from_args,
    validation_plausible,
)

__all__ = [
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "HypothesesConfig",
    "LoadedRun",
    "ModelConfig",
    "OptimizerConfig",
    "RunResult",
    "StepProgress",
    "StepReporter",
    "TaskModule",
    "TaskOptions",
    "TrainConfig",
    "TrainSettings",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "baseline_validation",
    "config_from_overrides",
    "evaluated_weights",
    "gradient_shares",
    "load_config",
    "load_module",
    "load_run",
    "open_run",
    "predict_validation",
    "quiet_lightning",
    "save_config",
    "train",
    "train_from_args",
    "validation_plausible",
]
