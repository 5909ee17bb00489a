"""Adversarial loss terms: GAN objectives, the generator-side term and feature matching.

- :mod:`.objectives`: pure functions of discriminator logits (hinge, non-saturating, LSGAN,
  relativistic; D accuracy, R1, VQGAN's adaptive weight, feature-matching distance).
- :mod:`.loss`: :class:`AdversarialLoss`, the spec term ``adversarial(...)``: the objective,
  the discriminator's configuration and a slot for the discriminator; its call is the
  generator's loss, :meth:`AdversarialLoss.discriminator_objective` is what D minimises.
- :mod:`.feature_matching`: :class:`FeatureMatchingLoss` (``feature_matching``) and
  :func:`adversarial_terms`, which finds the terms of a criterion and links feature matching
  to its discriminator.

Discriminators are models and their training is a training-loop job: the layering keeps
``losses`` free of ``models`` imports, so :mod:`losslab.train.adversarial` builds each term's
discriminator (:func:`losslab.models.build_discriminator`), attaches it with its optimizer and
runs the D step; its docstring shows the loop for your own PyTorch code. Contract:
``docs/architecture.md``, "Adversarial terms".
"""

from losslab.losses.adversarial.feature_matching import (
    FeatureMatchingLoss,
    adversarial_terms,
    link_feature_matching,
)
from losslab.losses.adversarial.loss import (
    DISCRIMINATOR_ARCHITECTURES,
    AdversarialLoss,
    DiscriminatorCollapseWarning,
    frozen,
)
from losslab.losses.adversarial.objectives import (
    OBJECTIVES,
    Objective,
    adaptive_weight,
    discriminator_accuracy,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    r1_penalty,
    scale_mean,
)

__all__ = [
    "DISCRIMINATOR_ARCHITECTURES",
    "OBJECTIVES",
    "AdversarialLoss",
    "DiscriminatorCollapseWarning",
    "FeatureMatchingLoss",
    "Objective",
    "adaptive_weight",
    "adversarial_terms",
    "discriminator_accuracy",
    "discriminator_loss",
    "feature_matching_loss",
    "frozen",
    "generator_loss",
    "link_feature_matching",
    "r1_penalty",
    "scale_mean",
]
