"""The base class of every losslab loss.

Every loss is an ``nn.Module`` called as ``loss(prediction, target)`` with two image batches of
shape ``(N, C, H, W)`` (sample-based losses: ``(N, m, C, H, W)`` samples and an ``(N, C, H, W)``
target). ``a + 0.01 * b`` builds a :class:`~losslab.losses.weighted_sum.WeightedSum`. Each loss declares the value range its inputs use (``input_range``,
``(0, 1)`` by default) and converts internally to what its formula or network needs: pixel,
structural and frequency losses compute in ``[0, 1]`` units whatever the declared range, so a
weight means the same thing for ``[0, 1]`` and ``[-1, 1]`` data.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor, nn

from losslab.core.validation import (
    InputRange,
    RangeMixupWarning,
    check_flag,
    check_input_range,
    check_pair,
    check_pair_values,
    range_mixup_message,
    value_checks_enabled,
)
from losslab.losses.context import LossContext

if TYPE_CHECKING:
    from losslab.losses.weighted_sum import WeightedSum


class Loss(nn.Module):
    """Base class: validate ``(prediction, target)``, map them to ``[0, 1]``, call :meth:`compute`.

    Subclasses implement :meth:`compute` on inputs already mapped to ``[0, 1]`` and may set
    ``required_channels`` / ``min_size`` (checked for free on every call). The capability flags
    below are declared here, once, and read as plain attributes everywhere; a term that needs
    more than the two images (a discriminator's condition, the EMA prediction) reads it from
    the :class:`~losslab.losses.context.LossContext` a weighted sum hands to :meth:`evaluate`.

    Args:
        input_range: the ``(low, high)`` value range of the inputs, e.g. ``(0, 1)`` or ``(-1, 1)``.
        check_values: run the NaN/Inf and range checks (they synchronise with the device).
            ``None`` follows the global switch :func:`losslab.losses.set_value_checks`.
    """

    registered_name: ClassVar[str] = ""
    required_channels: ClassVar[int | None] = None
    min_size: int | None = None
    #: Judged by a discriminator (adversarial, feature matching): a sum evaluates such terms
    #: after the others and leaves them out of the reconstruction total; they cannot be
    #: applied per hypothesis or used for synthesis (the discriminator is trained alongside).
    judged_by_discriminator: ClassVar[bool] = False
    #: Reads ``context.condition`` (the model's input): conditional discriminators.
    uses_condition: ClassVar[bool] = False
    #: Reads ``context.reconstruction`` and ``context.last_layer`` (the adaptive adversarial
    #: weight); a sum fills in ``reconstruction``.
    uses_reconstruction: ClassVar[bool] = False
    #: Reads ``context.ema_prediction`` (LDL): the trainer computes the EMA model's output.
    uses_ema_prediction: ClassVar[bool] = False
    #: True for terms that compare only the magnitudes of local differences (gradient or
    #: wavelet magnitudes): an edge costs the same with either sign, so images folded along the
    #: target's level sets match exactly, and descent from a far start stops in local minima
    #: of edge-sign patterns. Loss metamers (``losslab.synthesis.metamers``) descend such
    #: losses with a continuation over scale by default (docs/synthesis.md).
    edge_sign_blind: ClassVar[bool] = False
    #: True for losses on *samples*: called as ``loss(samples, target)`` with samples
    #: ``(N, m, C, H, W)`` (m draws of a stochastic model per input) and target
    #: ``(N, C, H, W)`` (proper scoring rules: energy score, CRPS, kernel score).
    sample_based: ClassVar[bool] = False

    def __init__(
        self, *, input_range: Iterable[float] = (0.0, 1.0), check_values: bool | None = None
    ) -> None:
        super().__init__()
        self.input_range: InputRange = check_input_range(input_range)
        self.check_values = check_flag("check_values", check_values, allow_none=True)

    # -- naming ---------------------------------------------------------------------------
    @property
    def term_name(self) -> str:
        """Short name used in logs and tables (the spec text when built from a spec)."""
        return getattr(self, "_term_name", None) or self.registered_name or type(self).__name__

    @term_name.setter
    def term_name(self, value: str) -> None:
        self._term_name = value

    # -- range ----------------------------------------------------------------------------
    def set_input_range(self, input_range: Iterable[float]) -> Loss:
        """Declare the inputs' value range for this loss (and every sub-term); returns self."""
        self.input_range = check_input_range(input_range)
        return self

    def to_unit_range(self, images: Tensor) -> Tensor:
        """Map images from the declared ``input_range`` to ``[0, 1]`` (no-op for ``(0, 1)``)."""
        low, high = self.input_range
        if low == 0.0 and high == 1.0:
            return images
        return (images - low) / (high - low)

    def _values_checked(self) -> bool:
        return value_checks_enabled() if self.check_values is None else self.check_values

    def check_shapes(self, prediction: Tensor, target: Tensor) -> None:
        """Shape, dtype and device checks (free: no device sync); losses may add their own."""
        check_pair(prediction, target, channels=self.required_channels, min_size=self.min_size)

    def validate(self, prediction: Tensor, target: Tensor) -> None:
        """All input checks of this loss: shapes always, values when enabled."""
        self.check_shapes(prediction, target)
        if self._values_checked():
            self._warn_range_mixup(self.input_range,
                                   *check_pair_values(prediction, target, self.input_range))

    def _warn_range_mixup(self, input_range: InputRange, target_min: float, target_max: float) -> None:
        """Warn (once per loss object) when the targets look like ``[0, 1]`` data under a
        declared ``(-1, 1)`` or ``(0, 255)``; see :func:`~losslab.core.validation.range_mixup_message`."""
        if getattr(self, "_range_mixup_warned", False):
            return
        message = range_mixup_message(input_range, target_min, target_max)
        if message is not None:
            self._range_mixup_warned = True
            warnings.warn(f"{self.term_name}: {message}", RangeMixupWarning, stacklevel=4)

    # -- evaluation -----------------------------------------------------------------------
    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Loss between ``prediction`` and ``target`` (both ``(N, C, H, W)`` in ``input_range``)."""
        self.validate(prediction, target)
        return self.evaluate(prediction, target)

    def evaluate(self, prediction: Tensor, target: Tensor,
                 context: LossContext | None = None) -> Tensor:
        """Loss value for inputs that were already validated (used by compositions).

        ``context`` carries what terms with a capability flag read (see
        :mod:`losslab.losses.context`); every other loss ignores it.
        """
        return self.compute(self.to_unit_range(prediction), self.to_unit_range(target))

    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        """The loss on inputs in ``[0, 1]``; implemented by every concrete loss."""
        raise NotImplementedError

    # -- composition ----------------------------------------------------------------------
    # The sum is a Loss subclass defined on top of this module, so the operators import it
    # when called (a module-level import would make base and weighted_sum import each other).
    def __add__(self, other: Any) -> WeightedSum:
        from losslab.losses.weighted_sum import add_losses

        return add_losses(self, other) if isinstance(other, Loss) else NotImplemented

    def __mul__(self, weight: Any) -> WeightedSum:
        from losslab.losses.weighted_sum import scale_loss

        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            return NotImplemented
        return scale_loss(self, float(weight))

    __rmul__ = __mul__

    def __radd__(self, other: Any) -> Loss:
        if other == 0:  # lets sum([loss_a, loss_b]) work
            return self
        return NotImplemented


__all__ = ["Loss"]
