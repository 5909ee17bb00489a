"""LDL, the artifact-map loss of Liang et al., "Details or Artifacts" (CVPR 2022).

GAN super-resolution models paint two kinds of high-frequency content: details (true or
plausible texture) and artifacts (noisy, unstable strokes). LDL observes that artifacts show up
as *local variance of the residual* in regions where the residual is otherwise uniform, and that
they are unstable during training, so an exponential moving average (EMA) of the generator does
not produce them. It penalises the L1 residual only where both hold:

1. ``R = sum_c |target - prediction|`` per pixel, ``(N, 1, H, W)`` (channel sum, ``[0, 1]``
   units);
2. pixel-level map ``M = var_kxk(R)``, the unbiased variance of ``R`` in the ``k x k`` window
   around each pixel (reflect-padded at the borders);
3. patch-level scale ``delta = var(R)^power`` per image (unbiased variance over all pixels;
   ``power = 1/5`` in the paper), so images with large, varied residuals weigh more;
4. refinement with the EMA generator's output ``P_ema``: ``M = 0`` wherever the current
   prediction's residual is smaller than the EMA's (``R < R_ema``: there the current model is
   already better, so whatever varies there is not an artifact it introduced);
5. ``loss = mean(delta * M * |target - prediction|)`` with the map detached (it selects pixels;
   its own gradient would push the residual to be uniform, not small).

The EMA prediction comes from the trainer in the loss context
(:attr:`~losslab.losses.context.LossContext.ema_prediction`, every training step when
``ema_decay > 0``; without it the map is unrefined; ``losslab train`` refuses an ``ldl`` term without EMA).
Without one (a standalone call, validation) step 4 is skipped: the paper's unrefined map.

Spec: ``l1 + 0.01*adversarial + 1.0*ldl`` (Real-ESRGAN trains LDL at weight 1).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor

from losslab.losses.base import Loss
from losslab.losses.context import LossContext, as_context
from losslab.losses.registry import register_loss


def local_variance(values: Tensor, window: int) -> Tensor:
    """Unbiased variance of ``values`` in the ``window x window`` neighbourhood of each pixel.

    Shape: ``(N, C, H, W) -> (N, C, H, W)``; the borders are reflect-padded (``H, W > window //
    2``). ``window`` is odd and ``>= 3``.
    """
    pad = window // 2
    padded = F.pad(values, (pad, pad, pad, pad), mode="reflect")
    mean = F.avg_pool2d(padded, window, stride=1)
    mean_square = F.avg_pool2d(padded * padded, window, stride=1)
    count = window * window
    return (mean_square - mean * mean).clamp_min(0.0) * (count / (count - 1))


def artifact_map(prediction: Tensor, target: Tensor, ema_prediction: Tensor | None = None,
                 window: int = 7, power: float = 0.2) -> Tensor:
    """LDL's artifact map ``delta * M`` (steps 1-4 of the module docstring), detached.

    Shape: prediction, target, ema_prediction ``(N, C, H, W)`` in ``[0, 1]``; output
    ``(N, 1, H, W)``, non-negative.
    """
    residual = (target - prediction).detach().abs().sum(dim=1, keepdim=True)
    pixel_level = local_variance(residual, window)
    patch_level = residual.flatten(1).var(dim=1).clamp_min(0.0).pow(power).view(-1, 1, 1, 1)
    weight = patch_level * pixel_level
    if ema_prediction is not None:
        ema_residual = (target - ema_prediction).detach().abs().sum(dim=1, keepdim=True)
        weight = weight.masked_fill(residual < ema_residual, 0.0)
    return weight


@register_loss("ldl", aliases=("artifact",))
class LDLLoss(Loss):
    """LDL artifact-map loss (Liang et al. 2022), refined with the EMA generator's output.

    ``mean(artifact_map * |target - prediction|)``; see the module docstring for the map.

    Args:
        window: side of the local-variance window, odd, ``>= 3`` (paper: 7).
        power: exponent of the patch-level residual variance, ``> 0`` (paper: 1/5).

    Shape:
        - prediction, target: ``(N, C, H, W)`` in ``input_range``, ``H, W > window // 2``.
        - output: scalar.
    """

    #: The trainer hands this term the EMA generator's prediction every training step.
    uses_ema_prediction: ClassVar[bool] = True

    def __init__(self, window: int = 7, power: float = 0.2, *,
                 input_range: Iterable[float] = (0.0, 1.0), check_values: bool | None = None
                 ) -> None:
        super().__init__(input_range=input_range, check_values=check_values)
        if isinstance(window, bool) or not isinstance(window, int) or window < 3 or window % 2 == 0:
            raise ValueError(f"window must be an odd integer >= 3 (the paper uses 7); got {window!r}.")
        if not power > 0:
            raise ValueError(f"power must be > 0 (the paper uses 0.2 = 1/5); got {power!r}.")
        self.window, self.power = window, float(power)
        self.min_size = window // 2 + 1

    def forward(self, prediction: Tensor, target: Tensor,
                context: LossContext | None = None) -> Tensor:
        """LDL loss; ``context.ema_prediction`` (the EMA model's output on the same inputs)
        refines the artifact map, without it the map is unrefined."""
        self.validate(prediction, target)
        return self.evaluate(prediction, target, as_context(context))

    def evaluate(self, prediction: Tensor, target: Tensor,
                 context: LossContext | None = None) -> Tensor:
        ema = context.ema_prediction if context is not None else None
        if ema is not None and ema.shape != prediction.shape:
            raise ValueError(
                f"the EMA prediction has shape {tuple(ema.shape)} but the prediction "
                f"{tuple(prediction.shape)}: pass LossContext(ema_prediction=ema_model(inputs)) "
                "for this step's inputs, or no EMA prediction."
            )
        if ema is not None:
            ema = ema.detach()
        prediction, target = self.to_unit_range(prediction), self.to_unit_range(target)
        weight = artifact_map(prediction, target, None if ema is None else self.to_unit_range(ema),
                              self.window, self.power)
        return (weight * (target - prediction).abs()).mean()
