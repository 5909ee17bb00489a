"""FLIP against NVIDIA's flip-evaluator (its compiled reference, numpy in, numpy out) on the
bundled photos with several distortions and viewing conditions; ms_flip as its definition; the
gradient at identical images; the view rules."""

from __future__ import annotations

import flip_evaluator
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

import losslab
from losslab.losses import FLIPLoss, MSFLIPLoss
from losslab.losses.flip import DEFAULT_PIXELS_PER_DEGREE, flip_map


def _photos() -> dict[str, np.ndarray]:
    from skimage import data

    return {name: getattr(data, name)()[:96, :112].astype(np.float32) / 255
            for name in ("astronaut", "chelsea", "coffee")}


def _distortions(image: np.ndarray) -> dict[str, np.ndarray]:
    generator = np.random.default_rng(0)
    noise = generator.standard_normal(image.shape).astype(np.float32)
    return {
        "noise": np.clip(image + 0.05 * noise, 0, 1),
        "blur": gaussian_filter(image, (1.5, 1.5, 0)),
        "shift": np.roll(image, 2, axis=1),
        "tint": np.clip(image * np.array([1.0, 0.9, 0.8], dtype=np.float32), 0, 1),
    }


def _tensor(image: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(image.copy()).permute(2, 0, 1).unsqueeze(0).to(dtype)


@pytest.mark.parametrize("pixels_per_degree", [DEFAULT_PIXELS_PER_DEGREE, 20.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_mean_flip_matches_the_reference(pixels_per_degree: float, dtype: torch.dtype) -> None:
    loss = FLIPLoss(pixels_per_degree=pixels_per_degree)
    for name, image in _photos().items():
        for kind, distorted in _distortions(image).items():
            error_map, mean, _ = flip_evaluator.evaluate(
                image, distorted, "LDR", applyMagma=False,
                parameters={"ppd": pixels_per_degree})
            ours = float(loss(_tensor(distorted, dtype), _tensor(image, dtype)))
            assert abs(ours - mean) < 1e-4, (name, kind, ours, mean)
            ours_map = flip_map(_tensor(distorted, torch.float64), _tensor(image, torch.float64),
                                pixels_per_degree)[0].numpy()
            assert np.abs(ours_map - error_map.squeeze()).max() < 1e-3, (name, kind)


def test_ms_flip_is_the_mean_over_viewing_conditions() -> None:
    image = _photos()["astronaut"]
    distorted, target = _tensor(_distortions(image)["blur"], torch.float64), _tensor(image, torch.float64)
    expected = np.mean([flip_evaluator.evaluate(image, _distortions(image)["blur"], "LDR",
                                                applyMagma=False,
                                                parameters={"ppd": DEFAULT_PIXELS_PER_DEGREE * f})[1]
                        for f in (1.0, 0.5, 0.25)])
    assert abs(float(MSFLIPLoss()(distorted, target)) - expected) < 1e-4
    # closer viewing (fewer pixels per degree) sees more of a blur
    far, near = (float(FLIPLoss(pixels_per_degree=p)(distorted, target)) for p in (67.02, 16.0))
    assert near > far


@pytest.mark.parametrize("spec", ["flip", "ms_flip", "flip(lowpass=1)"])
def test_zero_for_identical_images_with_a_finite_gradient(spec: str) -> None:
    images = _tensor(_photos()["coffee"], torch.float32)
    images[..., :10, :] = 0.5  # flat grey: zero colour and feature differences and magnitudes
    prediction = images.clone().requires_grad_(True)
    value = losslab.loss(spec)(prediction, images)
    assert float(value.detach()) == 0.0
    value.backward()
    assert torch.isfinite(prediction.grad).all()


def test_gradient_is_finite_and_descends_on_a_distortion() -> None:
    image = _photos()["chelsea"]
    target = _tensor(image, torch.float32)
    prediction = _tensor(_distortions(image)["noise"], torch.float32).requires_grad_(True)
    value = FLIPLoss()(prediction, target)
    value.backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0
    with torch.no_grad():
        stepped = FLIPLoss()((prediction - 0.5 * prediction.grad / prediction.grad.abs().max()
                              * 0.01).clamp(0, 1), target)
    assert float(stepped) < float(value.detach())


def test_views_spec_and_errors() -> None:
    with pytest.raises(ValueError, match="needs an RGB image"):
        losslab.loss("flip(red)")
    with pytest.raises(ValueError, match="Laplacian band"):
        losslab.loss("ms_flip(highpass=2)")
    with pytest.raises(ValueError, match="pixels_per_degree"):
        losslab.loss("flip(pixels_per_degree=0)")
    with pytest.raises(ValueError, match="factors"):
        losslab.loss("ms_flip(factors=0.001)")
    image = _photos()["astronaut"]
    prediction, target = (_tensor(x, torch.float32) for x in (_distortions(image)["tint"], image))
    total = losslab.loss("l1 + 0.5*flip")(prediction, target)
    expected = (losslab.loss("l1")(prediction, target)
                + 0.5 * losslab.loss("flip")(prediction, target))
    torch.testing.assert_close(total, expected)
    signed = losslab.loss("flip", input_range=(-1, 1))(2 * prediction - 1, 2 * target - 1)
    torch.testing.assert_close(signed, losslab.loss("flip")(prediction, target))
    assert losslab.loss("flip", check_values=False)(prediction, target).dim() == 0
