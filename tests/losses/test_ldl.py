"""LDL artifact-map loss: the map against a direct per-window computation, and the EMA rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import losslab
from losslab.losses import LossContext
from losslab.losses.ldl import LDLLoss, artifact_map, local_variance


def reference_map(prediction: np.ndarray, target: np.ndarray, ema: np.ndarray | None,
                  window: int, power: float) -> np.ndarray:
    """The map of the LDL paper, pixel by pixel with numpy (reflect-padded windows)."""
    residual = np.abs(target - prediction).sum(axis=1)  # (N, H, W)
    pad = window // 2
    out = np.zeros_like(residual)
    for n in range(residual.shape[0]):
        padded = np.pad(residual[n], pad, mode="reflect")
        for i in range(residual.shape[1]):
            for j in range(residual.shape[2]):
                out[n, i, j] = padded[i:i + window, j:j + window].var(ddof=1)
        out[n] *= residual[n].var(ddof=1) ** power
        if ema is not None:
            out[n][residual[n] < np.abs(target[n] - ema[n]).sum(axis=0)] = 0.0
    return out[:, None]


@pytest.mark.parametrize("window", [3, 7])
@pytest.mark.parametrize("with_ema", [False, True])
def test_map_matches_a_direct_computation(window: int, with_ema: bool) -> None:
    torch.manual_seed(0)
    target = torch.rand(2, 3, 12, 10, dtype=torch.float64)
    prediction = (target + 0.2 * torch.randn_like(target)).clamp(0, 1)
    ema = (target + 0.1 * torch.randn_like(target)).clamp(0, 1) if with_ema else None
    got = artifact_map(prediction, target, ema, window, 0.2)
    expected = reference_map(prediction.numpy(), target.numpy(),
                             None if ema is None else ema.numpy(), window, 0.2)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-12)
    criterion = LDLLoss(window=window)
    value = criterion(prediction, target, LossContext(ema_prediction=ema))
    direct = (torch.from_numpy(expected) * (target - prediction).abs()).mean()
    assert float(value) == pytest.approx(float(direct), rel=1e-9)


def test_local_variance_of_a_constant_is_zero_and_of_a_step_is_positive_at_the_edge() -> None:
    flat = torch.full((1, 1, 9, 9), 0.3)
    assert float(local_variance(flat, 3).abs().max()) < 1e-7
    step = torch.zeros(1, 1, 9, 9)
    step[..., 5:] = 1.0
    variance = local_variance(step, 3)[0, 0]
    assert float(variance[:, 0].max()) == 0.0 and float(variance[:, 4].min()) > 0.2


def test_pixels_where_the_model_beats_its_ema_get_no_gradient() -> None:
    torch.manual_seed(1)
    target = torch.rand(1, 3, 16, 16)
    prediction = (target + 0.3 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)
    ema = target.clone()
    ema[..., :8] = (target[..., :8] + 0.6).clamp(0, 1)  # EMA worse on the left half
    criterion = LDLLoss()
    criterion(prediction, target, LossContext(ema_prediction=ema)).backward()
    residual = (target - prediction.detach()).abs().sum(1)
    better = residual < (target - ema).abs().sum(1)
    assert not better[..., 8:].any()  # right half: the EMA is exact, the model cannot beat it
    assert better[..., :8].float().mean() > 0.5  # left half: the model mostly beats the EMA
    grad = prediction.grad.abs().sum(1)
    assert float(grad[better].abs().max()) == 0.0
    assert float(grad[~better].abs().sum()) > 0.0


def test_errors_and_spec() -> None:
    built = losslab.loss("l1 + ldl(window=5)")
    assert isinstance(built.terms[1], LDLLoss) and built.terms[1].window == 5
    with pytest.raises(ValueError, match="odd integer >= 3"):
        LDLLoss(window=4)
    with pytest.raises(ValueError, match="power must be > 0"):
        LDLLoss(power=0)
    with pytest.raises(ValueError, match="ema_prediction=ema_model"):
        LDLLoss()(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8),
                  LossContext(ema_prediction=torch.rand(1, 3, 8, 8)))
