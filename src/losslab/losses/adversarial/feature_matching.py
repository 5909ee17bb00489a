"""Feature matching (pix2pixHD): L1 between a discriminator's features of prediction and target.

The term reads the features of an adversarial term's discriminator. Where that discriminator
comes from:

- **shared** (preferred): in a sum with an adversarial term, :func:`link_feature_matching`
  (called by :func:`~losslab.losses.adversarial.adversarial_terms`) links this term to that
  term's discriminator and drops its own configuration, so D's weights are stored and trained
  once;
- **standalone**: otherwise it keeps an adversarial term of its own (:attr:`adversary`, built
  from its parameters) that :func:`~losslab.losses.adversarial.adversarial_terms` lists, so the
  trainer attaches and trains that D like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from torch import Tensor, nn

from losslab.losses.adversarial.loss import AdversarialLoss
from losslab.losses.adversarial.objectives import Objective, feature_matching_loss
from losslab.losses.base import Loss
from losslab.losses.context import LossContext
from losslab.losses.registry import register_loss
from losslab.losses.weighted_sum import WeightedSum, weighted_terms


@register_loss("feature_matching", aliases=("fm",))
class FeatureMatchingLoss(Loss):
    """Feature matching (pix2pixHD): L1 between D's features of prediction and target.

    Mean over D's feature maps (``depth + 1`` per scale) of the mean absolute difference;
    target features are constants. Before the discriminator's ``start`` step the value is a
    graph-connected zero. See the module docstring for where D comes from.

    Args:
        objective, disc, conditional, condition_channels, channels, width, depth, norm, start,
            r1, d_steps, lr_d: of the standalone discriminator (see
            :class:`~losslab.losses.adversarial.AdversarialLoss`); ignored once linked.

    Shape: prediction, target ``(N, C, H, W)`` in ``input_range``; output scalar.
    """

    uses_condition: ClassVar[bool] = True
    judged_by_discriminator: ClassVar[bool] = True

    def __init__(
        self,
        objective: Objective = "hinge",
        disc: str = "patch",
        conditional: bool = False,
        condition_channels: int | None = None,
        width: int = 64,
        depth: int = 3,
        start: int = 0,
        r1: float = 0.0,
        lr_d: float = 2e-4,
        channels: int = 3,
        norm: str | None = "auto",
        d_steps: int = 1,
        *,
        input_range: Iterable[float] = (0.0, 1.0),
        check_values: bool | None = None,
    ) -> None:
        super().__init__(input_range=input_range, check_values=check_values)
        self.adversary: AdversarialLoss | None = AdversarialLoss(
            objective, disc, conditional, condition_channels, channels=channels, width=width,
            depth=depth, norm=norm, start=start, r1=r1, d_steps=d_steps, lr_d=lr_d,
            input_range=input_range, check_values=check_values,
        )
        object.__setattr__(self, "_partner", None)  # a reference, not a submodule

    def set_input_range(self, input_range: Iterable[float]) -> FeatureMatchingLoss:
        super().set_input_range(input_range)
        if self.adversary is not None:
            self.adversary.set_input_range(input_range)
        return self

    @property
    def partner(self) -> AdversarialLoss | None:
        """The adversarial term whose discriminator supplies the features (shared or own)."""
        return self.__dict__["_partner"] or self.adversary

    @property  # type: ignore[override]
    def min_size(self) -> int | None:  # type: ignore[override]
        """The partner's D's smallest image side (``None`` before a D is attached)."""
        partner = self.partner
        return partner.min_size if partner is not None else None

    def link(self, partner: AdversarialLoss) -> None:
        """Use ``partner``'s discriminator (kept as a reference) and drop this term's own."""
        if not isinstance(partner, AdversarialLoss):
            raise TypeError(f"feature matching links to an AdversarialLoss; got {type(partner).__name__}.")
        object.__setattr__(self, "_partner", partner)
        self.adversary = None

    def evaluate(self, prediction: Tensor, target: Tensor,
                 context: LossContext | None = None) -> Tensor:
        partner = self.partner
        if partner is None:  # pragma: no cover - an own adversary exists until linked
            raise RuntimeError("feature matching has no discriminator.")
        if not partner.active:
            return prediction.sum() * 0.0
        condition = context.condition if context is not None else None
        fake, real = partner.discriminator_features(prediction, target, condition)
        return feature_matching_loss(fake, real)


def link_feature_matching(loss: nn.Module) -> int:
    """Link feature-matching terms in ``loss`` to an adversarial term's D; returns how many.

    A term takes the first adversarial term of its own sum, else the first one anywhere in
    ``loss``; without any, it keeps its own discriminator (standalone).
    """
    owned = {id(m.adversary) for m in loss.modules() if isinstance(m, FeatureMatchingLoss)}
    everywhere = [m for m in loss.modules() if isinstance(m, AdversarialLoss) and id(m) not in owned]
    owners: dict[int, AdversarialLoss] = {}
    for module in loss.modules():
        if isinstance(module, WeightedSum):
            parts = [part.term for part in weighted_terms(module)]
            local = [term for term in parts if isinstance(term, AdversarialLoss)]
            for term in parts:
                if isinstance(term, FeatureMatchingLoss) and local:
                    owners.setdefault(id(term), local[0])
    linked = 0
    for module in list(loss.modules()):
        if isinstance(module, FeatureMatchingLoss):
            partner = owners.get(id(module)) or (everywhere[0] if everywhere else None)
            if partner is not None:
                module.link(partner)
                linked += 1
    return linked


def adversarial_terms(loss: nn.Module) -> list[AdversarialLoss]:
    """Every adversarial term inside ``loss`` (itself included), feature matching linked first.

    Idempotent; call it once after building the criterion, before attaching discriminators
    (linking drops a feature-matching term's own configuration). A standalone
    feature-matching term's own adversary is listed too, so its D gets built and trained.
    :func:`losslab.train.adversarial.attach_discriminators` calls it.
    """
    link_feature_matching(loss)
    return [m for m in loss.modules() if isinstance(m, AdversarialLoss)]
