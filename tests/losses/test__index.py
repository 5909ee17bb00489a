"""losses._index: one rule turns a quality index into a loss (a deviation as it is, a
similarity as ``1 - index``), the view rule, and the channel errors."""

from __future__ import annotations

import pytest
import torch

import losslab
from losslab import functional as LF


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 32, 32, generator=generator)
    return (target + 0.1 * torch.randn(target.shape, generator=generator)).clamp(0, 1), target


def test_a_deviation_is_the_loss_and_a_similarity_is_one_minus_the_loss() -> None:
    prediction, target = _pair()
    gmsd = losslab.loss("gmsd(reduction=none)")(prediction, target)
    torch.testing.assert_close(gmsd, LF.gmsd(prediction, target))
    haarpsi = losslab.loss("haarpsi(reduction=none)")(prediction, target)
    torch.testing.assert_close(haarpsi, 1 - LF.haarpsi(prediction, target))
    for spec in ("gmsd", "haarpsi", "mdsi", "ms_gmsd"):
        # haarpsi: 1 - logit(sigmoid-pooled) in float32 leaves about 2e-6
        assert float(losslab.loss(spec)(target, target)) == pytest.approx(0.0, abs=1e-5)


def test_a_one_channel_view_gives_the_greyscale_form() -> None:
    prediction, target = _pair()
    luma = losslab.losses.LumaView()
    torch.testing.assert_close(losslab.loss("gmsd(luma, reduction=none)")(prediction, target),
                               LF.gmsd(luma(prediction), luma(target)))


def test_other_channel_counts_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"gives 2 channels. Use a single-channel view such as "
                                         r"gmsd\(luma\)"):
        losslab.loss("gmsd(chroma)")
    with pytest.raises(ValueError, match=r"takes RGB \(3 channels\) or greyscale \(1 channel\) "
                                         r"images; got 4 channels"):
        losslab.loss("gmsd")(torch.rand(1, 4, 16, 16), torch.rand(1, 4, 16, 16))
