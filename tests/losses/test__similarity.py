"""losses._similarity: the pieces of GMSD, MS-GMSD, HaarPSI and MDSI against their formulas:
safe roots with gradient 0 at 0, the similarity ratio, Prewitt magnitudes, the 2x2 halving and
the YIQ / LHM transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import correlate

from losslab.losses._similarity import (
    LHM_MATRIX,
    YIQ_MATRIX,
    colour_transform,
    halve,
    prewitt_magnitude,
    safe_power,
    safe_sqrt,
    similarity_map,
)


def test_safe_roots_have_the_value_and_a_zero_gradient_at_zero() -> None:
    values = torch.tensor([0.0, 0.25, 4.0], requires_grad=True)
    roots = safe_sqrt(values)
    assert roots.tolist() == [0.0, 0.5, 2.0]
    roots.sum().backward()
    assert values.grad is not None and values.grad.tolist() == [0.0, 1.0, 0.25]
    values.grad = None
    safe_power(values, 0.5).sum().backward()
    assert values.grad.tolist() == pytest.approx([0.0, 1.0, 0.25])
    assert safe_power(torch.tensor([8.0]), 1 / 3).item() == pytest.approx(2.0)


def test_similarity_map_is_one_where_equal_and_masks_with_alpha() -> None:
    a, b = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 1.0, 1.0])
    assert similarity_map(a, b, 0.5).tolist() == pytest.approx([1.0, 1.0, (4 + 0.5) / (5 + 0.5)])
    masked = similarity_map(a, b, 0.5, alpha=0.5)
    assert masked.tolist() == pytest.approx([1.0, 1.0, (1.5 * 2 + 0.5) / (5 - 1 + 0.5)])


def test_prewitt_magnitude_matches_scipy_correlation() -> None:
    image = torch.rand(1, 1, 9, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kernel = np.array([[-1.0, 0.0, 1.0]] * 3) / 3.0
    plane = image[0, 0].numpy()
    gx = correlate(plane, kernel, mode="constant")
    gy = correlate(plane, kernel.T, mode="constant")
    expected = np.sqrt(gx**2 + gy**2 + 1e-12)
    np.testing.assert_allclose(prewitt_magnitude(image)[0, 0].numpy(), expected, atol=1e-12)


def test_halve_is_a_block_mean_with_one_zero_row_and_column_for_odd_sides() -> None:
    even = torch.arange(16.0).view(1, 1, 4, 4)
    torch.testing.assert_close(halve(even), F.avg_pool2d(even, 2))
    odd = torch.ones(1, 1, 3, 4)
    # an odd side pads both sides once, (3, 4) -> (4, 5), and the pool drops the odd column:
    # the last row of blocks averages in the zero row
    assert halve(odd)[0, 0].tolist() == [[1.0, 1.0], [0.5, 0.5]]


def test_colour_transforms_are_the_papers_matrices() -> None:
    rgb = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    for matrix in (YIQ_MATRIX, LHM_MATRIX, YIQ_MATRIX[:1]):
        expected = torch.einsum("kc,nchw->nkhw", torch.tensor(matrix, dtype=torch.float64), rgb)
        torch.testing.assert_close(colour_transform(rgb, matrix), expected)
    white = torch.ones(1, 3, 1, 1)
    assert colour_transform(white, YIQ_MATRIX).flatten().tolist() == pytest.approx(
        [1.0, 0.0, 0.0], abs=1e-4)  # I and Q are chroma: zero for grey
