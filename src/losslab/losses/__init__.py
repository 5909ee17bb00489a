"""Composable image losses: every loss is an ``nn.Module`` called as ``loss(prediction, target)``.

Build one from a spec with :func:`loss` (``loss("mse + 0.01*perceptual")``) or compose objects
(``L1Loss("luma") + 0.01 * PerceptualLoss()``). ``available_losses()`` lists every name.
"""

from losslab.losses._validation import set_value_checks, value_checks_enabled
from losslab.losses.base import Loss, WeightedSum, WeightSchedule
from losslab.losses.pixel import CharbonnierLoss, HuberLoss, L1Loss, MSELoss, PixelLoss
from losslab.losses.registry import (
    available_losses,
    build_loss,
    format_loss_table,
    get_loss_entry,
    register_loss,
)
from losslab.losses.spec import SpecError, loss, parse_spec
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

__all__ = [
    "ChannelView",
    "CharbonnierLoss",
    "ChromaView",
    "ColorView",
    "HuberLoss",
    "IdentityView",
    "L1Loss",
    "Loss",
    "LumaView",
    "MSELoss",
    "PixelLoss",
    "SpecError",
    "WeightSchedule",
    "WeightedSum",
    "available_losses",
    "available_views",
    "build_loss",
    "format_loss_table",
    "get_loss_entry",
    "loss",
    "luma_weights",
    "parse_spec",
    "register_loss",
    "resolve_view",
    "set_value_checks",
    "value_checks_enabled",
    "ycbcr_matrix",
]
