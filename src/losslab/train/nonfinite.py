"""Skipping non-finite training steps instead of ending the run (``skip_nonfinite: N``).

A single NaN/Inf in a loss or a gradient (an fp16 overflow, one degenerate batch, a
discriminator spike) used to end the run. With ``skip_nonfinite: N > 0`` the step is skipped
instead: no optimizer changes any weight (gradients are dropped, so Adam leaves its moments
alone too), the batch is consumed, and the skip is counted with its cause (the term whose value
was non-finite, ``gradients`` when only the gradients were, ``<term> (discriminator)`` for a D
loss). After ``N`` skipped steps *in a row* training stops: the weights cannot recover by
themselves, and the last checkpoint (written before the skips, from finite weights) is the
last good state. This is traiNNer-redux's behaviour.

Logged at each skip: ``nonfinite/skipped`` (total so far), ``nonfinite/in_a_row`` and
``nonfinite/<cause>`` (per cause). The counters are stored in checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


class NonFiniteGuard:
    """Counts skipped steps by cause and says when ``max_in_a_row`` is reached.

    Args:
        max_in_a_row: stop after this many consecutive skipped steps (``>= 1``).
    """

    def __init__(self, max_in_a_row: int) -> None:
        if isinstance(max_in_a_row, bool) or not isinstance(max_in_a_row, int) or max_in_a_row < 1:
            raise ValueError(f"skip_nonfinite must be an integer >= 1 to skip steps (0 turns "
                             f"skipping off); got {max_in_a_row!r}.")
        self.max_in_a_row = max_in_a_row
        self.skipped = 0
        self.in_a_row = 0
        self.by_cause: dict[str, int] = {}

    @staticmethod
    def bad_gradients(parameters: Iterable[Tensor]) -> bool:
        """Whether any gradient of ``parameters`` holds a NaN/Inf (one device sync)."""
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return False
        return not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())

    def end_step(self, step: int, cause: str | None) -> tuple[dict[str, float], str | None]:
        """Record step ``step``: finite (``cause`` None) or skipped because of ``cause``.

        Returns ``(logs, stop)``: the counters to log (empty for a finite step) and, when
        ``max_in_a_row`` consecutive steps were skipped, a message for the error that stops
        training (else ``None``).
        """
        if cause is None:
            self.in_a_row = 0
            return {}, None
        self.skipped += 1
        self.in_a_row += 1
        self.by_cause[cause] = self.by_cause.get(cause, 0) + 1
        logs = {"nonfinite/skipped": float(self.skipped), "nonfinite/in_a_row": float(self.in_a_row),
                **{f"nonfinite/{name}": float(count) for name, count in self.by_cause.items()}}
        if self.in_a_row < self.max_in_a_row:
            return logs, None
        counts = ", ".join(f"{name}: {count}" for name, count in self.by_cause.items())
        return logs, (
            f"{self.in_a_row} non-finite steps in a row up to step {step} (skip_nonfinite = "
            f"{self.max_in_a_row}; skipped so far by cause: {counts}). The weights no longer "
            "recover; lower the learning rate or the offending term's weight and resume"
        )

    def state_dict(self) -> dict[str, Any]:
        """The counters, for checkpoints."""
        return {"skipped": self.skipped, "in_a_row": self.in_a_row, "by_cause": dict(self.by_cause)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s counters (missing keys keep their value)."""
        self.skipped = int(state.get("skipped", self.skipped))
        self.in_a_row = int(state.get("in_a_row", self.in_a_row))
        self.by_cause = {str(k): int(v) for k, v in state.get("by_cause", self.by_cause).items()}
