"""Wavelet sub-band loss: the transform equals ptwt's (decimated wavedec2 with reflect boundary,
stationary swt along both axes) on the bundled photos, the distance follows its formula, the
stationary mode is shift-equivariant, blur costs detail bands, gradients, views and errors."""

from __future__ import annotations

import ptwt
import pytest
import torch

import losslab
from losslab.core.filters import gaussian_blur
from losslab.losses.wavelet import WAVELETS, WaveletLoss, wavelet_bands, wavelet_min_size


@pytest.fixture(scope="module")
def photos(photo_batch: torch.Tensor) -> torch.Tensor:
    # An odd height exercises ptwt's extra bottom pad; float64 separates formula from rounding.
    return photo_batch[:, :, :93, :].double()


@pytest.mark.parametrize("wave", WAVELETS)
def test_decimated_bands_equal_ptwt_wavedec2(photos: torch.Tensor, wave: str) -> None:
    ours = wavelet_bands(photos, wave, levels=3, mode="decimated")
    reference = ptwt.wavedec2(photos, wave, level=3, mode="reflect")  # (LL3, D3, D2, D1)
    assert torch.allclose(ours[-1], reference[0], atol=1e-5, rtol=0)
    for level in range(3):
        expected = torch.stack(list(reference[3 - level]), dim=2)  # (N, C, 3, h, w)
        assert ours[level].shape == expected.shape
        assert torch.allclose(ours[level], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("wave", WAVELETS)
def test_stationary_bands_equal_ptwt_swt_along_rows_then_columns(
    photos: torch.Tensor, wave: str
) -> None:
    # ptwt has only the 1-D swt (periodic boundary). Circular convolutions commute, so the 2-D
    # level-j bands are the level-j 1-D components along the width, then along the height.
    ours = wavelet_bands(photos, wave, levels=2, mode="stationary")
    for level in (1, 2):
        rows = ptwt.swt(photos, wave, level=level, axis=-1)  # (approx_j, detail_j, ...)
        low_rows, high_rows = rows[0], rows[1]
        low_low, high_low = ptwt.swt(low_rows, wave, level=level, axis=-2)[:2]
        low_high, high_high = ptwt.swt(high_rows, wave, level=level, axis=-2)[:2]
        expected = torch.stack([high_low, low_high, high_high], dim=2)
        assert torch.allclose(ours[level - 1], expected, atol=1e-5, rtol=0)
        if level == 2:
            assert torch.allclose(ours[-1], low_low, atol=1e-5, rtol=0)


def test_value_is_the_weighted_mean_of_band_distances(photo_batch: torch.Tensor) -> None:
    target = photo_batch[:2]
    prediction = (target + 0.05 * torch.randn_like(target)).clamp(0, 1)
    weights = [3.0, 1.0, 0.5]
    bands_p = ptwt.wavedec2(prediction.double(), "db2", level=2, mode="reflect")
    bands_t = ptwt.wavedec2(target.double(), "db2", level=2, mode="reflect")
    per_band = [  # finest level first, approximation last, as band_weights
        sum((a - b).abs().sum() for a, b in zip(bands_p[2], bands_t[2], strict=True))
        / (3 * bands_p[2][0].numel()),
        sum((a - b).abs().sum() for a, b in zip(bands_p[1], bands_t[1], strict=True))
        / (3 * bands_p[1][0].numel()),
        (bands_p[0] - bands_t[0]).abs().mean(),
    ]
    expected = sum(w * v for w, v in zip(weights, per_band, strict=True)) / sum(weights)
    loss = WaveletLoss(wave="db2", levels=2, band_weights=weights)
    assert float(loss(prediction, target)) == pytest.approx(float(expected), rel=1e-5)


def test_identical_images_cost_zero_an_offset_only_the_approximation(
    photo_batch: torch.Tensor,
) -> None:
    for spec in ("wavelet", "wavelet(luma, mode=stationary)", "wavelet(wave=bior4.4)"):
        assert float(losslab.loss(spec)(photo_batch, photo_batch)) == 0.0
    details = WaveletLoss(wave="db2", band_weights=[1, 1, 1, 0])
    approximation = WaveletLoss(wave="db2", band_weights=[0, 0, 0, 1])
    offset = photo_batch * 0.8 + 0.1
    shifted = offset + 0.05  # wavelet filters have zero mean: a constant is not a detail
    assert float(details(shifted, offset)) < 1e-6 < float(approximation(shifted, offset))
    finest = WaveletLoss(wave="db2", band_weights=[1, 0, 0, 0])
    assert float(finest(gaussian_blur(photo_batch, 1.5), photo_batch)) > 1e-3


def test_stationary_mode_is_shift_equivariant_and_decimated_is_not() -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 1, 32, 32, generator=generator)
    prediction = torch.rand(2, 1, 32, 32, generator=generator)

    def roll(x: torch.Tensor) -> torch.Tensor:
        return torch.roll(x, shifts=(1, 1), dims=(-2, -1))

    stationary = WaveletLoss(mode="stationary", levels=2)
    decimated = WaveletLoss(mode="decimated", levels=2)
    assert float(stationary(roll(prediction), roll(target))) == pytest.approx(
        float(stationary(prediction, target)), rel=1e-5)
    shifted = wavelet_bands(roll(target), "haar", 1, "decimated")[0]
    assert not torch.allclose(shifted, roll(wavelet_bands(target, "haar", 1, "decimated")[0]))
    assert float(decimated(prediction, target)) > 0


def test_gradient_is_finite_and_views_apply(photo_batch: torch.Tensor) -> None:
    target = photo_batch[:2]
    prediction = (target + 0.1 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)
    value = losslab.loss("wavelet(luma, wave=db3, mode=stationary, distance=mse)")(
        prediction, target)
    value.backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0
    # A change of chroma at constant luma is invisible to the luma view.
    chroma = target.clone()
    chroma[:, 0] += 0.01
    chroma[:, 1] -= 0.01 * 0.299 / 0.587
    assert float(losslab.loss("wavelet(luma)")(chroma, target)) < 1e-7


def test_min_size_is_enforced_with_a_clear_message() -> None:
    loss = WaveletLoss(wave="db4", levels=3)
    side = wavelet_min_size("db4", 3, "decimated")
    loss(torch.rand(1, 3, side, side), torch.rand(1, 3, side, side))
    with pytest.raises(ValueError, match=str(side)):
        loss(torch.rand(1, 3, side - 1, side - 1), torch.rand(1, 3, side - 1, side - 1))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("wavelet(wave=db9)", "wave"),
        ("wavelet(levels=0)", "levels"),
        ("wavelet(levels=2, band_weights=[1, 1])", "levels \\+ 1 = 3"),
        ("wavelet(band_weights=[0, 0, 0, 0])", "positive sum"),
        ("wavelet(mode=undecimated)", "mode"),
    ],
)
def test_bad_options_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        losslab.loss(spec)
