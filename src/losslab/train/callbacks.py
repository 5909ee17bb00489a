"""Small Lightning callbacks: validation sample grids and a validation at the last step.

The sample grid is a PNG written with ``torchvision.utils.save_image`` (no plotting library):
one row per kind, one column per validation item — the input (shown as RGB at the target's
size), then the output (``K`` rows for ``K`` hypotheses), then the target.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch import Tensor
from torchvision.utils import make_grid, save_image


def sample_rows(module: L.LightningModule, batch: Tensor) -> list[Tensor]:
    """``[input, output_1, ..., output_K, target]`` rows, each ``(n, 3, H, W)`` in ``[0, 1]``."""
    inputs, target = module.task.split(batch)
    was_training = module.model.training
    module.model.eval()
    with torch.no_grad():
        prediction = module.model(inputs)
    module.model.train(was_training)
    outputs = list(prediction.unbind(1)) if prediction.dim() == 5 else [prediction]
    shown = [module.task.display_input(inputs, target), *outputs, target]
    return [row.detach().float().clamp(0.0, 1.0).cpu() for row in shown]


def sample_grid(module: L.LightningModule, batch: Tensor) -> Tensor:
    """The grid image ``(3, H', W')``: rows input | output(s) | target, one column per item."""
    rows = sample_rows(module, batch)
    return make_grid(torch.cat(rows), nrow=rows[0].shape[0], padding=2, pad_value=1.0)


class SampleGrid(L.Callback):
    """Save ``samples/step_XXXXXX.png`` every ``every`` steps, at the start and at the last step.

    Args:
        directory: where the PNGs go (``<out>/samples``).
        every: period in optimizer steps (0 = only the first and the last).
        count: validation items shown (the first ``count`` ones, the same every time).
    """

    def __init__(self, directory: str | Path, every: int, count: int) -> None:
        self.directory = Path(directory)
        self.every = every
        self.count = count

    def save(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        items = [module.val_set[i] for i in range(min(self.count, len(module.val_set)))]
        batch = torch.stack(items).to(module.device)
        self.directory.mkdir(parents=True, exist_ok=True)
        save_image(sample_grid(module, batch), self.directory / f"step_{trainer.global_step:06d}.png")

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.global_step == 0:
            self.save(trainer, module)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: object) -> None:
        step = trainer.global_step
        if (self.every and step % self.every == 0) or step == trainer.max_steps:
            self.save(trainer, module)


class ValidateAtLastStep(L.Callback):
    """Make Lightning validate (and so checkpoint) after the last step even when ``steps`` is not
    a multiple of ``val_every``, so ``last.ckpt`` and the final metrics describe the final model."""

    def __init__(self, val_every: int) -> None:
        self.val_every = val_every

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        step = trainer.global_step
        if step >= trainer.max_steps and step % self.val_every != 0:
            trainer.should_stop = True  # Lightning validates when asked to stop


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar without the logger version number (``v_num``)."""

    def get_metrics(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, module)
        metrics.pop("v_num", None)
        return metrics


class CheckpointOnInterrupt(L.Callback):
    """Checkpoint the steps done when training is stopped by SIGTERM or Ctrl-C (SIGINT).

    Schedulers and ``docker stop`` send SIGTERM; Lightning then stops after the current step
    (``SIGTERMException``) and this callback writes ``last.ckpt`` (atomically, through the
    trainer's checkpoint IO). The first Ctrl-C is made just as graceful: it asks the trainer to
    stop after the current step (``trainer.should_stop``, which validates and so writes
    ``last.ckpt``); a second Ctrl-C interrupts at once (``KeyboardInterrupt``, also checkpointed
    here). :attr:`interruption` records what happened; :func:`~losslab.train.run.train` turns it
    into :class:`~losslab.train.run.TrainingInterrupted` (a one-line message, exit 143 / 130).

    Args:
        path: the run's ``checkpoints/last.ckpt``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        #: ``(signal name, global step saved or None)`` once an interruption was handled.
        self.interruption: tuple[str, int | None] | None = None
        self._stop_requested = False
        self._previous_handler: Any = None

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():  # handlers: main thread only
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self._stop_requested = True
        # a second Ctrl-C interrupts at once (KeyboardInterrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        if self._stop_requested and self.interruption is None:
            trainer.should_stop = True  # Lightning validates, so last.ckpt holds this step
            self.interruption = ("SIGINT (Ctrl-C)", None)

    def _restore_handler(self) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

    def teardown(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self._restore_handler()

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule,
                     exception: BaseException) -> None:
        self._restore_handler()
        if isinstance(exception, SIGTERMException):
            name = "SIGTERM"
        elif isinstance(exception, KeyboardInterrupt):
            name = "SIGINT (Ctrl-C)"
        else:
            return
        saved: int | None = None
        if trainer.global_step > 0:
            trainer.save_checkpoint(self.path)
            saved = trainer.global_step
        self.interruption = (name, saved)


class ApplyLearningRate(L.Callback):
    """Set the generator optimizer's learning rate to the config's after a resume.

    A resumed optimizer state carries the learning rate it was saved with; ``optimizer.lr`` may
    change on resume (see ``RESUME_SAFE_FIELDS``), so the configured value is applied once the
    state is restored (``on_train_start`` runs after the restore).
    """

    def __init__(self, lr: float) -> None:
        self.lr = float(lr)

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = self.lr
