"""Gradient-variance loss: equal to a direct numpy/scipy implementation of the paper's definition
(grey image, Sobel maps with zero padding, unbiased variance over non-overlapping patches, MSE of
the variances per direction, summed), zero for identical images, positive for a blur, blind to a
constant offset, finite gradients, views and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

import losslab
from losslab.core.filters import gaussian_blur
from losslab.losses.gradient_variance import (
    GradientVarianceLoss,
    gradient_variance,
    patch_gradient_variance,
)


def _reference(prediction: np.ndarray, target: np.ndarray, patch: int) -> float:
    """Abrahamyan et al. 2022, eq. 1-3, one grey image ``(H, W)`` each, written from the paper."""

    def variances(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # scipy's sobel along axis 1 is the correlation with [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
        gx = ndimage.sobel(image, axis=1, mode="constant", cval=0.0)
        gy = ndimage.sobel(image, axis=0, mode="constant", cval=0.0)
        rows, cols = image.shape[0] // patch, image.shape[1] // patch
        vx, vy = np.empty((rows, cols)), np.empty((rows, cols))
        for i in range(rows):
            for j in range(cols):
                window = (slice(i * patch, (i + 1) * patch), slice(j * patch, (j + 1) * patch))
                vx[i, j] = np.var(gx[window], ddof=1)
                vy[i, j] = np.var(gy[window], ddof=1)
        return vx, vy

    px, py = variances(prediction)
    tx, ty = variances(target)
    return float(np.mean((px - tx) ** 2) + np.mean((py - ty) ** 2))


def _grey(images: torch.Tensor) -> np.ndarray:
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
    return (images.double() * weights).sum(dim=1).numpy()


@pytest.mark.parametrize("patch", [4, 8, 7])
def test_equals_a_direct_implementation_of_the_paper(photo_batch: torch.Tensor, patch: int) -> None:
    target = photo_batch[:, :, :90, :]  # 90 and 96: patch 7 leaves a remainder on both sides
    prediction = gaussian_blur(target, 1.0) + 0.02 * torch.randn_like(target)
    ours = GradientVarianceLoss(patch_size=patch, reduction="none")(
        prediction.double(), target.double())
    grey_p, grey_t = _grey(prediction), _grey(target)
    expected = [_reference(grey_p[i], grey_t[i], patch) for i in range(len(target))]
    assert ours.shape == (len(target),)
    assert np.allclose(ours.numpy(), expected, rtol=1e-8, atol=0)


def test_zero_for_identical_positive_for_a_blur_blind_to_an_offset(photo_batch: torch.Tensor) -> None:
    loss = GradientVarianceLoss()
    assert float(loss(photo_batch, photo_batch)) == 0.0
    assert float(loss(gaussian_blur(photo_batch, 1.5), photo_batch)) > 1e-3
    # An offset keeps every gradient but those at the zero-padded border: the variances of
    # the patches off the border agree, those on it do not.
    scaled = photo_batch * 0.8
    moved, kept = patch_gradient_variance(scaled + 0.1), patch_gradient_variance(scaled)
    assert torch.allclose(moved[..., 1:-1, 1:-1], kept[..., 1:-1, 1:-1], atol=1e-5)
    assert not torch.allclose(moved[..., 0, :], kept[..., 0, :], atol=1e-5)


def test_the_rgb_view_compares_every_channel_and_the_function_matches_the_loss(
    photo_batch: torch.Tensor,
) -> None:
    target = photo_batch[:2]
    prediction = gaussian_blur(target, 1.0)
    per_channel = [
        gradient_variance(prediction[:, c:c + 1], target[:, c:c + 1]) for c in range(3)
    ]
    rgb = losslab.loss("gradient_variance(rgb)")
    assert float(rgb(prediction, target)) == pytest.approx(
        float(torch.stack(per_channel).mean()), rel=1e-5)


def test_gradient_is_finite_on_flat_patches() -> None:
    # Flat patches have zero variance: the loss is a polynomial there, its gradient finite.
    target = torch.full((1, 3, 16, 16), 0.5)
    prediction = (target + 0.01 * torch.randn_like(target)).requires_grad_(True)
    value = GradientVarianceLoss(patch_size=4)(prediction, target)
    value.backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0


@pytest.mark.parametrize("patch_size", [1, 0, 65, 2.5])
def test_bad_patch_sizes_are_refused(patch_size: object) -> None:
    with pytest.raises(ValueError, match="patch_size"):
        GradientVarianceLoss(patch_size=patch_size)  # type: ignore[arg-type]


def test_images_smaller_than_a_patch_are_refused() -> None:
    with pytest.raises(ValueError, match="8"):
        GradientVarianceLoss()(torch.rand(1, 3, 7, 7), torch.rand(1, 3, 7, 7))
