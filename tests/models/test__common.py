"""models._common: option and count checks, the output activation, the model input check."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from losslab.models._common import check_count, check_model_input, check_option, output_activation


def test_option_and_count_checks_name_the_value_and_the_choices() -> None:
    assert check_option("norm", "batch", ("batch", "none")) == "batch"
    with pytest.raises(ValueError, match=r"norm must be one of 'batch', 'none'; got 'layer'"):
        check_option("norm", "layer", ("batch", "none"))
    assert check_count("depth", 3) == 3
    with pytest.raises(ValueError, match=r"depth must be >= 1; got 0"):
        check_count("depth", 0)
    with pytest.raises(TypeError, match=r"width must be an int >= 2; got True \(bool\)"):
        check_count("width", True, minimum=2)  # type: ignore[arg-type]


def test_output_activation() -> None:
    assert isinstance(output_activation("sigmoid"), nn.Sigmoid)
    assert isinstance(output_activation("linear"), nn.Identity)
    with pytest.raises(ValueError, match=r"output must be one of 'sigmoid', 'linear'"):
        output_activation("tanh")


def test_model_input_check_suggests_the_crop_that_fits() -> None:
    check_model_input(torch.rand(1, 3, 16, 24), "unet", channels=3, multiple=8)
    with pytest.raises(ValueError, match=r"divisible by 8; got 20x24. Crop or pad to a multiple "
                                         r"of 8 \(e.g. 16x24\)"):
        check_model_input(torch.rand(1, 3, 20, 24), "unet", channels=3, multiple=8)
    with pytest.raises(ValueError, match=r"unet input must have 3 channels; got 1"):
        check_model_input(torch.rand(1, 1, 16, 16), "unet", channels=3)
    with pytest.raises(ValueError, match=r"4-D tensor .*unsqueeze\(0\)"):
        check_model_input(torch.rand(3, 16, 16), "unet", channels=3)
    with pytest.raises(TypeError, match=r"floating point; got torch.int64"):
        check_model_input(torch.zeros(1, 3, 16, 16, dtype=torch.long), "unet", channels=3)
