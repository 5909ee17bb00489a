"""Bad input gets a clear error naming the problem and the fix; checks can be switched off."""

from __future__ import annotations

import pytest
import torch

import losslab
from losslab.losses import L1Loss, set_value_checks


@pytest.fixture
def criterion() -> L1Loss:
    return L1Loss()


def test_shape_mismatch(criterion: L1Loss) -> None:
    with pytest.raises(ValueError, match=r"same shape; got prediction \(1, 3, 4, 4\) and target \(1, 3, 4, 5\)"):
        criterion(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))


def test_not_4d(criterion: L1Loss) -> None:
    with pytest.raises(ValueError, match=r"4-D tensor \(N, C, H, W\); got 3-D.*unsqueeze\(0\)"):
        criterion(torch.rand(3, 4, 4), torch.rand(3, 4, 4))


def test_integer_dtype(criterion: L1Loss) -> None:
    image = torch.randint(0, 255, (1, 3, 4, 4), dtype=torch.uint8)
    with pytest.raises(TypeError, match=r"floating-point tensor; got torch.uint8.*divide uint8"):
        criterion(image, image)


def test_dtype_mismatch(criterion: L1Loss) -> None:
    with pytest.raises(TypeError, match="same dtype"):
        criterion(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4, dtype=torch.float64))


def test_device_mismatch(criterion: L1Loss) -> None:
    meta = torch.empty(1, 3, 4, 4, device="meta")
    with pytest.raises(ValueError, match="same device"):
        criterion(torch.rand(1, 3, 4, 4), meta)


def test_channel_count_for_a_colour_view() -> None:
    with pytest.raises(ValueError, match="must have 3 channels"):
        losslab.loss("l1(luma)")(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4))


def test_nan_input(criterion: L1Loss) -> None:
    broken = torch.rand(1, 3, 4, 4)
    broken[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="prediction contains 1 NaN or Inf"):
        criterion(broken, torch.rand(1, 3, 4, 4))


def test_wrong_convention_is_caught_with_the_fix(criterion: L1Loss) -> None:
    signed = torch.rand(1, 3, 8, 8) * 2 - 1
    with pytest.raises(ValueError, match=r"\[-1, 1\] image: pass input_range=\(-1, 1\)"):
        criterion(torch.rand(1, 3, 8, 8), signed)
    bytes_like = torch.rand(1, 3, 8, 8) * 255
    with pytest.raises(ValueError, match=r"\[0, 255\] image: divide by 255"):
        criterion(bytes_like, bytes_like)


def test_small_overshoot_of_a_prediction_is_tolerated(criterion: L1Loss) -> None:
    target = torch.rand(1, 3, 8, 8)
    overshoot = target + 0.3  # a model early in training
    assert float(criterion(overshoot, target)) == pytest.approx(0.3, abs=1e-6)
    with pytest.raises(ValueError, match="target values"):
        criterion(target, target + 0.3)  # data must obey the convention


def test_value_checks_can_be_switched_off() -> None:
    broken = torch.full((1, 3, 4, 4), float("nan"))
    set_value_checks(False)
    try:
        assert torch.isnan(L1Loss()(broken, broken))
    finally:
        set_value_checks(True)
    assert torch.isnan(L1Loss(check_values=False)(broken, broken))
    assert torch.isnan(losslab.loss("l1", check_values=False)(broken, broken))


def test_bad_reduction_and_range() -> None:
    with pytest.raises(ValueError, match="reduction must be one of 'mean', 'sum', 'none'; got 'avg'"):
        L1Loss(reduction="avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="low < high"):
        L1Loss(input_range=(1, 0))


def test_a_gan_sized_overshoot_is_tolerated_but_not_a_byte_image(criterion: L1Loss) -> None:
    target = torch.rand(1, 3, 8, 8)
    overshoot = target.clone()
    overshoot[0, 0, 0, 0] = 1.53  # seen in an SRGAN-style run on [0, 1] data
    overshoot[0, 0, 0, 1] = -0.29
    assert torch.isfinite(criterion(overshoot, target))
    with pytest.raises(ValueError, match="prediction values"):
        criterion(target * 255, target)
