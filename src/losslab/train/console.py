"""What a training run prints: Lightning's console noise off unless asked for, step reports.

- :func:`quiet_lightning` silences Lightning's informational lines ("GPU available: ...", tips),
  its deprecation and "possible user" warnings for the duration of a ``with`` block; losslab's own
  warnings (a range mix-up, a discriminator that wins every step) stay visible.
- :class:`StepReporter` calls a function after every optimizer step with the step and the loss,
  so a caller can drive one progress display over several runs (``losslab compare``).
- :class:`StepProgress` is that one display for a single run (``losslab train``): one line with
  the step, the loss, the last validation loss and the time left, in place of Lightning's
  training and validation bars.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
from lightning.fabric.utilities.warnings import PossibleUserWarning
from tqdm.auto import tqdm

_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric",
                      "pytorch_lightning")


@contextlib.contextmanager
def quiet_lightning(enabled: bool = True) -> Iterator[None]:
    """Silence Lightning's console noise inside the block (no-op when ``enabled`` is false).

    Informational log lines of Lightning's loggers are raised to WARNING, and warnings raised
    from Lightning's modules or of its ``PossibleUserWarning`` category are ignored. Errors are
    unaffected. The previous levels and warning filters are restored on exit.
    """
    if not enabled:
        yield
        return
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=PossibleUserWarning)
            warnings.filterwarnings("ignore", module=r"(lightning|lightning_fabric)(\..*)?$")
            warnings.filterwarnings("ignore", message=r".*(LeafSpec|litlogger|num_workers).*")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class StepReporter(L.Callback):
    """Call ``report(step, loss)`` after every optimizer step (``loss`` ``None`` if not logged).

    ``step`` is the number of optimizer steps done (``trainer.global_step``), including those
    before a resume; ``report`` is also called once at the start with the resumed step.
    """

    def __init__(self, report: Callable[[int, float | None], None]) -> None:
        self.report = report

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.report(trainer.global_step, None)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        loss = trainer.callback_metrics.get("loss")
        self.report(trainer.global_step, None if loss is None else float(loss))


class StepProgress(L.Callback):
    """One progress line for a training run: ``label 40%|####  | [00:12<00:18, step 40/100 loss
    0.031 val 0.029]``, drawn on stderr by the first process only.

    It replaces Lightning's bars (train with ``progress_bar`` off), as ``losslab compare``'s
    display does over several runs: the step counts optimizer steps (a resume starts at the
    resumed step), the time left is tqdm's estimate, ``val`` is the last ``val/loss``. On a
    terminal the line is redrawn in place; in a log file every redraw is a new line, so it is
    redrawn at most every 30 s there.

    Args:
        label: the text before the bar (``losslab train`` gives the run directory's name).
    """

    def __init__(self, label: str = "train") -> None:
        self.label = label
        self._bar: Any = None
        self._loss: float | None = None
        self._validation: float | None = None

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._bar = tqdm(total=trainer.max_steps, initial=trainer.global_step, unit="step",
                         desc=self.label, dynamic_ncols=True, miniters=1,
                         mininterval=0.2 if sys.stderr.isatty() else 30.0,
                         bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")
        self._show(trainer, refresh=True)

    def _show(self, trainer: L.Trainer, *, refresh: bool = False) -> None:
        text = f"step {trainer.global_step}/{trainer.max_steps}"
        if self._loss is not None:
            text += f" loss {self._loss:.4g}"
        if self._validation is not None:
            text += f" val {self._validation:.4g}"
        self._bar.set_postfix_str(text, refresh=refresh)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        if self._bar is None:
            return
        loss = trainer.callback_metrics.get("loss")
        self._loss = None if loss is None else float(loss)
        self._show(trainer)
        self._bar.update(min(trainer.global_step, trainer.max_steps) - self._bar.n)

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get("val/loss")
        if self._bar is not None and value is not None:
            self._validation = float(value)
            self._show(trainer, refresh=True)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._close()

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule,
                     exception: BaseException) -> None:
        self._close()


__all__ = ["StepProgress", "StepReporter", "quiet_lightning"]
