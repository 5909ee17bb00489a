"""Pixel distances against hand calculations, and the seed's invariances (what each view ignores)."""

from __future__ import annotations

import pytest
import torch

import losslab
from losslab.core.color import ycbcr_matrix
from losslab.losses import CharbonnierLoss, HuberLoss, L1Loss, MSELoss


def _recolour_keeping_luma(images: torch.Tensor, angle: float = 1.0) -> torch.Tensor:
    """Rotate the (Cb, Cr) vector: colours change completely, BT.601 luma stays exact."""
    matrix = ycbcr_matrix().float()
    ycc = torch.einsum("kc,nchw->nkhw", matrix, images)
    cos, sin = torch.cos(torch.tensor(angle)), torch.sin(torch.tensor(angle))
    cb, cr = ycc[:, 1] * cos - ycc[:, 2] * sin, ycc[:, 1] * sin + ycc[:, 2] * cos
    rotated = torch.stack([ycc[:, 0], cb, cr], dim=1)
    return torch.einsum("kc,nchw->nkhw", torch.linalg.inv(matrix), rotated)


def test_values_match_hand_calculation() -> None:
    p = torch.tensor([0.0, 0.5, 1.0, 0.25]).view(1, 1, 2, 2)
    t = torch.tensor([0.5, 0.5, 0.0, 0.25]).view(1, 1, 2, 2)
    assert float(L1Loss()(p, t)) == pytest.approx((0.5 + 0 + 1.0 + 0) / 4)
    assert float(MSELoss()(p, t)) == pytest.approx((0.25 + 0 + 1.0 + 0) / 4)
    eps = 0.1
    expected = sum((d * d + eps * eps) ** 0.5 for d in (0.5, 0.0, 1.0, 0.0)) / 4
    assert float(CharbonnierLoss(eps=eps)(p, t)) == pytest.approx(expected)
    # Huber, delta 0.6: 0.5 -> 0.5*0.25 = 0.125 (quadratic); 1.0 -> 0.6*(1 - 0.3) = 0.42 (linear)
    assert float(HuberLoss(delta=0.6)(p, t)) == pytest.approx((0.125 + 0.42) / 4)
    assert float(L1Loss(reduction="sum")(p, t)) == pytest.approx(1.5)
    assert L1Loss(reduction="none")(p, t).shape == (1, 1, 2, 2)


def test_luma_loss_is_zero_for_a_colour_change_that_keeps_luma(photo_batch: torch.Tensor) -> None:
    recoloured = _recolour_keeping_luma(photo_batch * 0.5 + 0.25)  # stay inside [0, 1]
    original = photo_batch * 0.5 + 0.25
    assert (recoloured - original).abs().max() > 0.05  # the colours really changed
    assert float(losslab.loss("l1(luma)")(recoloured, original)) < 1e-6
    assert float(losslab.loss("l1")(recoloured, original)) > 0.01


def test_red_loss_ignores_green_and_blue(photo_batch: torch.Tensor) -> None:
    changed = photo_batch.clone()
    changed[:, 1:] = torch.rand_like(changed[:, 1:])
    assert float(losslab.loss("l1(red)")(changed, photo_batch)) == 0.0
    assert float(losslab.loss("l1")(changed, photo_batch)) > 0.1
    assert float(losslab.loss("l1(green)")(changed, photo_batch)) > 0.1


def test_chroma_loss_ignores_brightness_shift(photo_batch: torch.Tensor) -> None:
    darker = photo_batch * 0.8 + 0.05
    gray_shift = darker + 0.1
    assert float(losslab.loss("l1(chroma)")(gray_shift, darker)) < 1e-6
    assert float(losslab.loss("l1(luma)")(gray_shift, darker)) == pytest.approx(0.1, abs=1e-5)


@pytest.mark.parametrize("spec", ["mse", "l1", "charbonnier", "huber", "l1(luma)", "mse(chroma)"])
def test_declared_range_gives_the_same_value(spec: str, photo_batch: torch.Tensor) -> None:
    noisy = (photo_batch + 0.05 * torch.randn_like(photo_batch)).clamp(0, 1)
    unit = losslab.loss(spec)(noisy, photo_batch)
    signed = losslab.loss(spec, input_range=(-1, 1))(noisy * 2 - 1, photo_batch * 2 - 1)
    torch.testing.assert_close(unit, signed, rtol=1e-5, atol=1e-6)
