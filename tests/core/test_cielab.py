"""sRGB -> XYZ -> CIELAB against colour-science (the same standard) and scikit-image (whose
matrix and constants differ slightly), with finite gradients at black and at the knees."""

from __future__ import annotations

import colour
import numpy as np
import torch
from skimage import color as skcolor

from losslab.core.cielab import (
    D65_WHITE,
    linear_to_srgb,
    srgb_to_lab,
    srgb_to_linear,
    srgb_to_xyz_matrix,
    xyz_to_linear_rgb,
)


def _hwc(images: torch.Tensor) -> np.ndarray:
    return images[0].permute(1, 2, 0).numpy()


def test_lab_matches_colour_science_on_a_photo(photo_batch: torch.Tensor) -> None:
    images = photo_batch[:1].double()
    expected = colour.XYZ_to_Lab(colour.sRGB_to_XYZ(_hwc(images)))
    np.testing.assert_allclose(_hwc(srgb_to_lab(images)), expected, atol=1e-8, rtol=0)


def test_lab_is_close_to_scikit_image_whose_matrix_has_six_decimals(photo_batch: torch.Tensor
                                                                    ) -> None:
    images = photo_batch[:1].double()
    difference = np.abs(_hwc(srgb_to_lab(images)) - skcolor.rgb2lab(_hwc(images)))
    assert difference.max() < 0.02  # measured 0.009: a matrix / white-point rounding difference


def test_white_and_black_and_the_exact_matrix() -> None:
    white = srgb_to_lab(torch.ones(1, 3, 1, 1, dtype=torch.float64)).flatten()
    assert abs(float(white[0]) - 100.0) < 1e-3 and white[1:].abs().max() < 0.05
    torch.testing.assert_close(srgb_to_xyz_matrix(exact=True).sum(dim=1),
                               torch.tensor(D65_WHITE, dtype=torch.float64))
    # The four-decimal table of the standard is the exact matrix rounded.
    assert (srgb_to_xyz_matrix() - srgb_to_xyz_matrix(exact=True)).abs().max() < 1e-4
    black = srgb_to_lab(torch.zeros(1, 3, 1, 1, dtype=torch.float64)).flatten()
    assert black.abs().max() < 1e-12


def test_transfer_functions_invert_each_other_and_the_matrix_too() -> None:
    values = torch.linspace(0, 1, 101, dtype=torch.float64).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    torch.testing.assert_close(linear_to_srgb(srgb_to_linear(values)), values)
    xyz = torch.einsum("kc,nchw->nkhw", srgb_to_xyz_matrix(), values)
    torch.testing.assert_close(xyz_to_linear_rgb(xyz), values)


def test_gradient_is_finite_at_black_and_at_the_knees() -> None:
    values = torch.tensor([0.0, 0.04045, 1e-6, 0.5, 1.0], dtype=torch.float64)
    images = values.view(1, 1, 1, -1).repeat(1, 3, 1, 1).requires_grad_(True)
    srgb_to_lab(images).sum().backward()
    assert torch.isfinite(images.grad).all()
