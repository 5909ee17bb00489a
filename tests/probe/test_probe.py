"""The loss probe's claims, matching, outputs and errors."""

from __future__ import annotations

import pytest
import torch

from losslab.probe import (
    MATCHED_PERTURBATIONS,
    format_probe_table,
    perturb,
    run_probe,
)
from losslab.probe.perturbations import clip_keep_luma

SPECS = ["mse", "l1", "l1(luma)", "l1(red)", "ssim"]


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Four 96x96 crops of bundled photos (what the probe uses by default, smaller)."""
    from losslab.probe import default_probe_images

    return default_probe_images(96, crops_per_photo=1)


@pytest.fixture(scope="module")
def result(images):
    return run_probe(SPECS, images)


def test_matched_perturbations_reach_the_same_rmse(result) -> None:
    for name in MATCHED_PERTURBATIONS:
        assert result.achieved_rmse[name] == pytest.approx([0.05] * 4, rel=1e-5), name


def test_mse_matched_row_is_flat(result) -> None:
    row = [result.normalised("mse", name) for name in MATCHED_PERTURBATIONS]
    assert row == pytest.approx([1.0] * len(row), rel=1e-4)
    assert result.raw("mse", "noise") == pytest.approx(0.05**2, rel=1e-4)


def test_luma_loss_is_blind_to_hue_and_saturation(result) -> None:
    for name in ("hue", "saturation"):
        assert result.normalised("l1(luma)", name) < 1e-4
    assert result.normalised("l1(luma)", "brightness") > 1.0


def test_red_loss_is_blind_to_green_and_blue(result) -> None:
    assert result.raw("l1(red)", "channel_green") == 0.0
    assert result.raw("l1(red)", "channel_blue") == 0.0
    assert result.normalised("l1(red)", "channel_red") > 1.5


def test_mse_and_l1_prefer_the_blur_over_the_shift(result) -> None:
    for spec in ("mse", "l1"):
        assert result.prefers(spec) == "mean_of_two"
        assert result.raw(spec, "mean_of_two") < 0.8 * result.raw(spec, "shift")


def test_ssim_charges_noise_more_than_blur_and_prefers_the_blur(result) -> None:
    assert result.raw("ssim", "noise") > 1.2 * result.raw("ssim", "blur")
    assert result.prefers("ssim") == "mean_of_two"


def test_random_weight_perceptual_is_not_blur_averse(images) -> None:
    # With ImageNet VGG weights a perceptual loss is expected to charge blur more (relative to
    # noise) than MSE. With random weights (all we have offline) it does not: its blur/noise
    # ratio stays within 20 % of MSE's (1.0), and it prefers the blur like MSE.
    spec = "perceptual(weights=random)"
    probe = run_probe(["mse", spec], images[:2], perturbations=["blur", "noise", "shift",
                                                                 "mean_of_two"])
    ratio = probe.raw(spec, "blur") / probe.raw(spec, "noise")
    mse_ratio = probe.raw("mse", "blur") / probe.raw("mse", "noise")
    assert mse_ratio == pytest.approx(1.0, rel=1e-4)
    assert 0.8 < ratio < 1.2
    assert probe.prefers(spec) == "mean_of_two"


def test_clip_keep_luma_preserves_luma() -> None:
    luma = torch.tensor([0.9, 0.1]).view(2, 1, 1, 1)
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    offset = torch.tensor([0.4, -0.2, -0.3]).view(1, 3, 1, 1)
    offset = offset - (offset * weights).sum(1, keepdim=True)  # a pure chroma change
    images = luma + offset  # out of gamut for both pixels
    assert images.max() > 1 and images.min() < 0
    clipped = clip_keep_luma(images, luma)
    assert clipped.min() >= -1e-7 and clipped.max() <= 1 + 1e-7
    assert (clipped * weights).sum(1, keepdim=True) == pytest.approx(luma, abs=1e-6)


def test_perturb_is_deterministic_and_in_range(images) -> None:
    first = perturb("noise", images, 0.05, seed=3)
    assert torch.equal(first, perturb("noise", images, 0.05, seed=3))
    assert first.min() >= 0 and first.max() <= 1


def test_bad_input_errors(images) -> None:
    with pytest.raises(ValueError, match="Did you mean 'blur'"):
        run_probe(["mse"], images, perturbations=["blurr"])
    with pytest.raises(ValueError, match="unknown loss"):
        run_probe(["mse2"], images)
    with pytest.raises(ValueError, match="3 channels"):
        run_probe(["mse"], torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="rmse"):
        run_probe(["mse"], images, rmse=0.9)


def test_folder_images(tmp_path) -> None:
    from PIL import Image

    for i in range(2):
        array = (torch.rand(40, 50, 3) * 255).to(torch.uint8).numpy()
        Image.fromarray(array).save(tmp_path / f"{i}.png")
    probe = run_probe(["mse"], image_dir=tmp_path, perturbations=["noise", "blur"])
    assert probe.image_shape == (2, 3, 192, 192)


def test_folder_images_skip_unreadable_files_with_a_warning(tmp_path, caplog) -> None:
    from PIL import Image

    from losslab.probe import folder_probe_images

    array = (torch.rand(40, 50, 3) * 255).to(torch.uint8).numpy()
    Image.fromarray(array).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_text("not an image")
    with caplog.at_level("WARNING"):
        crops = folder_probe_images(tmp_path, size=32)
    assert crops.shape == (1, 3, 32, 32)
    assert "broken.png" in caplog.text


def test_folder_with_only_unreadable_files_is_a_clear_error(tmp_path) -> None:
    from losslab.probe import folder_probe_images

    (tmp_path / "broken.jpg").write_text("not an image")
    with pytest.raises(ValueError, match=r"no readable image.*1 unreadable"):
        folder_probe_images(tmp_path, size=32)


def test_grey_image_error_explains_why_hue_cannot_change_it() -> None:
    grey = torch.rand(1, 1, 32, 32).expand(2, 3, 32, 32).clone()
    with pytest.raises(ValueError, match=r"hue does not change image\(s\) \[0, 1\].*Grey.*perturbations"):
        run_probe(["mse"], grey, perturbations=["hue", "blur"])


def test_default_specs_build_offline_and_cover_the_weight_free_losses() -> None:
    import losslab
    from losslab.probe import DEFAULT_PROBE_SPECS

    for spec in DEFAULT_PROBE_SPECS:
        losslab.loss(spec)  # no downloads: every default builds here
    names = {spec.split("(")[0] for spec in DEFAULT_PROBE_SPECS}
    assert {"swd", "nlpd", "gmsd", "ms_gmsd", "haarpsi", "mdsi", "perceptual", "ciede2000",
            "delta_e76", "flip", "ms_flip", "robust", "wavelet", "gradient_variance",
            "contextual", "dists"} <= names
    assert "swd(colorspace=lab)" in DEFAULT_PROBE_SPECS


def test_distribution_losses_prefer_the_shift_computed_like_any_row(images) -> None:
    # The claim, measured: weight-free losses that compare patch or feature
    # distributions charge the sharp 1-px shift less than the blurry mean of two; the aligned
    # quality indices do not (they prefer the blur like MSE).
    specs = ["swd", "swd(highpass=1)", "perceptual(layers=relu1_2, weights=random, distance=swd)",
             "gmsd", "nlpd"]
    probe = run_probe(specs, images[:2], perturbations=["noise", "shift", "mean_of_two"])
    for spec in specs[:3]:
        assert probe.prefers(spec) == "shift", spec
        assert probe.raw(spec, "shift") < 0.5 * probe.raw(spec, "mean_of_two"), spec
    for spec in specs[3:]:
        assert probe.prefers(spec) == "mean_of_two", spec


def test_mean_of_two_noise_shows_a_distributional_loss_blind_spot(images) -> None:
    """MSE charges the blur plus matched noise what it charges a sharp answer (its expectation is
    the mean of the two shifts' MSE, and both shifts cost the same); the energy score and the
    CRPS, given independent draws, charge it less than both the shift and the plain blur: a
    sampler trained by them can learn noise instead of committing to an answer."""
    specs = ["mse", "energy_score", "crps"]
    probe = run_probe(specs, images[:2], perturbations=["noise", "shift", "mean_of_two",
                                                         "mean_of_two_noise"])
    assert probe.raw("mse", "mean_of_two_noise") == pytest.approx(probe.raw("mse", "shift"), rel=0.02)
    for spec in ("energy_score", "crps"):
        assert probe.raw(spec, "mean_of_two_noise") < 0.9 * probe.raw(spec, "mean_of_two"), spec
        assert probe.raw(spec, "mean_of_two_noise") < 0.9 * probe.raw(spec, "shift"), spec
    table = format_probe_table(probe)
    assert "mean2+n" in table and "energy_score" in table
    # The pair preference ignores the third natural change, and works without it.
    subset = run_probe(["mse"], images[:1], perturbations=["noise", "shift", "mean_of_two"])
    assert subset.prefers("mse") == "mean_of_two"


def test_sample_based_losses_get_draws_and_deterministic_changes_as_copies(
        images, monkeypatch: pytest.MonkeyPatch) -> None:
    from losslab.losses import EnergyScoreLoss
    from losslab.probe import probe as probe_module
    from losslab.probe.probe import PROBE_DRAWS

    seen: list[tuple[tuple[int, ...], bool]] = []  # (shape, whether the draws differ)

    class Recording(EnergyScoreLoss):
        def compute(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            seen.append((tuple(prediction.shape), not bool((prediction[:, 0] == prediction[:, 1]).all())))
            return super().compute(prediction, target)

    monkeypatch.setattr(probe_module, "build", lambda spec, check_values=None: Recording())
    run_probe(["recorded"], images[:1, :, :32, :32],
              perturbations=["blur", "noise", "shift", "mean_of_two_noise"])
    full, interior = (1, PROBE_DRAWS, 3, 32, 32), (1, PROBE_DRAWS, 3, 32, 30)
    assert seen == [(full, False), (full, True), (interior, False), (interior, True)]
