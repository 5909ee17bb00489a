"""What a training run prints: Lightning's console noise off unless asked for, step reports.

- :func:`quiet_lightning` silences Lightning's informational lines ("GPU available: ...", tips),
  its deprecation and "possible user" warnings for the duration of a ``with`` block; losslab's own
  warnings (a range mix-up, a discriminator that wins every step) stay visible.
- :class:`StepReporter` calls a function after every optimizer step with the step and the loss,
  so a caller can drive one progress display over several runs (``losslab compare``).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
from lightning.fabric.utilities.warnings import PossibleUserWarning

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


__all__ = ["StepReporter", "quiet_lightning"]
