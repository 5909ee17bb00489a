"""Training helpers for latent-variable runs (``latent: {mode: cvae | noise}``).

:class:`~losslab.train.module.TaskModule` owns the pieces; this module holds what they need:

- :func:`build_posterior`: the ``cvae`` posterior encoder ``q(z | input, target)``
  (``TaskModule.posterior``; it is trained and checkpointed with the model but is not part of
  the evaluated model: :func:`~losslab.train.run.evaluated_weights` keeps ``model.*`` /
  ``ema_model.*`` only, so a run read back samples ``z`` from the prior);
- :func:`step_generator`: the noise of each step (``eps`` of the reparameterisation, the ``z`` of
  ``noise`` mode) comes from a generator seeded by ``(seed, step, rank)``, not from torch's global
  generator, so a resumed run draws exactly the noise the uninterrupted run drew;
- :class:`CollapseMonitor`: posterior collapse (the KL stays below ``collapse_kl`` for
  ``collapse_patience`` steps once its weight is on: the decoder ignores ``z`` and returns the
  mean) becomes a logged warning and an entry in the run's ``notes.json``
  (:data:`NOTES_FILE`), which the report reads from disk.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from losslab.core.atomic import write_text_atomic
from losslab.models.latent import PosteriorEncoder
from losslab.train.config import TrainConfig

log = logging.getLogger(__name__)

#: A run directory's notes for the report: ``{"posterior_collapse": {...}}`` (JSON object).
NOTES_FILE = "notes.json"

COLLAPSE_FIX = ("warm the KL weight up later and slower (e.g. latent.kl_weight "
                "'1e-3@ramp(1000,1600)' with 2000+ steps), lower it, or set latent.free_bits "
                "(e.g. 0.5 nats per dimension)")


def build_posterior(config: TrainConfig, inputs: Tensor, target: Tensor) -> PosteriorEncoder:
    """The posterior encoder for one example ``(inputs (1, C_in, h, w), target (1, C, H, W))``."""
    return PosteriorEncoder(inputs.shape[1], target.shape[1], config.latent.dim,
                            width=config.latent.posterior_width)


def step_generator(seed: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    """A generator for the noise of optimizer step ``step`` on process ``rank``: the same
    ``(seed, step, rank)`` gives the same draws, whether the run was resumed or not."""
    generator = torch.Generator(device=device)
    generator.manual_seed((int(seed) * 1_000_003 + int(step) * 7_919 + int(rank)) % 2**63)
    return generator


class CollapseMonitor:
    """Counts consecutive steps whose KL (nats, summed over ``z``) is below ``threshold`` while
    the KL weight is non-zero; after ``patience`` such steps, :meth:`update` returns a warning
    once (``patience = 0``: never). Its state travels in checkpoints (:meth:`state_dict`)."""

    def __init__(self, threshold: float, patience: int) -> None:
        self.threshold = float(threshold)
        self.patience = int(patience)
        self.streak = 0
        self.reported: dict[str, Any] | None = None

    def update(self, step: int, kl: float, weight: float) -> str | None:
        """Record step ``step``'s KL; the warning text when collapse is detected now, else None."""
        if weight <= 0:
            return None  # before the warm-up the KL is free to be anything
        self.streak = self.streak + 1 if kl < self.threshold else 0
        if not self.patience or self.streak < self.patience or self.reported is not None:
            return None
        message = (f"posterior collapse: KL(q(z|input,target) || N(0,I)) = {kl:.4g} nats, below "
                   f"{self.threshold:g} for {self.streak} steps (step {step}); the decoder "
                   "ignores z and its samples are the deterministic mean. Fix: " + COLLAPSE_FIX)
        self.reported = {"step": int(step), "kl": float(kl), "threshold": self.threshold,
                         "steps_below": self.streak, "message": message, "fix": COLLAPSE_FIX}
        return message

    def state_dict(self) -> dict[str, Any]:
        return {"streak": self.streak, "reported": self.reported}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.streak = int(state.get("streak", 0))
        self.reported = state.get("reported")


def write_note(run_dir: str | Path, key: str, value: Any) -> Path:
    """Set ``key`` in ``run_dir/notes.json`` (created if missing), atomically."""
    path = Path(run_dir) / NOTES_FILE
    try:
        notes = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except ValueError:
        notes = {}
    notes[key] = value
    return write_text_atomic(path, json.dumps(notes, indent=2) + "\n")


def read_notes(run_dir: str | Path) -> dict[str, Any]:
    """The run's ``notes.json`` (``{}`` when there is none)."""
    path = Path(run_dir) / NOTES_FILE
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")))


__all__ = ["COLLAPSE_FIX", "NOTES_FILE", "CollapseMonitor", "build_posterior", "read_notes",
           "step_generator", "write_note"]
