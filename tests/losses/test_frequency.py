"""Frequency loss: Parseval's theorem, a full-spectrum reference, focal weights by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import losslab
from losslab.losses import FrequencyLoss
from losslab.losses.frequency import spectrum_distance


def _full_spectrum_reference(
    prediction: torch.Tensor, target: torch.Tensor, distance: str, focal: float
) -> torch.Tensor:
    """Straight from the definition: two full fft2 spectra, per-image normalised weights."""
    difference = torch.fft.fft2(prediction, norm="ortho") - torch.fft.fft2(target, norm="ortho")
    magnitude = difference.abs()
    values = magnitude if distance == "l1" else magnitude**2
    if focal > 0:
        weights = magnitude.detach() ** focal
        weights = weights / weights.flatten(1).max(dim=1).values.view(-1, 1, 1, 1)
        values = values * weights
    return values.flatten(1).mean(dim=1)


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 3, 15, 9), (2, 1, 8, 1), (1, 2, 7, 2)])
def test_parseval_mse_on_the_spectrum_equals_pixel_mse(shape: tuple[int, ...]) -> None:
    prediction, target = torch.rand(shape), torch.rand(shape)
    value = FrequencyLoss(distance="mse")(prediction, target)
    assert torch.allclose(value, F.mse_loss(prediction, target), rtol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (2, 3, 9, 13)])
@pytest.mark.parametrize(("distance", "focal"), [("l1", 0.0), ("l1", 1.0), ("mse", 1.0), ("l1", 2.5)])
def test_matches_the_full_spectrum_definition(shape: tuple[int, ...], distance: str, focal: float) -> None:
    target = torch.rand(shape)
    prediction = torch.rand(shape, requires_grad=True)
    got = FrequencyLoss(distance=distance, focal=focal, reduction="none")(prediction, target)  # type: ignore[arg-type]
    (grad,) = torch.autograd.grad(got.sum(), prediction)
    reference_input = prediction.detach().clone().requires_grad_(True)
    expected = _full_spectrum_reference(reference_input, target, distance, focal)
    expected.sum().backward()
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-7)
    # Same gradient as the definition with detached weights.
    assert torch.allclose(grad, reference_input.grad, rtol=1e-4, atol=1e-8)


def test_focal_weights_match_a_hand_calculation() -> None:
    # Two pixels, difference d = (0.3, 0.1): ortho spectrum D = ((d0 + d1)/sqrt2, (d0 - d1)/sqrt2)
    # = (0.4/sqrt2, 0.2/sqrt2); weights |D|^alpha / max = (1, 0.5^alpha).
    prediction = torch.tensor([[[[0.5, 0.3]]]])
    target = torch.tensor([[[[0.2, 0.2]]]])
    big, small = 0.4 / math.sqrt(2), 0.2 / math.sqrt(2)
    cases = {
        ("l1", 0.0): (big + small) / 2,
        ("l1", 1.0): (big + 0.5 * small) / 2,
        ("l1", 2.0): (big + 0.25 * small) / 2,
        ("mse", 1.0): (big**2 + 0.5 * small**2) / 2,
    }
    for (distance, focal), expected in cases.items():
        value = FrequencyLoss(distance=distance, focal=focal)(prediction, target)  # type: ignore[arg-type]
        assert float(value) == pytest.approx(expected, rel=1e-5), (distance, focal)


def test_focal_weights_are_normalised_per_image() -> None:
    target = torch.rand(1, 3, 8, 8) * 0.5
    error = torch.randn(1, 3, 8, 8) * 0.01
    prediction = torch.cat([target + error, target + 10 * error])
    per_sample = spectrum_distance(prediction, target.expand(2, -1, -1, -1), "l1", focal=1.0)
    # Same weights for both images (normalised per image), so the values scale with the error.
    assert float(per_sample[1] / per_sample[0]) == pytest.approx(10.0, rel=1e-4)


@pytest.mark.parametrize("focal", [0.0, 1.0])
def test_identical_images_give_zero_without_nan(focal: float) -> None:
    target = torch.rand(2, 3, 10, 10)
    prediction = target.clone().requires_grad_(True)
    value = FrequencyLoss(focal=focal)(prediction, target)
    value.backward()
    assert value.item() == 0.0
    assert torch.isfinite(prediction.grad).all()


def test_view_spec_reduction_and_errors() -> None:
    criterion = losslab.loss("frequency(luma, focal=1)")
    assert criterion.view.name == "luma" and criterion.focal == 1.0
    assert FrequencyLoss("luma").term_name == "frequency(luma)"
    target = torch.rand(2, 3, 8, 8)
    shifted = target.clone()
    shifted[:, 0] += 0.05 * 0.587  # red up, green down: luma unchanged
    shifted[:, 1] -= 0.05 * 0.299
    assert float(criterion(shifted, target)) == pytest.approx(0.0, abs=1e-6)
    assert FrequencyLoss(reduction="none")(shifted, target).shape == (2,)
    with pytest.raises(ValueError, match="distance"):
        FrequencyLoss(distance="l3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="focal"):
        FrequencyLoss(focal=-1)
