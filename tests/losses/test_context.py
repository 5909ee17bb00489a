"""losses/context.py: the per-step context a trainer hands to the weighted sum."""

from __future__ import annotations

import pytest
import torch

from losslab.losses import LDLLoss, LossContext
from losslab.losses.context import NO_CONTEXT, as_context


def test_as_context_accepts_none_and_contexts_only() -> None:
    assert as_context(None) is NO_CONTEXT
    context = LossContext(condition=torch.zeros(1))
    assert as_context(context) is context
    with pytest.raises(TypeError, match="got Tensor"):
        as_context(torch.zeros(1))


def test_ldl_reads_the_ema_prediction_from_the_context() -> None:
    torch.manual_seed(0)
    target = torch.rand(1, 3, 16, 16)
    prediction = (target + 0.2 * torch.randn_like(target)).clamp(0, 1)
    unrefined = LDLLoss()(prediction, target)
    exact_ema = LDLLoss()(prediction, target, LossContext(ema_prediction=target))
    # An exact EMA beats the model everywhere, so the refined map removes no pixel; a context
    # without an EMA prediction is the unrefined map.
    assert float(exact_ema) == pytest.approx(float(unrefined))
    assert float(LDLLoss()(prediction, target, LossContext())) == float(unrefined)
    # An EMA far worse than the model: the model beats it almost everywhere, and where it
    # does the map is 0 (only pixels where clamping made the EMA exact remain).
    worse_ema = (target + 0.5).clamp(0, 1)
    refined = LDLLoss()(prediction, target, LossContext(ema_prediction=worse_ema))
    assert 0.0 <= float(refined) < 0.05 * float(unrefined)
