"""Models for the losslab tasks: every image model is a plain ``nn.Module``.

Build one by name with :func:`build_model` (``build_model("unet", in_channels=9, hypotheses=4)``);
:func:`available_models` lists the names. The discriminators (``PatchDiscriminator``,
``ConditionalPatchDiscriminator``, ``MultiScaleDiscriminator``, ``UNetDiscriminator``) are built
by name with :func:`build_discriminator` (the table :data:`DISCRIMINATORS`); the trainer builds
one for each adversarial term (:mod:`losslab.train.adversarial`).
"""

from losslab.models.autoencoder import ConvAutoencoder
from losslab.models.discriminator_unet import UNetDiscriminator
from losslab.models.discriminators import (
    DISCRIMINATORS,
    ConditionalPatchDiscriminator,
    PatchDiscriminator,
    available_discriminators,
    build_discriminator,
    discriminator_name,
)
from losslab.models.discriminators_multiscale import MultiScaleDiscriminator
from losslab.models.multi_hypothesis_head import (
    MultiHypothesisHead,
    ScoredHypothesisHead,
    ScoreHead,
)
from losslab.models.registry import (
    available_models,
    build_model,
    get_model_class,
    model_parameters,
    register_model,
)
from losslab.models.super_resolution import ResidualBlock, SuperResolutionNet
from losslab.models.unet import UNet

__all__ = [
    "DISCRIMINATORS",
    "ConditionalPatchDiscriminator",
    "ConvAutoencoder",
    "MultiHypothesisHead",
    "MultiScaleDiscriminator",
    "PatchDiscriminator",
    "ResidualBlock",
    "ScoreHead",
    "ScoredHypothesisHead",
    "SuperResolutionNet",
    "UNet",
    "UNetDiscriminator",
    "available_discriminators",
    "available_models",
    "build_discriminator",
    "build_model",
    "discriminator_name",
    "get_model_class",
    "model_parameters",
    "register_model",
]
