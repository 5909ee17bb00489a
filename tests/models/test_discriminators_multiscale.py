"""Multi-scale PatchGAN: every scale sees its own downsampled copy and learns from it."""

from __future__ import annotations

import pytest
import torch

from losslab.models.discriminators import PatchDiscriminator, build_discriminator
from losslab.models.discriminators_multiscale import MultiScaleDiscriminator, downsample


def test_each_scale_sees_the_image_at_its_own_size() -> None:
    disc = MultiScaleDiscriminator(scales=3, width=4, depth=1)
    seen: list[tuple[int, ...]] = []
    for sub in disc.discriminators:
        sub.blocks[0].register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    image = torch.rand(2, 3, 48, 40)
    logits = disc(image)
    assert seen == [(2, 3, 48, 40), (2, 3, 24, 20), (2, 3, 12, 10)]
    # The logit maps are those of independent patch discriminators on each copy.
    copies = [image, downsample(image), downsample(downsample(image))]
    for sub, copy, out in zip(disc.discriminators, copies, logits, strict=True):
        torch.testing.assert_close(out, sub(copy))
    assert isinstance(disc.discriminators[0], PatchDiscriminator)
    assert disc.discriminators[0].head.weight.data_ptr() != disc.discriminators[1].head.weight.data_ptr()


def test_downsample_is_a_3x3_mean_without_the_padding() -> None:
    image = torch.rand(1, 1, 5, 5)
    out = downsample(image)
    assert out.shape == (1, 1, 3, 3)
    assert float(out[0, 0, 1, 1]) == pytest.approx(float(image[0, 0, 1:4, 1:4].mean()), rel=1e-6)
    assert float(out[0, 0, 0, 0]) == pytest.approx(float(image[0, 0, :2, :2].mean()), rel=1e-6)


def test_every_scale_receives_a_gradient_and_only_coarse_structure_reaches_coarse_scales() -> None:
    torch.manual_seed(0)
    disc = MultiScaleDiscriminator(scales=2, width=4, depth=1, norm="none")
    image = torch.rand(2, 3, 32, 32)
    sum(out.mean() for out in disc(image)).backward()
    for sub in disc.discriminators:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in sub.parameters())
    # A pixel checkerboard averages away at the coarse scale (3x3 mean of +-1 is +-1/9), so the
    # coarse scale's input changes 9x less than the fine one's.
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * 2.0 - 1.0
    fine_change = checker.abs().mean()
    coarse_change = downsample(checker.expand(1, 1, 32, 32))[..., 1:-1, 1:-1].abs().mean()
    assert float(coarse_change) == pytest.approx(float(fine_change) / 9, rel=1e-5)


def test_conditional_form_pairs_the_condition_at_every_scale() -> None:
    disc = build_discriminator("conditional_multiscale", image_channels=3, condition_channels=1,
                               width=4, depth=1, scales=2)
    assert disc.conditional and disc.discriminators[1].in_channels == 4
    logits = disc(torch.rand(2, 3, 24, 24), torch.rand(2, 1, 12, 12))
    assert [tuple(m.shape) for m in logits] == [(2, 1, 10, 10), (2, 1, 4, 4)]
    with pytest.raises(ValueError, match="needs the condition"):
        disc(torch.rand(2, 3, 24, 24))


def test_min_size_covers_the_coarsest_scale() -> None:
    disc = MultiScaleDiscriminator(scales=2, width=4, depth=2)
    assert disc.min_size == 24
    disc(torch.rand(1, 3, 24, 24))
    with pytest.raises(ValueError, match=r"at least 24x24 .* fewer scales"):
        disc(torch.rand(1, 3, 23, 30))
    with pytest.raises(ValueError, match="scales must be a positive integer"):
        MultiScaleDiscriminator(scales=0)


def test_spectral_norm_variant_normalises_every_scale() -> None:
    disc = build_discriminator("multiscale_sn", width=4, depth=1, scales=2)
    for sub in disc.discriminators:
        assert sub.spectral_norm and sub.norm == "none"
    out = disc(torch.rand(1, 3, 24, 24))
    assert all(torch.isfinite(o).all() for o in out)
