"""SSIM / MS-SSIM against independent references (scikit-image, pytorch_msssim) on real photos,
plus the size rule, NaN safety, gradients, reductions and views."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_msssim
import torch
import torch.nn.functional as F
from skimage import data
from skimage.metrics import structural_similarity

import losslab
from losslab.losses import MSSSIMLoss, SSIMLoss
from losslab.losses.structural import gaussian_window, ms_ssim, ms_ssim_min_size, ssim


def _photos(size: int) -> torch.Tensor:
    """(3, 3, size, size) crops of three bundled colour photos, in [0, 1]."""
    crops = [image[:size, :size] for image in (data.astronaut(), data.chelsea(), data.coffee())]
    return torch.stack([torch.from_numpy(c.copy()).permute(2, 0, 1).float() / 255 for c in crops])


def _blur(images: torch.Tensor, size: int = 5) -> torch.Tensor:
    kernel = torch.ones(images.shape[1], 1, size, size) / size**2
    return F.conv2d(F.pad(images, [size // 2] * 4, mode="replicate"), kernel, groups=images.shape[1])


def _perturbed(images: torch.Tensor) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(images.shape, generator=generator)
    return {
        "noise": (images + 0.08 * noise).clamp(0, 1),
        "blur": _blur(images),
        "dark_noisy": (0.7 * images + 0.03 * noise).clamp(0, 1),
    }


def _skimage_ssim(prediction: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Per-sample SSIM by scikit-image (Gaussian 11 px, sigma 1.5; it crops the 5-px border)."""
    values = []
    for p, t in zip(prediction.double().numpy(), target.double().numpy(), strict=True):
        values.append(
            structural_similarity(
                t, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                data_range=1.0, channel_axis=0,
            )
        )
    return np.array(values)


@pytest.mark.parametrize("kind", ["noise", "blur", "dark_noisy"])
def test_ssim_matches_scikit_image_on_photos(kind: str) -> None:
    target = _photos(96)
    prediction = _perturbed(target)[kind]
    expected = _skimage_ssim(prediction, target)
    got = ssim(prediction, target).numpy()
    assert np.abs(got - expected).max() < 1e-3, (got, expected)
    loss = SSIMLoss(reduction="none")(prediction, target).numpy()
    assert np.abs((1 - loss) - expected).max() < 1e-3
    assert expected.min() < 0.95  # the perturbation is strong enough to test something


def test_ssim_luma_view_matches_scikit_image_on_grayscale() -> None:
    target = _photos(80)
    prediction = _perturbed(target)["noise"]
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    luma_p, luma_t = (prediction * weights).sum(1), (target * weights).sum(1)
    expected = [
        structural_similarity(t, p, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, data_range=1.0)
        for p, t in zip(luma_p.double().numpy(), luma_t.double().numpy(), strict=True)
    ]
    got = 1 - SSIMLoss("luma", reduction="none")(prediction, target)
    assert np.abs(got.numpy() - np.array(expected)).max() < 1e-3


@pytest.mark.parametrize("kind", ["noise", "blur"])
def test_ssim_matches_pytorch_msssim(kind: str) -> None:
    target = _photos(64)
    prediction = _perturbed(target)[kind]
    expected = pytorch_msssim.ssim(prediction, target, data_range=1.0, size_average=False)
    assert torch.allclose(ssim(prediction, target), expected, atol=1e-3)


@pytest.mark.parametrize(("size", "kind"), [(192, "noise"), (192, "blur"), (256, "dark_noisy")])
def test_ms_ssim_matches_pytorch_msssim(size: int, kind: str) -> None:
    target = _photos(size)
    prediction = _perturbed(target)[kind]
    expected = pytorch_msssim.ms_ssim(prediction, target, data_range=1.0, size_average=False)
    got = ms_ssim(prediction, target)
    assert (got - expected).abs().max() < 1e-3, (got, expected)
    loss = MSSSIMLoss()(prediction, target)
    assert abs(float(loss) - float(1 - expected.mean())) < 1e-3


def test_ms_ssim_fewer_scales_uses_renormalised_weights() -> None:
    target = _photos(192)
    prediction = _perturbed(target)["noise"]
    weights = torch.tensor([0.0448, 0.2856, 0.3001])
    expected = pytorch_msssim.ms_ssim(
        prediction, target, data_range=1.0, size_average=False, weights=(weights / weights.sum()).tolist()
    )
    assert (ms_ssim(prediction, target, scales=3) - expected).abs().max() < 1e-3


def test_ms_ssim_minimum_size_is_161_for_five_scales() -> None:
    assert ms_ssim_min_size(5) == 161
    assert ms_ssim_min_size(3) == 41
    assert MSSSIMLoss().min_size == 161 and MSSSIMLoss(scales=3).min_size == 41
    # 161 px works (odd sides pool in ceil mode: 161 -> 81 -> 41 -> 21 -> 11), 160 does not.
    x = torch.rand(1, 1, 161, 161)
    assert torch.isfinite(MSSSIMLoss()(x, x.flip(-1)))
    with pytest.raises(ValueError, match="161"):
        MSSSIMLoss()(torch.rand(1, 1, 160, 200), torch.rand(1, 1, 160, 200))


def test_ms_ssim_small_input_error_names_minimum_and_fewer_scales() -> None:
    x = torch.rand(2, 3, 64, 64)
    for call in (lambda: MSSSIMLoss()(x, x), lambda: ms_ssim(x, x)):
        with pytest.raises(ValueError) as error:
            call()
        message = str(error.value)
        assert "161x161" in message and "64x64" in message
        assert "ms_ssim(scales=3)" in message
    # Inside a composed spec the base validation still names the minimum.
    with pytest.raises(ValueError, match="161"):
        losslab.loss("l1 + ms_ssim")(x, x)


def test_ms_ssim_three_scales_works_on_small_inputs() -> None:
    target = torch.rand(2, 3, 64, 64)
    prediction = (target + 0.1 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)
    value = losslab.loss("ms_ssim(scales=3)")(prediction, target)
    value.backward()
    assert 0 < value.item() < 1
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0


@pytest.mark.parametrize("loss_class", [SSIMLoss, MSSSIMLoss])
def test_identical_images_give_zero_and_gradient_flows(loss_class: type) -> None:
    target = _photos(176)[:2]
    criterion = loss_class()
    assert float(criterion(target, target.clone())) == pytest.approx(0.0, abs=1e-6)
    prediction = _perturbed(target)["noise"].requires_grad_(True)
    value = criterion(prediction, target)
    value.backward()
    assert value.item() > 0.01
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0
    # A small descent step on the prediction makes it more similar.
    with torch.no_grad():
        stepped = prediction - 0.01 * prediction.grad / prediction.grad.abs().max()
    assert float(criterion(stepped, target)) < value.item()


@pytest.mark.parametrize(
    "function", [lambda p, t: ssim(p, t), lambda p, t: ms_ssim(p, t, scales=2)]
)
def test_gradients_match_finite_differences(function) -> None:  # type: ignore[no-untyped-def]
    target = torch.rand(1, 2, 22, 23, dtype=torch.float64)
    prediction = (target + 0.2 * torch.rand_like(target)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: function(p, target), (prediction,))


def test_ms_ssim_anticorrelated_images_give_no_nan() -> None:
    # 1 - x has negative covariance with x at every scale: cs < 0, clipped to 0 by the ReLU.
    target = torch.rand(2, 3, 48, 48)
    prediction = (1 - target).requires_grad_(True)
    value = MSSSIMLoss(scales=3)(prediction, target)
    value.backward()
    assert value.item() == pytest.approx(1.0)
    assert torch.isfinite(prediction.grad).all()


def test_reductions_and_input_range() -> None:
    target = torch.rand(3, 3, 24, 24)
    prediction = (target + 0.1 * torch.randn_like(target)).clamp(0, 1)
    per_sample = SSIMLoss(reduction="none")(prediction, target)
    assert per_sample.shape == (3,)
    assert torch.allclose(SSIMLoss(reduction="sum")(prediction, target), per_sample.sum())
    assert torch.allclose(SSIMLoss()(prediction, target), per_sample.mean())
    signed = SSIMLoss(input_range=(-1, 1))(prediction * 2 - 1, target * 2 - 1)
    assert torch.allclose(signed, per_sample.mean(), atol=1e-6)
    with pytest.raises(ValueError, match="reduction"):
        SSIMLoss(reduction="max")  # type: ignore[arg-type]


def test_ssim_view_is_positional_in_specs_and_names_the_term() -> None:
    criterion = losslab.loss("ssim(red)")
    assert criterion.term_name == "ssim(red)"
    target = torch.rand(2, 3, 16, 16)
    changed = target.clone()
    changed[:, 1:] = torch.rand(2, 2, 16, 16)  # green and blue are free under the red view
    assert float(criterion(changed, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(SSIMLoss()(changed, target)) > 0.1


def test_window_is_a_buffer_that_follows_dtype() -> None:
    criterion = SSIMLoss()
    assert "window" in dict(criterion.named_buffers())
    window = gaussian_window()
    assert window.shape == (11,) and float(window.sum()) == pytest.approx(1.0)
    assert int(window.argmax()) == 5
    criterion = criterion.double()
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    assert criterion(x, x.flip(-1)).dtype == torch.float64


def test_invalid_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="odd"):
        SSIMLoss(window_size=10)
    with pytest.raises(ValueError, match="scales"):
        MSSSIMLoss(scales=6)
    with pytest.raises(ValueError, match="11x11"):
        SSIMLoss()(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
