"""Tests for losslab.models.registry: names, construction, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from losslab.models import (
    ConvAutoencoder,
    SuperResolutionNet,
    UNet,
    available_models,
    build_model,
    get_model_class,
    register_model,
)

#: Smallest options and input for every image model (a new model must be added here).
IMAGE_MODELS = {
    "autoencoder": ({"width": 4}, (1, 3, 8, 8), (1, 3, 8, 8)),
    "super_resolution": ({"width": 4, "blocks": 1}, (1, 3, 8, 8), (1, 3, 16, 16)),
    "unet": ({"in_channels": 3, "width": 4}, (1, 3, 8, 8), (1, 3, 8, 8)),
}


def test_available_models_lists_the_image_models() -> None:
    names = available_models()
    assert set(IMAGE_MODELS) <= set(names)
    assert names == sorted(names)
    assert "sr" not in names  # aliases are not listed


@pytest.mark.parametrize("name", sorted(IMAGE_MODELS))
def test_every_image_model_builds_by_name(name: str) -> None:
    options, inputs, expected = IMAGE_MODELS[name]
    model = build_model(name, **options)
    assert model(torch.rand(*inputs)).shape == expected


@pytest.mark.parametrize(
    ("alias", "cls"),
    [("conv_autoencoder", ConvAutoencoder), ("sr", SuperResolutionNet), ("edsr", SuperResolutionNet)],
)
def test_aliases(alias: str, cls: type) -> None:
    assert get_model_class(alias) is cls


def test_unknown_model_suggests_close_names_and_lists_all() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'unet2'\. Did you mean 'unet'") as info:
        build_model("unet2")
    assert "Known models: " in str(info.value)
    for name in IMAGE_MODELS:
        assert name in str(info.value)
    with pytest.raises(ValueError, match=r"unknown model 'transformer'\. Known models"):
        build_model("transformer")


def test_unknown_option_suggests_the_parameter() -> None:
    with pytest.raises(ValueError, match=r"no option 'dept'\. Did you mean 'depth'") as info:
        build_model("unet", in_channels=3, dept=2)
    assert "in_channels, out_channels, width, depth" in str(info.value)


def test_options_reach_the_constructor() -> None:
    model = build_model("unet", in_channels=1, out_channels=2, width=4, depth=2, output="linear")
    assert isinstance(model, UNet)
    assert (model.in_channels, model.out_channels, model.width, model.depth) == (1, 2, 4, 2)
    assert isinstance(model.activation, nn.Identity)


def test_invalid_hypotheses_raise() -> None:
    with pytest.raises(ValueError, match="hypotheses must be >= 1"):
        build_model("unet", in_channels=3, hypotheses=0)


def test_a_name_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_model("unet")
        class Other(nn.Module):
            pass
