"""Composable image losses: every loss is an ``nn.Module`` called as ``loss(prediction, target)``.

Build one from a spec with :func:`loss` (``loss("mse + 0.01*perceptual")``) or compose objects
(``L1Loss("luma") + 0.01 * PerceptualLoss()``). ``available_losses()`` lists every name.
"""

from losslab.core.validation import RangeMixupWarning, set_value_checks, value_checks_enabled
from losslab.losses.adversarial import (
    AdversarialLoss,
    DiscriminatorCollapseWarning,
    FeatureMatchingLoss,
    adversarial_terms,
    link_feature_matching,
)
from losslab.losses.base import Loss
from losslab.losses.context import LossContext
from losslab.losses.frequency import FrequencyLoss
from losslab.losses.gmsd import GMSDLoss, MSGMSDLoss
from losslab.losses.gradient import GradientDifferenceLoss
from losslab.losses.haarpsi import HaarPSILoss
from losslab.losses.ldl import LDLLoss
from losslab.losses.lpips import LPIPSLoss
from losslab.losses.mdsi import MDSILoss
from losslab.losses.multi_hypothesis import MultiHypothesisLoss, best_hypothesis, winner_takes_all
from losslab.losses.nlpd import NLPDLoss
from losslab.losses.perceptual import PerceptualLoss
from losslab.losses.pixel import CharbonnierLoss, HuberLoss, L1Loss, MSELoss, PixelLoss
from losslab.losses.registry import (
    available_losses,
    build_loss,
    format_loss_table,
    get_loss_entry,
    register_loss,
)
from losslab.losses.schedule import WeightSchedule
from losslab.losses.scoring import CRPSLoss, EnergyScoreLoss, KernelScoreLoss, ScoringRuleLoss
from losslab.losses.spatial import SpatialView
from losslab.losses.spec import SpecError, loss, parse_spec
from losslab.losses.structural import MSSSIMLoss, SSIMLoss
from losslab.losses.swd import SlicedWassersteinLoss
from losslab.losses.views import (
    ChannelView,
    ChromaView,
    ColorView,
    IdentityView,
    LumaView,
    available_views,
    luma_weights,
    resolve_view,
    ycbcr_matrix,
)
from losslab.losses.weighted_sum import WeightedSum

__all__ = [
    "AdversarialLoss",
    "CRPSLoss",
    "ChannelView",
    "CharbonnierLoss",
    "ChromaView",
    "ColorView",
    "DiscriminatorCollapseWarning",
    "EnergyScoreLoss",
    "FeatureMatchingLoss",
    "FrequencyLoss",
    "GMSDLoss",
    "GradientDifferenceLoss",
    "HaarPSILoss",
    "HuberLoss",
    "IdentityView",
    "KernelScoreLoss",
    "L1Loss",
    "LDLLoss",
    "LPIPSLoss",
    "Loss",
    "LossContext",
    "LumaView",
    "MDSILoss",
    "MSELoss",
    "MSGMSDLoss",
    "MSSSIMLoss",
    "MultiHypothesisLoss",
    "NLPDLoss",
    "PerceptualLoss",
    "PixelLoss",
    "RangeMixupWarning",
    "SSIMLoss",
    "ScoringRuleLoss",
    "SlicedWassersteinLoss",
    "SpatialView",
    "SpecError",
    "WeightSchedule",
    "WeightedSum",
    "adversarial_terms",
    "available_losses",
    "available_views",
    "best_hypothesis",
    "build_loss",
    "format_loss_table",
    "get_loss_entry",
    "link_feature_matching",
    "loss",
    "luma_weights",
    "parse_spec",
    "register_loss",
    "resolve_view",
    "set_value_checks",
    "value_checks_enabled",
    "winner_takes_all",
    "ycbcr_matrix",
]
