"""losslab.functional: every function against its Module (the batch mean, to 1e-6), against an
independent reference where one exists (scikit-image, pytorch-msssim, piq, plenoptic, numpy
formulas), data_range (0..255 with data_range=255 equals 0..1), the (N,) shape and gradients."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import piq
import plenoptic
import pytest
import pytorch_msssim
import torch
import torchvision
from skimage.metrics import peak_signal_noise_ratio
from torch import Tensor

import losslab
from losslab import functional as LF
from losslab import weights as weights_module
from losslab.losses.views import LumaView
from losslab.metrics import per_image_psnr


@dataclass(frozen=True)
class Measure:
    """One function: its keyword options, the loss spec of the same measure (``None``: no loss)
    and whether the loss is ``1 - mean`` (a similarity) or the mean (a distance)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    spec: str | None = None
    similarity: bool = False

    @property
    def function(self) -> Callable[..., Tensor]:
        return getattr(LF, self.name)

    def __call__(self, prediction: Tensor, target: Tensor, **extra: Any) -> Tensor:
        return self.function(prediction, target, **self.options, **extra)


MEASURES = [
    Measure("mse", spec="mse"),
    Measure("l1", spec="l1"),
    Measure("charbonnier", {"eps": 0.01}, "charbonnier(eps=0.01)"),
    Measure("huber", {"delta": 0.05}, "huber(delta=0.05)"),
    Measure("psnr"),
    Measure("ssim", spec="ssim", similarity=True),
    Measure("ms_ssim", {"scales": 3}, "ms_ssim(scales=3)", similarity=True),
    Measure("gdl", {"alpha": 2.0}, "gdl(alpha=2)"),
    Measure("frequency", {"focal": 1.0}, "frequency(focal=1)"),
    Measure("nlpd", spec="nlpd(rgb)"),
    Measure("gmsd", spec="gmsd"),
    Measure("ms_gmsd", {"chromatic": True}, "ms_gmsd(chromatic=true)"),
    Measure("haarpsi", spec="haarpsi", similarity=True),
    Measure("mdsi", spec="mdsi"),
    Measure("swd", {"projections": 16, "seed": 3}, "swd(projections=16, seed=3)"),
    Measure("perceptual", {"weights": "random", "layers": ["relu1_2", "relu2_2"]},
            "perceptual(weights=random, layers=relu1_2,relu2_2)"),
    Measure("lpips", spec="lpips"),
]
IDS = [measure.name for measure in MEASURES]


def test_every_public_function_is_tested() -> None:
    # MEASURES: the reference matrix below; NEW_MEASURES and SCORING_RULES: the measures added
    # with issues 19 and 21, tested against their loss at the end of this file.
    tested = IDS + [name for name, _, _ in NEW_MEASURES] + list(SCORING_RULES)
    assert sorted(tested) == sorted(LF.__all__)


@pytest.fixture(scope="module")
def pair() -> tuple[Tensor, Tensor]:
    """Two 48x48 photo crops (enough for ms_ssim with 3 scales, nlpd and alex LPIPS)."""
    from skimage import data

    target = torch.from_numpy(data.astronaut()[100:148, 200:248].copy()).permute(2, 0, 1)
    second = torch.from_numpy(data.coffee()[100:148, 200:248].copy()).permute(2, 0, 1)
    target = torch.stack((target, second)).float() / 255.0
    generator = torch.Generator().manual_seed(1)
    prediction = (target + 0.08 * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    return prediction, target


@pytest.fixture(autouse=True)
def random_alexnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LPIPS needs its AlexNet file: a random one under torchvision's name, downloads refused."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    with torch.random.fork_rng():
        torch.manual_seed(7)
        state = torchvision.models.alexnet().state_dict()
    torch.save({k: v for k, v in state.items() if k.startswith("features.")},
               checkpoints / "alexnet-owt-7be5be79.pth")

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("downloads are forbidden in this test")

    monkeypatch.setattr(weights_module, "_download", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize("measure", [m for m in MEASURES if m.spec], ids=[m.name for m in MEASURES if m.spec])
def test_the_loss_is_the_batch_mean_of_the_function(measure: Measure,
                                                    pair: tuple[Tensor, Tensor]) -> None:
    prediction, target = pair
    values = measure(prediction, target)
    expected = losslab.loss(measure.spec)(prediction, target)  # type: ignore[arg-type]
    mean = 1.0 - values.mean() if measure.similarity else values.mean()
    assert abs(float(mean) - float(expected)) <= 1e-6 * max(1.0, abs(float(expected)))
    assert float(expected) > 1e-4  # a real difference, not 0 == 0


@pytest.mark.parametrize("measure", MEASURES, ids=IDS)
def test_one_value_per_image_with_gradients(measure: Measure, pair: tuple[Tensor, Tensor]) -> None:
    prediction, target = (x.clone() for x in pair)
    prediction.requires_grad_(True)
    values = measure(prediction, target)
    assert values.shape == (2,) and values.dtype == torch.float32
    assert torch.isfinite(values).all()
    (values.sum()).backward()
    assert prediction.grad is not None and torch.isfinite(prediction.grad).all()
    assert float(prediction.grad.abs().sum()) > 0
    alone = measure(prediction[1:].detach(), target[1:])  # per image: not pooled over the batch
    assert torch.allclose(alone, values[1:].detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("measure", MEASURES, ids=IDS)
def test_data_range_255_on_bytes_equals_data_range_1_on_the_same_images(
    measure: Measure, pair: tuple[Tensor, Tensor]
) -> None:
    prediction, target = pair
    bytes_prediction, bytes_target = (torch.round(255 * x) for x in pair)
    scaled = measure(bytes_prediction, bytes_target, data_range=255)
    unit = measure(bytes_prediction / 255, bytes_target / 255)
    torch.testing.assert_close(scaled, unit, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(measure(prediction, target), measure(target, target), atol=1e-4)


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan])
def test_data_range_must_be_positive_and_finite(bad: float, pair: tuple[Tensor, Tensor]) -> None:
    for measure in (LF.mse, LF.ssim, LF.gmsd):
        with pytest.raises(ValueError, match=r"data_range must be a finite number > 0"):
            measure(*pair, data_range=bad)
    with pytest.raises(TypeError, match=r"data_range must be a number"):
        LF.psnr(*pair, data_range="255")  # type: ignore[arg-type]


def test_shape_errors_name_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"must have the same shape"):
        LF.l1(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match=r"4-D tensor"):
        LF.mse(torch.rand(3, 8, 8), torch.rand(3, 8, 8))


# -- independent references ---------------------------------------------------------------------
def _numpy(x: Tensor) -> np.ndarray:
    return x.double().numpy()


def test_pixel_distances_match_their_formulas(pair: tuple[Tensor, Tensor]) -> None:
    prediction, target = pair
    d = _numpy(prediction) - _numpy(target)
    axes = (1, 2, 3)
    references = {
        "mse": (d * d).mean(axis=axes),
        "l1": np.abs(d).mean(axis=axes),
        "charbonnier": np.sqrt(d * d + 0.01**2).mean(axis=axes),
        "huber": np.where(np.abs(d) < 0.05, 0.5 * d * d, 0.05 * (np.abs(d) - 0.025)).mean(axis=axes),
    }
    for measure in MEASURES[:4]:
        np.testing.assert_allclose(measure(prediction, target).numpy(), references[measure.name],
                                   rtol=1e-5)


def test_psnr_matches_skimage_and_the_metric(pair: tuple[Tensor, Tensor]) -> None:
    prediction, target = pair
    expected = [peak_signal_noise_ratio(_numpy(t), _numpy(p), data_range=1.0)
                for p, t in zip(prediction, target, strict=True)]
    np.testing.assert_allclose(LF.psnr(prediction, target).numpy(), expected, rtol=1e-5)
    bytes_expected = [peak_signal_noise_ratio(np.round(255 * _numpy(t)), np.round(255 * _numpy(p)),
                                              data_range=255) for p, t in zip(*pair, strict=True)]
    np.testing.assert_allclose(
        LF.psnr(torch.round(255 * prediction), torch.round(255 * target), data_range=255).numpy(),
        bytes_expected, rtol=1e-5)
    # the metric is this function on outputs clipped to [0, 1], in float64
    overshoot = prediction + 0.5
    assert torch.equal(per_image_psnr(overshoot, target),
                       LF.psnr(overshoot.double().clamp(0, 1), target.double()).float())
    assert math.isinf(float(LF.psnr(target, target)[0]))


def test_ssim_and_ms_ssim_match_pytorch_msssim_at_both_data_ranges(
    pair: tuple[Tensor, Tensor]
) -> None:
    prediction, target = pair
    for scale in (1.0, 255.0):
        p, t = prediction * scale, target * scale
        expected = pytorch_msssim.ssim(p, t, data_range=scale, size_average=False)
        torch.testing.assert_close(LF.ssim(p, t, data_range=scale), expected, atol=1e-5, rtol=0)
        # pytorch-msssim needs > 160 px whatever the number of weights: tile the crops 4x4.
        weights = torch.tensor([0.0448, 0.2856, 0.3001])  # Wang et al.'s first three
        expected_ms = pytorch_msssim.ms_ssim(p.repeat(1, 1, 4, 4), t.repeat(1, 1, 4, 4),
                                             data_range=scale, size_average=False,
                                             weights=(weights / weights.sum()).tolist())
        ours = LF.ms_ssim(p.repeat(1, 1, 4, 4), t.repeat(1, 1, 4, 4), data_range=scale, scales=3)
        torch.testing.assert_close(ours, expected_ms, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("name", "reference"), [
    ("gmsd", lambda p, t, r: piq.gmsd(p, t, data_range=r, reduction="none")),
    ("ms_gmsd", lambda p, t, r: piq.multi_scale_gmsd(p, t, data_range=r, reduction="none",
                                                    chromatic=True)),
    ("haarpsi", lambda p, t, r: piq.haarpsi(p, t, data_range=r, reduction="none")),
    ("mdsi", lambda p, t, r: piq.mdsi(p, t, data_range=r, reduction="none")),
])
def test_quality_indices_match_piq_at_both_data_ranges(
    name: str, reference: Callable[[Tensor, Tensor, float], Tensor], pair: tuple[Tensor, Tensor]
) -> None:
    measure = next(m for m in MEASURES if m.name == name)
    for scale in (1.0, 255.0):
        p, t = pair[0] * scale, pair[1] * scale
        torch.testing.assert_close(measure(p, t, data_range=scale), reference(p, t, scale),
                                   atol=2e-4, rtol=1e-4)


def test_nlpd_matches_plenoptic_on_greyscale(pair: tuple[Tensor, Tensor]) -> None:
    luma = LumaView()
    prediction, target = (luma(x).double() for x in pair)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = plenoptic.metric.nlpd(prediction, target).mean(dim=1) - math.sqrt(1e-10)
    torch.testing.assert_close(LF.nlpd(prediction, target), expected, atol=1e-6, rtol=1e-5)


def test_frequency_mse_without_focus_is_the_pixel_mse(pair: tuple[Tensor, Tensor]) -> None:
    torch.testing.assert_close(LF.frequency(*pair, distance="mse"), LF.mse(*pair), rtol=1e-5,
                               atol=1e-7)
    half = LF.frequency(pair[0].half(), pair[1].half())
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), LF.frequency(*pair), rtol=3e-3, atol=1e-4)


def test_gdl_matches_its_formula(pair: tuple[Tensor, Tensor]) -> None:
    p, t = (_numpy(x) for x in pair)
    dx = np.abs(np.diff(p, axis=3)) - np.abs(np.diff(t, axis=3))
    dy = np.abs(np.diff(p, axis=2)) - np.abs(np.diff(t, axis=2))
    expected = (dx * dx).mean(axis=(1, 2, 3)) + (dy * dy).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(LF.gdl(*pair, alpha=2.0).numpy(), expected, rtol=1e-5)


def test_swd_of_a_permutation_of_patches_is_zero_and_its_seed_matters() -> None:
    # 1x1 patches at one scale: the distribution of pixel colours, blind to where they are.
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 16, 16, generator=generator)
    shuffled = image.flatten(2)[..., torch.randperm(256, generator=generator)].view_as(image)
    assert float(LF.swd(shuffled, image, patch_size=1, scales=1)[0]) < 1e-12
    image = torch.rand(1, 3, 24, 24, generator=generator)
    moved = (image + 0.1).clamp(0, 1)
    assert float(LF.swd(moved, image, seed=1)[0]) != float(LF.swd(moved, image, seed=2)[0])


# -- the measures of issues 19 and 21 ------------------------------------------------------------
NEW_MEASURES = [
    ("ciede2000", "ciede2000", {}), ("delta_e76", "delta_e76", {}), ("flip", "flip", {}),
    ("ms_flip", "ms_flip", {}), ("robust", "robust(alpha=0.5, scale=0.1)",
                                 {"alpha": 0.5, "scale": 0.1}),
    ("wavelet", "wavelet(levels=2)", {"levels": 2}), ("gradient_variance", "gradient_variance", {}),
    ("contextual", "contextual(weights=random)", {"weights": "random"}),
    ("dists", "dists(weights=random)", {"weights": "random"}),
]


@pytest.mark.filterwarnings("ignore:.*random.*:UserWarning")
@pytest.mark.parametrize(("name", "spec", "options"), NEW_MEASURES, ids=[m[0] for m in NEW_MEASURES])
def test_new_measures_are_their_loss_image_by_image(name: str, spec: str, options: dict) -> None:
    torch.manual_seed(0)
    x, y = torch.rand(3, 3, 48, 48), torch.rand(3, 3, 48, 48)
    function = getattr(LF, name)
    values = function(x, y, **options)
    assert values.shape == (3,)
    torch.testing.assert_close(values.mean(), losslab.loss(spec)(x, y), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(values[1], losslab.loss(spec)(x[1:2], y[1:2]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(function(255 * x, 255 * y, data_range=255, **options), values,
                               rtol=1e-5, atol=1e-5)
    assert float(function(y, y, **options).abs().max()) < 1e-3 or name == "contextual"


SCORING_RULES = ("energy_score", "crps", "kernel_score")


@pytest.mark.parametrize("name", SCORING_RULES)
def test_scoring_rules_take_draws_and_agree_with_their_loss(name: str) -> None:
    torch.manual_seed(0)
    samples, target = torch.rand(3, 4, 3, 16, 16), torch.rand(3, 16, 16).expand(3, 3, -1, -1)
    values = getattr(LF, name)(samples, target.contiguous())
    assert values.shape == (3,)
    torch.testing.assert_close(values.mean(), losslab.loss(name)(samples, target.contiguous()))
    with pytest.raises(ValueError, match="m >= 2"):
        getattr(LF, name)(samples[:, :1], target.contiguous())
    with pytest.raises(ValueError, match=r"\(N, m, C, H, W\)"):
        getattr(LF, name)(samples[0], target.contiguous())
