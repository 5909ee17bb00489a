"""metrics._common: the metrics' input check names outputs and targets, not prediction/target."""

from __future__ import annotations

import pytest
import torch

from losslab.metrics._common import check_image_pair


def test_a_good_pair_passes() -> None:
    check_image_pair(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), min_size=8)


@pytest.mark.parametrize(("outputs", "targets", "error", "message"), [
    (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 9), ValueError,
     r"outputs and targets must have the same shape"),
    (torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8), ValueError, r"outputs must have 3 channels"),
    (torch.rand(2, 3, 8, 8), torch.zeros(2, 3, 8, 8, dtype=torch.uint8), TypeError,
     r"targets must be a floating-point tensor"),
    (torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4), ValueError, r"outputs must be at least 8x8"),
])
def test_errors_name_outputs_and_targets(outputs: torch.Tensor, targets: torch.Tensor,
                                         error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        check_image_pair(outputs, targets, min_size=8)
    assert "prediction" not in str(caught.value)
