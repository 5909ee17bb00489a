"""synthesis._common: building the criterion (adversarial terms refused, schedules at their
final weight), the target checks, range maps, the step-size schedule and the image numbers."""

from __future__ import annotations

import math

import pytest
import torch

import losslab
from losslab.synthesis._common import (
    check_steps,
    check_target,
    cosine_rate,
    criterion_from,
    from_unit,
    image_numbers,
    minimum_size,
    to_unit,
)


def test_criterion_from_a_spec_or_a_module_and_its_refusals() -> None:
    criterion, name, input_range = criterion_from("l1 + mse@ramp(10,20)", (-1, 1))
    assert name == "l1 + mse@ramp(10,20)" and input_range == (-1.0, 1.0)
    assert criterion.current_weights()["mse"] == 1.0  # the ramp is at its final weight
    built = losslab.loss("ssim")
    copy, _, _ = criterion_from(built, None)
    assert copy is not built  # a copy: yours is never changed
    with pytest.raises(ValueError, match=r"was built for input_range=\(0.0, 1.0\)"):
        criterion_from(built, (-1, 1))
    with pytest.raises(ValueError, match=r"adversarial"):
        criterion_from("l1 + adversarial", None)
    with pytest.raises(TypeError):
        criterion_from(3, None)  # type: ignore[arg-type]


def test_target_checks_name_the_term_and_the_fix() -> None:
    criterion = losslab.loss("ms_ssim(scales=3)")
    assert minimum_size(criterion) == (41, "ms_ssim(scales=3)")
    assert check_target(torch.rand(3, 48, 48), criterion, "ms_ssim").shape == (1, 3, 48, 48)
    with pytest.raises(ValueError, match=r"needs images of at least 41x41 pixels; the target is "
                                         r"32x32"):
        check_target(torch.rand(1, 3, 32, 32), criterion, "ms_ssim")
    with pytest.raises(ValueError, match=r"needs a 3-channel RGB image; the target is grey"):
        check_target(torch.rand(1, 1, 16, 16), losslab.loss("l1(luma)"), "l1(luma)")
    with pytest.raises(ValueError, match=r"must be one image"):
        check_target(torch.rand(2, 3, 16, 16), losslab.loss("l1"), "l1")
    assert check_target(torch.rand(1, 3, 8, 8).half(), losslab.loss("l1"), "l1").dtype == torch.float32


def test_range_maps_step_size_and_step_count() -> None:
    images = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(to_unit(from_unit(images, (-1.0, 1.0)), (-1.0, 1.0)), images)
    assert float(from_unit(torch.ones(1), (0.0, 255.0))) == 255.0
    assert cosine_rate(0, 100) == 1.0 and cosine_rate(100, 100) == pytest.approx(0.01)
    assert cosine_rate(50, 100) == pytest.approx(0.01 + 0.99 * 0.5)
    assert check_steps(3) == 3
    for bad in (0, True, 2.5):
        with pytest.raises(ValueError, match=r"steps must be a positive integer"):
            check_steps(bad)  # type: ignore[arg-type]


def test_image_numbers_are_in_unit_range_units() -> None:
    # in (-1, 1): grey 0 is 0.5 in [0, 1] units, black -1 is 0, so every pixel is 0.5 off
    image, target = torch.zeros(1, 3, 16, 16), torch.full((1, 3, 16, 16), -1.0)
    numbers = image_numbers(image, target, (-1.0, 1.0), with_ssim=True)
    assert numbers["rmse"] == pytest.approx(0.5)
    assert numbers["err_red"] == pytest.approx(0.5) and numbers["ssim"] is not None
    grey = image_numbers(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), (0.0, 1.0), with_ssim=True)
    assert grey["err_red"] is None and grey["ssim"] is None  # 8 px: below SSIM's 11-px window
    assert math.isfinite(grey["rmse"])  # type: ignore[arg-type]
