"""Run a training job: :func:`train` (config → run directory) and the helpers that read runs back.

A run directory (``config.out``) holds::

    config.yaml               the full resolved TrainConfig (re-run it with --config)
    checkpoints/last.ckpt     every validation (crash-safe writes); resumed automatically
    checkpoints/best.ckpt     lowest val/loss
    logs/csv/metrics.csv      every logged scalar (train/<term>, weight/<term>, grad_share/<term>,
                              val/<term>, val/l1, val/psnr, lr, adversarial/...)
    logs/tensorboard/         the same scalars for TensorBoard
    samples/step_XXXXXX.png   validation sample grids (input | output(s) | target rows)
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor, nn
from torch.utils.data import Dataset

from losslab.core.records import CONFIG_FILE
from losslab.models.stochastic import draw_samples
from losslab.train.callbacks import (
    ApplyLearningRate,
    CheckpointOnInterrupt,
    ProgressBar,
    SampleGrid,
    ValidateAtLastStep,
)
from losslab.train.checkpointing import (
    AtomicCheckpointIO,
    CrashSafeCSVLogger,
    check_resumable,
    load_checkpoint,
    read_checkpoint_info,
)
from losslab.train.config import TrainConfig, config_from_overrides, load_config, save_config
from losslab.train.data import build_data
from losslab.train.denormals import FlushDenormals
from losslab.train.module import TaskModule, TrainingDivergedError, build_network
from losslab.train.tasks import Task, get_task
from losslab.train.threads import ShareCores

log = logging.getLogger(__name__)


class TrainingInterrupted(RuntimeError):
    """Training was stopped by SIGTERM or SIGINT; the steps done were checkpointed.

    Attributes:
        exit_code: the conventional shell status, ``128 + signal number`` (143 for SIGTERM,
            130 for SIGINT).
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class RunResult:
    """What :func:`train` returns.

    Attributes:
        run_dir: the run directory (``config.out``).
        metrics: the last validation's metrics (``val/loss``, ``val/<term>``, ``val/l1``,
            ``val/psnr``), floats.
        best_checkpoint: ``checkpoints/best.ckpt`` (``None`` if ``checkpoint.save_best`` is off).
        last_checkpoint: ``checkpoints/last.ckpt``.
        global_step: optimizer steps taken in total (including those before a resume).
        resumed_from_step: the step of the checkpoint this call resumed from, or ``None``.
        processes: training processes that took part (``devices * num_nodes`` with DDP).
    """

    run_dir: Path
    metrics: dict[str, float]
    best_checkpoint: Path | None
    last_checkpoint: Path
    global_step: int
    resumed_from_step: int | None = None
    processes: int = 1


def _as_config(config: TrainConfig | Mapping[str, Any] | str | Path) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config.validate()
    if isinstance(config, Mapping):
        return TrainConfig.from_dict(config)
    return load_config(config)


def _strategy(config: TrainConfig, module: TaskModule) -> Any:
    if config.strategy != "ddp":
        return "auto"
    # Discriminators sit inside the LightningModule but take no part in the generator's backward.
    return DDPStrategy(find_unused_parameters=bool(module.adversarial))


def train(
    config: TrainConfig | Mapping[str, Any] | str | Path,
    *,
    callbacks: Sequence[L.Callback] = (),
) -> RunResult:
    """Train ``config.task`` with ``config.loss`` for ``config.steps`` steps into ``config.out``.

    If ``<out>/checkpoints/last.ckpt`` exists (and ``checkpoint.resume`` is on), training
    continues from it; a checkpoint of a different config raises a ``ValueError`` naming the
    differing fields. A NaN/Inf loss stops training with :class:`TrainingDivergedError` naming the
    step and the term; the last checkpoint written before it is kept.

    Args:
        config: a :class:`TrainConfig`, a mapping, or the path of a YAML config.
        callbacks: extra Lightning callbacks (progress reporting, timing); they do not change
            what is trained.

    Returns:
        :class:`RunResult` (run directory, final validation metrics, checkpoints, step).

    Raises:
        TrainingDivergedError: the loss or the model output became NaN/Inf (names the step, the
            term and the fix; the last good checkpoint is kept).
        TrainingInterrupted: SIGTERM or Ctrl-C stopped training; the steps done were
            checkpointed (``exit_code`` 143 / 130 for the command line).
        ValueError: a bad config, or a checkpoint of another config in ``out``.
    """
    config = _as_config(config)
    out = Path(config.out)
    checkpoints = out / "checkpoints"
    last = checkpoints / "last.ckpt"
    resume_step: int | None = None
    if last.exists():
        if not config.checkpoint.resume:
            raise ValueError(f"{str(out)!r} already holds a run ({last}); choose another out "
                             "directory, delete it, or set checkpoint.resume: true to continue it.")
        resume_step = check_resumable(last, config)
        log.info("resuming %s from step %d", out, resume_step)

    L.seed_everything(config.seed, workers=True, verbose=False)
    module = TaskModule(config)
    best_callback = ModelCheckpoint(
        dirpath=checkpoints, filename="best", monitor="val/loss", mode="min", save_top_k=1,
        enable_version_counter=False, auto_insert_metric_name=False, save_on_train_epoch_end=False,
    )
    last_callback = ModelCheckpoint(
        dirpath=checkpoints, filename="last", monitor=None, save_top_k=1,
        enable_version_counter=False, save_on_train_epoch_end=False,
    )
    interrupt_callback = CheckpointOnInterrupt(last)
    run_callbacks: list[L.Callback] = [
        last_callback, interrupt_callback, ShareCores(), FlushDenormals(),
        ApplyLearningRate(config.optimizer.lr),
        ValidateAtLastStep(config.val_every),
        SampleGrid(out / "samples", config.sample_every, config.data.sample_count),
    ]
    if config.progress_bar:
        run_callbacks.append(ProgressBar())
    run_callbacks.extend(callbacks)
    if config.checkpoint.save_best:
        run_callbacks.insert(0, best_callback)
    loggers = [
        CrashSafeCSVLogger(out / "logs" / "csv", resume_step=resume_step),
        TensorBoardLogger(save_dir=out / "logs", name="", version="tensorboard",
                          default_hp_metric=False),
    ]
    trainer = L.Trainer(
        accelerator=config.accelerator, devices=config.devices, num_nodes=config.num_nodes,
        strategy=_strategy(config, module), precision=config.precision,  # type: ignore[arg-type]
        max_steps=config.steps, max_epochs=-1, val_check_interval=config.val_every,
        check_val_every_n_epoch=None, num_sanity_val_steps=0, log_every_n_steps=1,
        logger=loggers, callbacks=run_callbacks, plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False, deterministic=config.deterministic,
        enable_model_summary=False, enable_progress_bar=config.progress_bar, default_root_dir=out,
    )
    if trainer.is_global_zero:
        save_config(config, out / CONFIG_FILE)
    try:
        with warnings.catch_warnings():  # both are expected and handled when resuming
            warnings.filterwarnings("ignore", message=".*dataloader is not resumable.*")
            warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
            trainer.fit(module, ckpt_path=str(last) if resume_step is not None else None,
                        weights_only=True)
    except TrainingDivergedError as error:
        kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
        raise TrainingDivergedError(
            f"training stopped: {error} ({kept}.) Fix: lower the learning rate (--lr; it may "
            "change when resuming the same --out) or the weight of the term named above."
        ) from error
    except (SystemExit, KeyboardInterrupt):  # Lightning ends a SIGTERM/SIGINT with SystemExit
        if interrupt_callback.interruption is None:
            raise
    if interrupt_callback.interruption is not None:
        name, saved = interrupt_callback.interruption
        if saved is None and last.exists():  # a graceful stop: its validation wrote last.ckpt
            saved = int(read_checkpoint_info(last)["global_step"]) or None
        where = (f"the {saved} steps done are saved in {last}" if saved is not None
                 else "no step was done, nothing to save")
        raise TrainingInterrupted(
            f"training stopped by {name}; {where}. Run the same command again to resume.",
            143 if name == "SIGTERM" else 130)

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    if not metrics and last.exists():  # nothing left to train: report the stored metrics
        metrics = dict(read_checkpoint_info(last).get("metrics", {}))
    best = Path(best_callback.best_model_path) if best_callback.best_model_path else None
    if best is None and (checkpoints / "best.ckpt").exists() and config.checkpoint.save_best:
        best = checkpoints / "best.ckpt"
    return RunResult(out, metrics, best, last, trainer.global_step, resume_step, trainer.world_size)


def train_from_args(
    task: str | None = None,
    data: str | None = None,
    loss: str | None = None,
    steps: int | None = None,
    out: str | None = None,
    config_path: str | Path | None = None,
    devices: int | str | None = None,
    num_nodes: int | None = None,
    precision: str | None = None,
    seed: int | None = None,
    **overrides: Any,
) -> RunResult:
    """The ``losslab train`` command: a config file (optional) plus flag overrides, then train.

    ``None`` means "not given" (keep the config file's or the default value). Extra keyword
    arguments are further overrides (see :func:`~losslab.train.config.config_from_overrides`:
    ``crop_size=64``, ``hypotheses=4``, ``lr=1e-4``, ``"data.options": "{val_size: 32}"``).

    Example: ``losslab train --task reconstruct --data bundled --loss "l1(luma)" --steps 1500
    --out runs/x`` calls ``train_from_args(task="reconstruct", data="bundled", loss="l1(luma)",
    steps=1500, out="runs/x")``.
    """
    values = {"task": task, "data": data, "loss": loss, "steps": steps, "out": out,
              "devices": devices, "num_nodes": num_nodes, "precision": precision, "seed": seed,
              **overrides}
    return train(config_from_overrides(config_path, values))


# -- reading runs back ---------------------------------------------------------------------------
def _checkpoint_path(run_dir: Path, checkpoint: str) -> Path:
    if checkpoint not in ("best", "last"):
        path = Path(checkpoint)
    else:
        path = run_dir / "checkpoints" / f"{checkpoint}.ckpt"
        if checkpoint == "best" and not path.exists():
            path = run_dir / "checkpoints" / "last.ckpt"
    if not path.exists():
        raise ValueError(f"no checkpoint {str(path)!r}; has the run in {str(run_dir)!r} "
                         "reached its first validation?")
    return path


def load_module(run_dir: str | Path, checkpoint: str = "best") -> TaskModule:
    """The run's whole training :class:`TaskModule` (data sets, loss with its feature networks
    and discriminators, EMA copy) with the weights of ``checkpoint`` (``best``, ``last`` or a
    path), in eval mode on the CPU.

    For inspecting or continuing the training state; evaluation needs far less and uses
    :func:`open_run` (:func:`load_run`, :func:`predict_validation`).
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG_FILE)
    module = TaskModule(config)
    state = load_checkpoint(_checkpoint_path(run_dir, checkpoint))
    module.load_state_dict(state["state_dict"])
    return module.eval()


def evaluated_weights(state_dict: Mapping[str, Tensor], config: TrainConfig,
                      source: str = "the checkpoint") -> dict[str, Tensor]:
    """The weights evaluation uses, out of a checkpoint's ``state_dict``, without their prefix.

    The EMA average (``ema_model.*``) when the run has ``ema_decay > 0``, else the trained
    model (``model.*``): the same choice as :attr:`TaskModule.eval_model` during training.
    Every other entry (loss terms, discriminators, share buffers) is ignored.

    Raises:
        ValueError: ``state_dict`` holds no entry with that prefix (not a checkpoint of this
            config), naming ``source``.
    """
    prefix = "ema_model." if config.ema_decay > 0 else "model."
    weights = {key[len(prefix):]: value for key, value in state_dict.items()
               if key.startswith(prefix)}
    if not weights:
        what = "EMA average" if config.ema_decay > 0 else "model"
        raise ValueError(f"{source} holds no {what} weights ('{prefix}*' entries); it was not "
                         "written by losslab train for this run's config.yaml. Point at the "
                         "run's own checkpoint or re-train it.")
    return weights


@dataclass
class LoadedRun:
    """A run read back for evaluation: its config, its model and its validation set, nothing
    else (no loss terms, feature networks, discriminators or optimizer states are built).

    Attributes:
        config: the run's :class:`TrainConfig` (its ``config.yaml``).
        model: the weights evaluation uses (the EMA average when ``ema_decay > 0``), in eval
            mode on the CPU: ``(N, C_in, h, w) -> (N, 3, H, W)`` in ``[0, 1]``, or
            ``(N, K, 3, H, W)`` with ``hypotheses.count = K > 1``.
        val_set: the run's validation set; the items validated during training are the first
            ``config.data.val_items`` (:meth:`validation_indices`).
        checkpoint: the file the weights were read from.
    """

    config: TrainConfig
    model: nn.Module
    val_set: Dataset
    checkpoint: Path

    @cached_property
    def task(self) -> Task:
        """The task adapter (splits items into ``(input, target)``), made once per run."""
        return get_task(self.config)

    def validation_indices(self) -> list[int]:
        """Indices of the fixed validation items (the ones validated during training)."""
        return _validation_indices(self.config, self.val_set)

    def predict(self, batch_size: int = 16) -> tuple[Tensor, Tensor, Tensor]:
        """``(inputs, outputs, targets)`` of :attr:`model` on the fixed validation items.

        ``inputs`` are the model inputs (images, low-resolution images, luma ``(N, 1, H, W)``,
        stacked frames ``(N, 3k, H, W)``), ``outputs`` ``(N, 3, H, W)`` or ``(N, K, 3, H, W)``,
        ``targets`` ``(N, 3, H, W)``; all in ``[0, 1]``, on the CPU.
        """
        task, indices = self.task, self.validation_indices()
        inputs, outputs, targets = [], [], []
        with torch.no_grad():
            for start in range(0, len(indices), batch_size):
                batch = torch.stack([self.val_set[i] for i in indices[start : start + batch_size]])
                model_input, target = task.split(batch)
                inputs.append(model_input)
                outputs.append(self.model(model_input))
                targets.append(target)
        return torch.cat(inputs), torch.cat(outputs), torch.cat(targets)

    def sample(self, count: int, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        """``(inputs, samples, targets)``: ``count`` draws of a stochastic :attr:`model` per
        fixed validation item (:func:`losslab.models.stochastic.draw_samples`).

        Item ``i`` (its position in :meth:`validation_indices`) is drawn on its own with a
        generator seeded ``seed + i``, so its samples do not depend on the batch size or on
        which other items are evaluated. ``samples`` is ``(N, count, 3, H, W)``; ``inputs`` and
        ``targets`` as in :meth:`predict`; all on the CPU.

        Raises:
            TypeError: the model is deterministic (it has no ``sample``).
            ValueError: ``count < 1``.
        """
        task, indices = self.task, self.validation_indices()
        inputs, samples, targets = [], [], []
        with torch.no_grad():
            for position, index in enumerate(indices):
                model_input, target = task.split(self.val_set[index].unsqueeze(0))
                inputs.append(model_input)
                samples.append(draw_samples(self.model, model_input, count, seed=seed + position))
                targets.append(target)
        return torch.cat(inputs), torch.cat(samples), torch.cat(targets)

    def plausible(self) -> Tensor | None:
        """Every plausible target of the fixed validation items, ``(N, P, 3, H, W)`` in
        ``[0, 1]``, or ``None`` when the data does not know them (see
        :meth:`~losslab.train.tasks.Task.plausible_targets`)."""
        return self.task.plausible_targets(self.val_set, self.validation_indices())


def open_run(run_dir: str | Path, checkpoint: str = "best") -> LoadedRun:
    """Read a finished (or running) run back for evaluation: config, model, validation set.

    Builds the task's model only (:func:`~losslab.train.module.build_network`, as training
    does) and loads the weights evaluation uses (:func:`evaluated_weights`) from
    ``checkpoint``: ``best`` (falls back to ``last``), ``last`` or a path. The checkpoint is
    read with ``weights_only=True`` (:func:`~losslab.train.checkpointing.load_checkpoint`);
    the loss, its feature networks and discriminators are not built.

    Raises:
        ValueError: no such checkpoint, an unreadable or unsafe file, or weights that do not fit
            the model of ``config.yaml`` (the message names the file).
    """
    run_dir = Path(run_dir)
    config = load_config(run_dir / CONFIG_FILE)
    path = _checkpoint_path(run_dir, checkpoint)
    state = load_checkpoint(path).get("state_dict")
    if not isinstance(state, Mapping):
        raise ValueError(f"checkpoint {str(path)!r} has no state_dict; it was not written by "
                         "losslab train. Point at the run's own checkpoint or re-train it.")
    _, val_set = build_data(config)
    model = build_network(config, val_set[0])
    try:
        model.load_state_dict(evaluated_weights(state, config, f"checkpoint {str(path)!r}"))
    except RuntimeError as error:  # shapes or names differ: config.yaml and weights disagree
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0] if lines else type(error).__name__
        raise ValueError(f"checkpoint {str(path)!r} does not fit the model that "
                         f"{str(run_dir / 'config.yaml')!r} describes ({detail[:200]}); was "
                         "config.yaml edited after training? Restore it or re-train.") from None
    return LoadedRun(config, model.eval(), val_set, path)


def load_run(run_dir: str | Path, checkpoint: str = "best") -> tuple[nn.Module, TrainConfig]:
    """``(model, config)`` of a finished (or running) run, for evaluation (see :func:`open_run`).

    The model is in eval mode on the CPU (the EMA average when the run has ``ema_decay > 0``);
    with ``hypotheses.count = K > 1`` it returns ``(N, K, C, H, W)``. ``checkpoint``: ``best``
    (falls back to ``last``), ``last`` or a path.
    """
    loaded = open_run(run_dir, checkpoint)
    return loaded.model, loaded.config


def predict_validation(
    run_dir: str | Path, checkpoint: str = "best", batch_size: int = 16
) -> tuple[Tensor, Tensor, Tensor]:
    """``(inputs, outputs, targets)`` of the run's model on its fixed validation items.

    The items are the first ``data.val_items`` of the validation set (the ones validated during
    training), by the EMA average when the run has one (see :meth:`LoadedRun.predict`).
    """
    return open_run(run_dir, checkpoint).predict(batch_size)


def _validation_indices(config: TrainConfig, val_set: Any) -> list[int]:
    return list(range(min(config.data.val_items, len(val_set))))


def validation_plausible(config: TrainConfig | str | Path) -> Tensor | None:
    """Every plausible target of the run's fixed validation items, ``(N, P, 3, H, W)`` in
    ``[0, 1]``, or ``None`` when the data does not know them (see
    :meth:`~losslab.train.tasks.Task.plausible_targets`). ``config``: a config or a run dir."""
    if not isinstance(config, TrainConfig):
        config = load_config(Path(config) / CONFIG_FILE)
    _, val_set = build_data(config)
    return get_task(config).plausible_targets(val_set, _validation_indices(config, val_set))


def baseline_validation(config: TrainConfig, batch_size: int = 16
                        ) -> tuple[Tensor, Tensor, Tensor] | None:
    """``(inputs, outputs, targets)`` of the task's trivial baseline on the fixed validation items.

    The same items, split and task as :func:`predict_validation`, with the untrained answer of
    :meth:`~losslab.train.tasks.Task.baseline` (bicubic upsampling, a copy of the last frame, the
    grey image) as ``outputs`` ``(N, 3, H, W)``; ``None`` when the task has no baseline.
    """
    task = get_task(config)
    if not task.baseline_name:
        return None
    _, val_set = build_data(config)
    indices = _validation_indices(config, val_set)
    inputs, outputs, targets = [], [], []
    for start in range(0, len(indices), batch_size):
        batch = torch.stack([val_set[i] for i in indices[start : start + batch_size]])
        model_input, target = task.split(batch)
        answer = task.baseline(model_input, target)
        if answer is None:
            return None
        inputs.append(model_input)
        outputs.append(answer)
        targets.append(target)
    return torch.cat(inputs), torch.cat(outputs), torch.cat(targets)
