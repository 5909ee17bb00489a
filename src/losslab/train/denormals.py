"""Flush subnormal floats to zero on the CPU while a model trains.

A weight or activation that decays towards zero passes through the subnormal range (below
1.2e-38 in float32), where x86 CPUs compute tens of times slower. In ``losslab compare colors``
the autoencoders trained with ``l1(green)`` and ``l1(blue)``, whose unmeasured output channels
drift freely, took 34-40 s against 28-31 s for the others; with subnormals flushed they took
29 s, and every metric was the same to the printed digits (the values flushed are below
1.2e-38). Only the CPU is affected; CUDA kernels are left as they are.
"""

from __future__ import annotations

import lightning as L
import torch


class FlushDenormals(L.Callback):
    """Turn ``torch.set_flush_denormal`` on for the fit and off again afterwards.

    torch has no getter for the flag, so teardown sets it back to torch's default (off); a
    process that wants it on outside training can set it again after ``fit``. A fit that stops
    with an exception (a diverged loss) sets it back too: the flag is process-wide, and left on
    it would change every later float computation of the process (seen: a hypothesis test
    failing after a diverged training in the same pytest run).
    """

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        torch.set_flush_denormal(True)  # False where the CPU lacks the instructions: harmless

    def teardown(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        torch.set_flush_denormal(False)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule,
                     exception: BaseException) -> None:
        torch.set_flush_denormal(False)
