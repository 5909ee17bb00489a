"""Weight schedules: a term's weight as a function of the training step (``@start``, ``@ramp``).

Spec syntax: ``0.01*perceptual@start(500)``, ``0.01*perceptual@ramp(1000, 2000)``, combinable with
a gradient-share target ``@share(0.2)``. The same schedule sets other step-dependent weights,
such as the KL weight of a latent-variable model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightSchedule:
    """A multiplier on a term's weight as a function of the training step, and a share target.

    Kinds: ``constant`` (always 1), ``start`` (0 before step ``begin``, then 1) and ``ramp``
    (0 before ``begin``, linear to 1 at ``end``, then 1). Spec syntax: ``0.01*perceptual@start(500)``
    or ``0.01*perceptual@ramp(1000, 2000)``.

    ``share`` (spec ``@share(0.2)``, combinable with either kind: ``@start(500)@share(0.2)``)
    asks the sum to set the term's weight during training so that its share of the gradient at
    the model output tracks ``share * factor(step)``; see :mod:`losslab.losses.share`.
    """

    kind: str = "constant"
    begin: int = 0
    end: int = 0
    share: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "start", "ramp"):
            raise ValueError(
                f"weight schedule must be 'constant', 'start' or 'ramp'; got {self.kind!r}."
            )
        if self.begin < 0 or (self.kind == "ramp" and self.end <= self.begin):
            raise ValueError(
                f"schedule {self.kind}({self.begin}, {self.end}) needs 0 <= begin"
                + (" < end" if self.kind == "ramp" else "")
                + "; e.g. ramp(1000, 2000) or start(500)."
            )
        if self.share is not None and not 0.0 < self.share < 1.0:
            raise ValueError(f"share(...) takes a fraction of the gradient in (0, 1), e.g. "
                             f"share(0.2); got {self.share}.")

    def factor(self, step: int) -> float:
        """Multiplier in ``[0, 1]`` at ``step``."""
        if self.kind == "constant":
            return 1.0
        if step < self.begin:
            return 0.0
        if self.kind == "start":
            return 1.0
        return min(1.0, (step - self.begin) / (self.end - self.begin))

    def render(self) -> str:
        """The spec suffix (``@start(500)``, ``@ramp(1000,2000)@share(0.2)``, ``''``)."""
        share = "" if self.share is None else f"@share({self.share:g})"
        if self.kind == "constant":
            return share
        if self.kind == "start":
            return f"@start({self.begin})" + share
        return f"@ramp({self.begin},{self.end})" + share


#: The schedule of an unscheduled term: factor 1 at every step.
CONSTANT = WeightSchedule()

__all__ = ["CONSTANT", "WeightSchedule"]
