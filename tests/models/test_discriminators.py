"""PatchGAN discriminators: output geometry, features, spectral norm, conditional pairing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from losslab.models.discriminators import (
    ConditionalPatchDiscriminator,
    PatchDiscriminator,
    available_discriminators,
    build_discriminator,
    resize_condition,
)


@pytest.mark.parametrize(("depth", "size", "expected"), [(1, 8, 2), (2, 24, 4), (2, 31, 5), (3, 64, 6)])
def test_logit_map_size_follows_the_documented_formula(depth: int, size: int, expected: int) -> None:
    disc = PatchDiscriminator(width=4, depth=depth)
    logits = disc(torch.rand(2, 3, size, size))
    assert logits.shape == (2, 1, expected, expected)
    assert expected == size // 2**depth - 2


def test_pix2pix_layout_strided_4x4_convs_and_leaky_relu() -> None:
    disc = PatchDiscriminator(width=8, depth=3)
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (4, 4) for c in convs)
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 1]
    slopes = {m.negative_slope for m in disc.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.2}


def test_too_small_input_names_the_minimum() -> None:
    disc = PatchDiscriminator(width=4, depth=3)
    assert disc.min_size == 24
    with pytest.raises(ValueError, match="at least 24x24"):
        disc(torch.rand(1, 3, 23, 40))
    with pytest.raises(ValueError, match="in_channels=1"):
        disc(torch.rand(1, 1, 32, 32))


def test_features_are_the_block_outputs_of_the_same_pass() -> None:
    disc = PatchDiscriminator(width=4, depth=2)
    x = torch.rand(2, 3, 32, 32)
    logits, features = disc.forward_features(x)
    assert len(features) == 3
    assert [f.shape[1] for f in features] == [4, 8, 16]
    assert [f.shape[-1] for f in features] == [16, 8, 7]
    torch.testing.assert_close(logits, disc.head(features[-1]))
    torch.testing.assert_close(disc(x), logits)
    assert all(torch.equal(a, b) for a, b in zip(disc.features(x), features, strict=True))
    # LeakyReLU outputs: negative values are 0.2 x the pre-activation, so some are negative.
    assert (features[0] < 0).any()


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_norm_options(norm: str) -> None:
    disc = PatchDiscriminator(width=4, depth=2, norm=norm)
    kinds = {type(m) for m in disc.modules()}
    assert (nn.InstanceNorm2d in kinds) == (norm == "instance")
    assert (nn.BatchNorm2d in kinds) == (norm == "batch")
    assert disc(torch.rand(2, 3, 24, 24)).shape == (2, 1, 4, 4)
    with pytest.raises(ValueError, match="norm must be one of"):
        PatchDiscriminator(norm="layer")  # type: ignore[arg-type]


def test_spectral_norm_bounds_every_conv_to_unit_spectral_norm() -> None:
    disc = build_discriminator("patch_sn", width=4, depth=2)
    assert disc.spectral_norm and disc.norm == "none"
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(c, "parametrizations") for c in convs)
    for _ in range(30):  # power iterations run in training mode
        disc(torch.rand(1, 3, 24, 24))
    disc.eval()
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.05)
    plain = PatchDiscriminator(width=4, depth=2)
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())


def test_conditional_pairs_a_low_resolution_condition_by_bilinear_resizing() -> None:
    disc = ConditionalPatchDiscriminator(image_channels=3, condition_channels=3, width=4, depth=2)
    image, low_res = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 16, 16)
    upsampled = F.interpolate(low_res, size=(32, 32), mode="bilinear", align_corners=False)
    reference, _ = PatchDiscriminator.forward_features(disc, torch.cat([image, upsampled], dim=1))
    torch.testing.assert_close(disc(image, low_res), reference)
    assert disc.in_channels == 6
    nearest = ConditionalPatchDiscriminator(width=4, depth=2, resize="nearest")
    assert nearest.pair(image, low_res)[:, 3:, ::2, ::2].equal(low_res)


def test_conditional_accepts_stacked_past_frames_and_rejects_mismatches() -> None:
    disc = ConditionalPatchDiscriminator(image_channels=3, condition_channels=9, width=4, depth=2)
    clip = torch.rand(2, 3, 3, 24, 24)
    torch.testing.assert_close(disc(torch.rand(2, 3, 24, 24), clip).shape, torch.Size([2, 1, 4, 4]))
    assert resize_condition(clip, (24, 24)).shape == (2, 9, 24, 24)
    with pytest.raises(ValueError, match="condition_channels=3"):
        disc(torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24))
    with pytest.raises(ValueError, match="needs the condition"):
        disc(torch.rand(2, 3, 24, 24))
    with pytest.raises(ValueError, match="batch size"):
        disc(torch.rand(2, 3, 24, 24), torch.rand(1, 9, 24, 24))


def test_build_discriminator_names_and_errors() -> None:
    assert available_discriminators() == [
        "conditional_multiscale", "conditional_multiscale_sn", "conditional_patch",
        "conditional_patch_sn", "conditional_unet_sn", "multiscale", "multiscale_sn", "patch",
        "patch_sn", "unet_sn",
    ]
    disc = build_discriminator("conditional_patch", condition_channels=1, width=4, depth=1)
    assert isinstance(disc, ConditionalPatchDiscriminator) and disc.in_channels == 4
    with pytest.raises(ValueError, match="'patch'"):
        build_discriminator("pach")
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        PatchDiscriminator(depth=0)
