"""CIEDE2000 and ΔE*76 against colour-science and scikit-image (independent implementations),
on photos and on Sharma's test pairs; zero with a finite gradient for identical images; the
view rules; the metric err_deltae is the loss's function."""

from __future__ import annotations

import colour
import numpy as np
import pytest
import torch
from skimage import color as skcolor

import losslab
from losslab.core.cielab import srgb_to_lab
from losslab.losses import CIEDE2000Loss, DeltaE76Loss
from losslab.losses.color_difference import ciede2000_lab, ciede2000_map, delta_e76_lab
from losslab.metrics import compute_image_metrics, deltae_error


def _hwc(images: torch.Tensor) -> np.ndarray:
    return images.permute(0, 2, 3, 1).numpy()


def _distorted(images: torch.Tensor) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    grey = images.mean(dim=1, keepdim=True)
    return {
        "noise": (images + 0.05 * noise).clamp(0, 1),
        "desaturated": grey + 0.5 * (images - grey),
        "tinted": (images * torch.tensor([1.0, 0.9, 0.8], dtype=images.dtype).view(1, 3, 1, 1)),
    }


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ciede2000_matches_colour_science_and_scikit_image(photo_batch: torch.Tensor,
                                                           dtype: torch.dtype) -> None:
    target = photo_batch.to(dtype)
    for name, prediction in _distorted(target).items():
        ours = CIEDE2000Loss(reduction="none")(prediction, target)[:, 0].double().numpy()
        lab_p, lab_t = (_hwc(srgb_to_lab(x.double())) for x in (prediction, target))
        # colour-science: the whole pipeline from sRGB (same standard, same constants)
        expected = colour.difference.delta_E_CIE2000(
            colour.XYZ_to_Lab(colour.sRGB_to_XYZ(_hwc(target.double()))),
            colour.XYZ_to_Lab(colour.sRGB_to_XYZ(_hwc(prediction.double()))))
        np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=0, err_msg=name)
        # scikit-image: the formula on the same Lab values (its rgb2lab rounds differently)
        np.testing.assert_allclose(ours, skcolor.deltaE_ciede2000(lab_t, lab_p), atol=1e-4,
                                   rtol=0, err_msg=name)
        mean = float(CIEDE2000Loss()(prediction, target))
        assert abs(mean - float(np.mean(expected))) < 1e-4


def test_sharma_test_pairs_from_colour_science_inputs() -> None:
    # Pairs chosen to hit each branch: grey vs colour (C1'C2' = 0), the hue wrap at 0/360
    # degrees, blue region rotation, large and tiny differences.
    generator = np.random.default_rng(0)
    lab1 = np.concatenate([generator.uniform([0, -100, -100], [100, 100, 100], (500, 3)),
                           [[50, 0, 0], [50, 0, 0], [50, 2.5, 0], [60, -0.001, -20],
                            [50, 2.4900, -0.0010], [50, 0.0, -82.7485], [50, -1, 2]]])
    lab2 = np.concatenate([generator.uniform([0, -100, -100], [100, 100, 100], (500, 3)),
                           [[50, 0, 0], [50, -1, 2], [50, 0, -2.5], [60, 0.001, -20],
                            [50, -2.4900, 0.0009], [50, -20.0, -70.0], [50, 0, 0]]])
    t1, t2 = (torch.from_numpy(x.T.copy()).unsqueeze(0) for x in (lab1, lab2))
    ours = ciede2000_lab(t1, t2)[0].numpy()
    np.testing.assert_allclose(ours, colour.difference.delta_E_CIE2000(lab1, lab2), atol=1e-4,
                               rtol=0)
    np.testing.assert_allclose(ours, skcolor.deltaE_ciede2000(lab1, lab2), atol=1e-4, rtol=0)
    np.testing.assert_allclose(delta_e76_lab(t1, t2)[0].numpy(),
                               colour.difference.delta_E_CIE1976(lab1, lab2), atol=1e-8, rtol=0)
    ours_textile = ciede2000_lab(t1, t2, k_l=2.0)[0].numpy()
    np.testing.assert_allclose(ours_textile, skcolor.deltaE_ciede2000(lab1, lab2, kL=2),
                               atol=1e-4, rtol=0)


def test_delta_e76_matches_colour_science(photo_batch: torch.Tensor) -> None:
    target = photo_batch.double()
    prediction = _distorted(target)["noise"]
    expected = colour.difference.delta_E_CIE1976(
        colour.XYZ_to_Lab(colour.sRGB_to_XYZ(_hwc(target))),
        colour.XYZ_to_Lab(colour.sRGB_to_XYZ(_hwc(prediction))))
    np.testing.assert_allclose(DeltaE76Loss(reduction="none")(prediction, target)[:, 0].numpy(),
                               expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("spec", ["ciede2000", "delta_e76", "ciede2000(lowpass=1)"])
def test_zero_for_identical_images_with_a_finite_gradient(photo_batch: torch.Tensor,
                                                          spec: str) -> None:
    # grey pixels (a = b = 0: atan2 and sqrt at 0) and black ones included
    images = photo_batch.clone()
    images[:, :, :8] = 0.5
    images[:, :, 8:16] = 0.0
    prediction = images.clone().requires_grad_(True)
    value = losslab.loss(spec)(prediction, images)
    assert float(value.detach()) == 0.0
    value.backward()
    assert torch.isfinite(prediction.grad).all()


def test_gradient_is_finite_near_grey_and_points_down() -> None:
    target = torch.full((1, 3, 8, 8), 0.5)
    prediction = (target + 1e-4 * torch.randn(1, 3, 8, 8)).requires_grad_(True)
    value = CIEDE2000Loss()(prediction, target)
    value.backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0
    with torch.no_grad():
        stepped = CIEDE2000Loss()(prediction - 1e-6 * prediction.grad.sign(), target)
    assert float(stepped) < float(value.detach())


def test_one_channel_views_and_highpass_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"needs an RGB image.*l1\(luma\)"):
        losslab.loss("ciede2000(luma)")
    with pytest.raises(ValueError, match="Laplacian band"):
        losslab.loss("delta_e76(highpass=1)")
    with pytest.raises(ValueError, match="3 channels"):
        CIEDE2000Loss()(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_spec_language_composition_and_input_range(photo_batch: torch.Tensor) -> None:
    prediction = _distorted(photo_batch)["noise"]
    combined = losslab.loss("l1 + 0.1*ciede2000")(prediction, photo_batch)
    expected = (losslab.loss("l1")(prediction, photo_batch)
                + 0.1 * losslab.loss("ciede2000")(prediction, photo_batch))
    torch.testing.assert_close(combined, expected)
    signed = losslab.loss("ciede2000", input_range=(-1, 1))(2 * prediction - 1, 2 * photo_batch - 1)
    torch.testing.assert_close(signed, losslab.loss("ciede2000")(prediction, photo_batch))


def test_hue_change_costs_more_in_ciede2000_than_lightness_in_l1_terms(photo_batch: torch.Tensor
                                                                       ) -> None:
    # CIEDE2000 charges a chroma change that keeps luma, unlike l1(luma)
    from losslab.probe import perturb

    rotated = perturb("hue", photo_batch, 0.05)
    assert float(losslab.loss("l1(luma)")(rotated, photo_batch)) < 1e-4
    assert float(losslab.loss("ciede2000")(rotated, photo_batch)) > 1.0


def test_metric_err_deltae_is_the_loss_function(photo_batch: torch.Tensor) -> None:
    prediction = _distorted(photo_batch)["tinted"]
    metric = deltae_error(prediction, photo_batch)
    assert metric == pytest.approx(float(ciede2000_map(prediction.double(), photo_batch.double())
                                         .mean()), abs=1e-12)
    assert metric == pytest.approx(float(CIEDE2000Loss()(prediction, photo_batch)), abs=1e-4)
    result = compute_image_metrics(prediction, photo_batch, lpips=False)
    assert result["err_deltae"] == pytest.approx(metric)
    keys = list(result)
    assert keys.index("err_chroma") < keys.index("err_deltae") < keys.index("chroma_ratio")
    assert deltae_error(photo_batch, photo_batch) == 0.0
