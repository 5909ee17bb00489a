"""Sliced Wasserstein patch distance: exact optimal transport on small sets, near-blind to a 1-px
shift but not to a blur, per-image distributions, deterministic or reproducibly resampled
directions that follow the module, gradients, views and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import losslab
from losslab.core.filters import gaussian_blur
from losslab.losses import SlicedWassersteinLoss
from losslab.losses.swd import (
    ms_swd,
    ms_swd_min_size,
    multiscale_sliced_wasserstein,
    random_projections,
    sliced_wasserstein,
    sort_last,
)
from losslab.losses.views import LumaView
from losslab.probe import shifted_pair


def test_identical_images_cost_exactly_zero(photo_batch: torch.Tensor) -> None:
    for spec in ("swd", "swd(luma)", "swd(projections_mode=resampled)", "swd(highpass=1)"):
        assert float(losslab.loss(spec)(photo_batch, photo_batch)) == 0.0


def test_one_direction_equals_optimal_transport_between_the_pixel_sets() -> None:
    # Patch size 1 and one direction: the squared W2 distance between two sets of 36 scalars,
    # found here independently as the optimal assignment of the squared-difference cost matrix.
    generator = torch.Generator().manual_seed(3)
    a, b = torch.rand(1, 1, 6, 6, generator=generator), torch.rand(1, 1, 6, 6, generator=generator)
    value = sliced_wasserstein(a, b, torch.ones(1, 1, 1, 1))
    cost = (a.flatten()[:, None] - b.flatten()[None, :]).square().numpy()
    rows, cols = linear_sum_assignment(cost)
    assert float(value) == pytest.approx(cost[rows, cols].mean(), rel=1e-6)


def test_patch_distributions_are_per_image_not_pooled_over_the_batch() -> None:
    # Swapping two images of the target batch keeps the pooled distribution but not the pairs.
    generator = torch.Generator().manual_seed(0)
    dark, bright = 0.2 * torch.rand(1, 3, 24, 24, generator=generator), 0.8 + 0.2 * torch.rand(
        1, 3, 24, 24, generator=generator)
    loss = SlicedWassersteinLoss(reduction="none")
    paired = loss(torch.cat([dark, bright]), torch.cat([dark, bright]))
    swapped = loss(torch.cat([dark, bright]), torch.cat([bright, dark]))
    assert paired.shape == (2,) and paired.abs().max() == 0
    assert (swapped > 0.1).all()


def test_a_one_pixel_shift_costs_far_less_than_a_blur_unlike_mse(photo_batch: torch.Tensor) -> None:
    original, shift, mean_of_two = shifted_pair(photo_batch)
    blurred = gaussian_blur(original, 1.0)
    swd, mse = losslab.loss("swd"), losslab.loss("mse")
    swd_ratio = float(swd(shift, original)) / float(swd(blurred, original))
    mse_ratio = float(mse(shift, original)) / float(mse(blurred, original))
    # Measured: swd 0.29, mse 3.5 on these crops (for swd a shift is only a crop-edge effect).
    assert swd_ratio < 0.4
    assert mse_ratio > 2.0
    assert float(swd(shift, original)) < float(swd(mean_of_two, original))
    assert float(mse(shift, original)) > float(mse(mean_of_two, original))


def test_the_finest_band_is_almost_blind_to_a_shift(photo_batch: torch.Tensor) -> None:
    original, shift, mean_of_two = shifted_pair(photo_batch)
    loss = losslab.loss("swd(highpass=1)")
    assert float(loss(shift, original)) < 0.05 * float(loss(mean_of_two, original))


def test_gradients_flow_to_the_prediction(photo_batch: torch.Tensor) -> None:
    for mode in ("fixed", "resampled"):
        prediction = gaussian_blur(photo_batch, 1.0).requires_grad_(True)
        SlicedWassersteinLoss(projections_mode=mode)(prediction, photo_batch).backward()
        assert prediction.grad is not None and torch.isfinite(prediction.grad).all()
        assert prediction.grad.abs().sum() > 0


def test_gradient_descent_on_swd_sharpens_a_blurred_image(photo_batch: torch.Tensor) -> None:
    target = photo_batch[:1, :, :48, :48]
    prediction = gaussian_blur(target, 1.5).requires_grad_(True)
    loss = SlicedWassersteinLoss(patch_size=3, scales=1)
    optimizer = torch.optim.Adam([prediction], lr=0.01)
    start = float(loss(prediction.detach(), target))
    for _ in range(30):
        optimizer.zero_grad()
        loss(prediction, target).backward()
        optimizer.step()
    assert float(loss(prediction.detach(), target)) < 0.5 * start


def test_the_numpy_sort_path_matches_torch_sort_values_and_gradients() -> None:
    values = torch.randn(2, 3, 50, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 3, 50, dtype=torch.float64)
    (sort_last(values) * weights).sum().backward()
    ours = values.grad.clone()
    values.grad = None
    (values.sort(dim=-1).values * weights).sum().backward()
    torch.testing.assert_close(ours, values.grad)
    torch.testing.assert_close(sort_last(values.detach()), values.detach().sort(dim=-1).values)


def test_the_colour_view_is_applied_before_the_patches(photo_batch: torch.Tensor) -> None:
    prediction = gaussian_blur(photo_batch, 1.0)
    loss = losslab.loss("swd(luma)")
    expected = multiscale_sliced_wasserstein(
        LumaView()(prediction), LumaView()(photo_batch), loss.directions, scales=3
    ).mean()
    torch.testing.assert_close(loss(prediction, photo_batch), expected)
    assert loss.directions.shape == (64, 1, 5, 5)


def test_luma_view_is_blind_to_a_change_of_chroma_only(photo_batch: torch.Tensor) -> None:
    # Moving (Cb, Cr) at fixed luma: R, G, B change, Y does not.
    shift = torch.tensor([0.05, -0.0255, 0.0]).view(1, 3, 1, 1)  # 0.299*0.05 - 0.587*0.0255 ~ 0
    shift[0, 2] = -(0.299 * shift[0, 0] + 0.587 * shift[0, 1]) / 0.114
    target = photo_batch.clamp(0.2, 0.8)
    changed = target + shift
    assert float(losslab.loss("swd(luma)")(changed, target)) < 1e-10
    assert float(losslab.loss("swd")(changed, target)) > 1e-4


def test_fixed_directions_are_deterministic_buffers_that_follow_the_module() -> None:
    first, second = SlicedWassersteinLoss(seed=7), SlicedWassersteinLoss(seed=7)
    torch.testing.assert_close(first.directions, second.directions)
    assert not torch.equal(first.directions, SlicedWassersteinLoss(seed=8).directions)
    assert "directions" in first.state_dict()
    norms = first.directions.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    assert first.double().directions.dtype == torch.float64
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert float(second(x, y)) == float(second(x, y))


def test_resampled_directions_change_per_call_and_replay_from_the_seed() -> None:
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    first = SlicedWassersteinLoss(projections_mode="resampled", seed=3)
    values = [float(first(x, y)) for _ in range(3)]
    assert len(set(values)) == 3
    replay = SlicedWassersteinLoss(projections_mode="resampled", seed=3)
    assert [float(replay(x, y)) for _ in range(3)] == values
    # The call counter is saved, so a resumed run continues the same sequence.
    resumed = SlicedWassersteinLoss(projections_mode="resampled", seed=3)
    resumed.load_state_dict(SlicedWassersteinLoss(projections_mode="resampled", seed=3).state_dict())
    partial = SlicedWassersteinLoss(projections_mode="resampled", seed=3)
    partial(x, y)
    resumed.load_state_dict(partial.state_dict())
    assert float(resumed(x, y)) == values[1]


def test_random_projections_are_unit_filters_of_the_patch_space() -> None:
    directions = random_projections(10, 2, 3, generator=torch.Generator().manual_seed(0))
    assert directions.shape == (10, 2, 3, 3)
    torch.testing.assert_close(directions.flatten(1).norm(dim=1), torch.ones(10))


def test_term_names_show_the_views() -> None:
    assert SlicedWassersteinLoss().term_name == "swd"
    assert SlicedWassersteinLoss("luma", highpass=1).term_name == "swd(luma, highpass=1)"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("swd(patch_size=0)", "patch_size must be an integer from 1"),
        ("swd(projections=0)", "projections must be an integer from 1"),
        ("swd(scales=0)", "scales must be an integer from 1"),
        ("swd(projections_mode=random)", "projections_mode must be one of 'fixed', 'resampled'"),
    ],
)
def test_bad_options_are_rejected_with_the_valid_range(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        losslab.loss(spec)


def test_images_too_small_for_the_coarsest_patch_are_rejected() -> None:
    loss = SlicedWassersteinLoss(patch_size=5, scales=3)  # needs (5 - 1) * 4 + 1 = 17 px
    loss(torch.rand(1, 3, 17, 17), torch.rand(1, 3, 17, 17))
    with pytest.raises(ValueError, match="at least 17x17"):
        loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))


# -- MS-SWD (colorspace=lab), He et al. 2024 ------------------------------------------------------


def _ms_swd_reference(x: np.ndarray, y: np.ndarray, directions: list[np.ndarray]) -> float:
    """The paper's definition on one image pair ``(3, H, W)``, written with numpy and colour-science:
    a 5x5 binomial pyramid (reflect, every other pixel) in sRGB, CIELAB per level, patches centred
    on each pixel (reflect), projections sorted, W1 per direction, levels averaged."""
    import colour
    from numpy.lib.stride_tricks import sliding_window_view

    taps = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    kernel = np.outer(taps, taps)

    def down(image: np.ndarray) -> np.ndarray:
        padded = np.pad(image, ((0, 0), (2, 2), (2, 2)), mode="reflect")
        windows = sliding_window_view(padded, (5, 5), axis=(1, 2))  # (3, H, W, 5, 5)
        return np.einsum("chwij,ij->chw", windows, kernel)[:, ::2, ::2]

    def lab(image: np.ndarray) -> np.ndarray:
        xyz = colour.sRGB_to_XYZ(image.transpose(1, 2, 0))
        return colour.XYZ_to_Lab(xyz).transpose(2, 0, 1)

    total = 0.0
    for level, d in enumerate(directions):
        if level:
            x, y = down(x), down(y)
        k = d.shape[-1]
        values = []
        for image in (lab(x), lab(y)):
            padded = np.pad(image, ((0, 0), (k // 2, k // 2), (k // 2, k // 2)), mode="reflect")
            patches = sliding_window_view(padded, (k, k), axis=(1, 2))  # (3, H, W, k, k)
            values.append(np.sort(np.einsum("chwij,pcij->phw", patches, d).reshape(len(d), -1)))
        total += np.abs(values[0] - values[1]).mean()
    return total / len(directions)


def test_ms_swd_equals_the_papers_definition_with_the_same_directions(
    photo_batch: torch.Tensor,
) -> None:
    target = photo_batch[:2, :, :90, :]
    prediction = gaussian_blur(target, 1.0)
    generator = torch.Generator().manual_seed(1)
    directions = [random_projections(8, 3, 5, generator=generator, dtype=torch.float64)
                  for _ in range(3)]
    ours = ms_swd(prediction.double(), target.double(), directions)
    expected = [
        _ms_swd_reference(prediction[i].double().numpy(), target[i].double().numpy(),
                          [d.numpy() for d in directions])
        for i in range(2)
    ]
    assert np.allclose(ours.numpy(), expected, rtol=1e-4, atol=0)


def test_ms_swd_defaults_are_the_authors_and_redraw_directions_per_scale() -> None:
    loss = SlicedWassersteinLoss(colorspace="lab")
    assert (loss.patch_size, loss.projections, loss.scales, loss.projections_mode) == (
        11, 128, 5, "resampled")
    assert loss.min_size == ms_swd_min_size(11, 5) == 81
    assert loss.term_name == "swd(colorspace=lab)"
    first = [loss.current_projections() for _ in range(2)]
    assert not torch.equal(first[0], first[1])
    again = SlicedWassersteinLoss(colorspace="lab")
    assert torch.equal(again.current_projections(), first[0])  # reproducible from the seed
    # The RGB patch SWD keeps its own defaults.
    rgb = SlicedWassersteinLoss()
    assert (rgb.patch_size, rgb.projections, rgb.scales, rgb.projections_mode) == (
        5, 64, 3, "fixed")


def test_ms_swd_zero_for_identical_blind_to_a_shift_not_to_a_colour_cast(
    photo_batch: torch.Tensor,
) -> None:
    loss = losslab.loss("swd(colorspace=lab, projections_mode=fixed)")
    assert float(loss(photo_batch, photo_batch)) == 0.0
    original, shift, _ = shifted_pair(photo_batch)
    cast = original.clone()
    cast[:, 2] = (cast[:, 2] * 0.9).clamp(0, 1)  # a yellowish cast of matched pixel size
    shift_cost, cast_cost = float(loss(shift, original)), float(loss(cast, original))
    assert shift_cost < 0.5 * cast_cost


def test_ms_swd_gradient_is_finite_and_views_are_refused(photo_batch: torch.Tensor) -> None:
    prediction = gaussian_blur(photo_batch[:1], 1.0).requires_grad_(True)
    value = losslab.loss("swd(colorspace=lab, scales=3)")(prediction, photo_batch[:1])
    value.backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0
    for spec in ("swd(luma, colorspace=lab)", "swd(colorspace=lab, highpass=1)"):
        with pytest.raises(ValueError, match="no colour or spatial view"):
            losslab.loss(spec)
    with pytest.raises(ValueError, match="81"):
        SlicedWassersteinLoss(colorspace="lab")(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
