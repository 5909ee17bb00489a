"""U-Net discriminator with spectral norm: per-pixel logits, local and global evidence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from losslab.models.discriminator_unet import UNetDiscriminator
from losslab.models.discriminators import build_discriminator


@pytest.mark.parametrize("size", [(32, 32), (37, 21), (8, 8)])
def test_logits_have_the_image_size(size: tuple[int, int]) -> None:
    disc = UNetDiscriminator(width=4, depth=3)
    out = disc(torch.rand(2, 3, *size))
    assert out.shape == (2, 1, *size)


def test_inner_convolutions_are_spectrally_normalised_and_the_ends_are_not() -> None:
    disc = build_discriminator("unet_sn", width=4, depth=2)
    normalised = [name for name, m in disc.named_modules()
                  if isinstance(m, nn.Conv2d) and hasattr(m, "parametrizations")]
    plain = [name for name, m in disc.named_modules()
             if isinstance(m, nn.Conv2d) and not hasattr(m, "parametrizations")]
    assert plain == ["stem", "head"]
    assert len(normalised) == 2 + 2 + 2  # down, up, refine
    # Spectral norm bounds each normalised layer's largest singular value by about 1.
    disc.train()
    for _ in range(20):  # power iterations converge while training
        disc(torch.rand(1, 3, 16, 16))
    for name, m in disc.named_modules():
        if name in normalised:
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert float(sigma) == pytest.approx(1.0, abs=0.05)


def test_a_local_change_moves_nearby_logits_most() -> None:
    torch.manual_seed(0)
    disc = UNetDiscriminator(width=8, depth=2, spectral_norm=False).eval()
    image = torch.rand(1, 3, 32, 32)
    changed = image.clone()
    changed[..., 2:6, 2:6] = 1.0 - changed[..., 2:6, 2:6]
    delta = (disc(changed) - disc(image)).abs()[0, 0]
    near, far = delta[:8, :8].mean(), delta[20:, 20:].mean()
    assert near > 3 * far  # per-pixel verdicts localise the change


def test_conditional_form_and_errors() -> None:
    disc = build_discriminator("conditional_unet_sn", image_channels=3, condition_channels=9,
                               width=4, depth=2)
    assert disc.conditional and disc.in_channels == 12
    assert disc(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 3, 8, 8)).shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match="needs the condition"):
        disc(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="condition_channels=3"):
        disc(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="at least 4x4"):
        disc(torch.rand(2, 3, 3, 16), torch.rand(2, 9, 3, 16))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        UNetDiscriminator(width=4, depth=1)(torch.rand(2, 1, 8, 8))
