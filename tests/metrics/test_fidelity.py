"""PSNR / SSIM / MS-SSIM against scikit-image, pytorch-msssim and hand-checkable cases; the SSIM
metrics are the losses' functions (one implementation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytorch_msssim
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import losslab.metrics
from losslab.losses import MSSSIMLoss, SSIMLoss
from losslab.losses.structural import ms_ssim_min_size, ms_ssim_weights
from losslab.metrics import mean_ms_ssim as ms_ssim
from losslab.metrics import mean_ssim as ssim
from losslab.metrics import ms_ssim_scales, per_image_psnr, psnr_from_mse
from losslab.metrics import pooled_psnr as psnr


@pytest.fixture()
def noisy(photo_batch: torch.Tensor) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return (photo_batch + 0.05 * torch.randn(photo_batch.shape, generator=generator)).clamp(0, 1)


def _hwc(image: torch.Tensor) -> np.ndarray:
    return image.permute(1, 2, 0).double().numpy()


def test_per_image_psnr_matches_skimage(photo_batch: torch.Tensor, noisy: torch.Tensor) -> None:
    reference = [
        peak_signal_noise_ratio(_hwc(t), _hwc(o), data_range=1.0)
        for o, t in zip(noisy, photo_batch, strict=True)
    ]
    assert per_image_psnr(noisy, photo_batch).tolist() == pytest.approx(reference, abs=1e-3)


def test_psnr_is_pooled_over_the_set_matching_skimage_on_the_stacked_set(
    photo_batch: torch.Tensor, noisy: torch.Tensor
) -> None:
    # skimage on the whole set as one array is the pooled definition: one MSE over every pixel.
    stacked = peak_signal_noise_ratio(photo_batch.double().numpy(), noisy.double().numpy(),
                                      data_range=1.0)
    assert psnr(noisy, photo_batch) == pytest.approx(stacked, abs=1e-3)
    mean_squared = float((noisy - photo_batch).square().mean())
    assert psnr(noisy, photo_batch) == pytest.approx(-10 * math.log10(mean_squared), abs=1e-4)


def test_a_near_flat_image_cannot_dominate_the_pooled_psnr() -> None:
    # The case of issue 10: a mean of per-image PSNRs counts an almost exact flat crop at 180 dB.
    target = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    target[3] = 0.5
    output = (target + 0.05).clamp(0, 1)
    output[3] = 0.5 + 1e-9
    per_image = per_image_psnr(output, target)
    assert float(per_image[3]) > 100 or math.isinf(float(per_image[3]))
    assert psnr(output, target) < 30  # pooled: 3 of 4 images carry the error
    assert psnr(output, target) == pytest.approx(psnr(output[:3], target[:3]) + 10 * math.log10(4 / 3),
                                                 abs=1e-3)


def test_psnr_clips_outputs_to_the_data_range() -> None:
    target = torch.ones(1, 3, 4, 4)
    assert math.isinf(psnr(target + 0.5, target))  # an overshoot above 1 is shown as 1
    assert psnr_from_mse(0.01) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="non-negative"):
        psnr_from_mse(-1.0)


def test_psnr_hand_value_and_identity() -> None:
    target = torch.zeros(1, 3, 8, 8)
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)
    assert math.isinf(psnr(target, target))


def test_ssim_matches_skimage_gaussian_settings(photo_batch: torch.Tensor, noisy: torch.Tensor) -> None:
    reference = np.mean([
        structural_similarity(_hwc(t), _hwc(o), channel_axis=-1, data_range=1.0,
                              gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        for o, t in zip(noisy, photo_batch, strict=True)
    ])
    # Both use the valid region only (skimage crops the 5-px border of its filtered maps).
    assert ssim(noisy, photo_batch) == pytest.approx(reference, abs=1e-4)
    assert ssim(photo_batch, photo_batch) == pytest.approx(1.0, abs=1e-5)


def _photos(size: int) -> torch.Tensor:
    from skimage import data

    crops = [image[:size, :size] for image in (data.astronaut(), data.chelsea(), data.coffee())]
    return torch.stack([torch.from_numpy(c.copy()).permute(2, 0, 1).float() / 255 for c in crops])


def test_ssim_and_ms_ssim_match_pytorch_msssim_at_five_scales() -> None:
    target = _photos(192)
    generator = torch.Generator().manual_seed(2)
    output = (target + 0.06 * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    expected_ssim = float(pytorch_msssim.ssim(output, target, data_range=1.0))
    expected_ms = float(pytorch_msssim.ms_ssim(output, target, data_range=1.0))
    assert ssim(output, target) == pytest.approx(expected_ssim, abs=1e-4)
    assert ms_ssim(output, target) == pytest.approx(expected_ms, abs=1e-4)
    assert 0.3 < ssim(output, target) < 0.9  # a real difference, not a trivial 1


def test_the_metrics_are_the_losses_functions(photo_batch: torch.Tensor, noisy: torch.Tensor) -> None:
    # One implementation: the metric is the batch mean of the index the loss is 1 minus.
    assert ssim(noisy, photo_batch) == pytest.approx(1 - float(SSIMLoss()(noisy, photo_batch)),
                                                     abs=1e-6)
    scales = ms_ssim_scales(96, 96)
    loss = MSSSIMLoss(scales=scales)
    assert ms_ssim(noisy, photo_batch) == pytest.approx(1 - float(loss(noisy, photo_batch)), abs=1e-6)


def test_ms_ssim_scales_follow_the_losses_size_rule(photo_batch: torch.Tensor,
                                                    noisy: torch.Tensor) -> None:
    # One minimum size for loss and metric: one full 11-px window at the coarsest scale.
    assert [ms_ssim_scales(s, s) for s in (161, 160, 81, 80, 41, 21, 11, 10)] == [5, 4, 4, 3, 3, 2, 1, 0]
    for scales in range(1, 6):
        assert ms_ssim_scales(ms_ssim_min_size(scales), 500) == scales
    assert ms_ssim_scales(96, 96) == 4
    assert sum(ms_ssim_weights(4)) == pytest.approx(1.0)
    assert ms_ssim(photo_batch, photo_batch) == pytest.approx(1.0, abs=1e-5)
    value = ms_ssim(noisy, photo_batch)
    assert 0.5 < value < 1.0


def test_too_small_and_mismatched_inputs_raise() -> None:
    with pytest.raises(ValueError, match="at least 11x11"):
        ms_ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


@pytest.mark.parametrize(("old", "new"), [("psnr", "pooled_psnr"), ("ssim", "mean_ssim"),
                                          ("ms_ssim", "mean_ms_ssim")])
def test_the_old_float_names_warn_and_give_the_same_value(
    old: str, new: str, photo_batch: torch.Tensor, noisy: torch.Tensor
) -> None:
    with pytest.warns(DeprecationWarning, match=rf"losslab.metrics.{old} is now "
                                                rf"losslab.metrics.{new} .*losslab.functional.{old}"):
        value = getattr(losslab.metrics, old)(noisy, photo_batch)
    assert value == getattr(losslab.metrics, new)(noisy, photo_batch)
