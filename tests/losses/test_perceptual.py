"""PerceptualLoss: VGG19 features against torchvision's own network, weights loading and errors,
scale conventions, frozen network, gradients and range invariance."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

import losslab
from losslab import weights as weights_module
from losslab.losses.perceptual import VGG19_LAYERS, PerceptualLoss, gram_matrix
from losslab.weights import WeightsError, WeightsUnavailableError

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def reference_vgg() -> nn.Module:
    """torchvision's VGG19 with its own random initialisation (seeded), in eval mode."""
    with torch.random.fork_rng():
        torch.manual_seed(123)
        return torchvision.models.vgg19().eval()


@pytest.fixture(scope="module")
def state_file(reference_vgg: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference's state dict in torchvision's key format (``features.*``; the 500 MB
    classifier is left out to keep the test small: only ``features`` is used)."""
    path = tmp_path_factory.mktemp("vgg") / "vgg19-random.pth"
    state = {k: v for k, v in reference_vgg.state_dict().items() if k.startswith("features.")}
    torch.save(state, path)
    return path


def _reference_features(vgg: nn.Module, images: Tensor, index: int) -> Tensor:
    with torch.no_grad():
        return vgg.features[: index + 1]((images - MEAN) / STD)


def _images(n: int = 2, size: int = 32, seed: int = 0) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(n, 3, size, size, generator=generator)
    prediction = (target + 0.1 * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    return prediction, target


def test_layer_names_map_onto_torchvision_vgg19_indices(reference_vgg: nn.Module) -> None:
    features = reference_vgg.features
    assert len(VGG19_LAYERS) == len(features) == 37
    for name, index in VGG19_LAYERS.items():
        kind = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name[:4]]
        assert isinstance(features[index], kind), name
    assert VGG19_LAYERS["relu1_2"] == 3 and VGG19_LAYERS["relu5_4"] == 35
    assert VGG19_LAYERS["conv3_4"] == 16 and VGG19_LAYERS["pool4"] == 27


def test_state_dict_file_gives_torchvisions_features_layer_by_layer(
    reference_vgg: nn.Module, state_file: Path
) -> None:
    layers = ["conv1_1", "relu2_2", "pool3", "relu4_1"]
    loss = PerceptualLoss(layers=layers, weights=str(state_file))
    images = torch.rand(2, 3, 32, 32)
    ours = loss.features(images)
    assert list(ours) == layers
    for name in layers:
        expected = _reference_features(reference_vgg, images, VGG19_LAYERS[name])
        assert ours[name].shape == expected.shape
        torch.testing.assert_close(ours[name], expected, rtol=1e-5, atol=1e-5)
    assert loss.weights_description == f"file {state_file}"


def test_value_is_the_weighted_mean_of_per_layer_mean_distances(
    reference_vgg: nn.Module, state_file: Path
) -> None:
    """Hand calculation from torchvision's features: mean over elements, weights sum to 1."""
    prediction, target = _images()
    layers, raw = ["relu1_2", "relu2_1", "relu3_1"], [1.0, 2.0, 1.0]
    feats = {name: (_reference_features(reference_vgg, prediction, VGG19_LAYERS[name]),
                    _reference_features(reference_vgg, target, VGG19_LAYERS[name]))
             for name in layers}
    for distance in ("mse", "l1"):
        loss = PerceptualLoss(layers=layers, layer_weights=raw, distance=distance,
                              weights=str(state_file))
        expected = sum(
            (w / 4.0) * ((a - b).pow(2) if distance == "mse" else (a - b).abs()).mean()
            for w, (a, b) in zip(raw, feats.values(), strict=True)
        )
        torch.testing.assert_close(loss(prediction, target), expected, rtol=1e-5, atol=1e-7)
    assert loss.layer_weights == [0.25, 0.5, 0.25]


def test_style_term_adds_the_gram_matrix_distance(
    reference_vgg: nn.Module, state_file: Path
) -> None:
    prediction, target = _images()
    a = _reference_features(reference_vgg, prediction, VGG19_LAYERS["relu2_1"])
    b = _reference_features(reference_vgg, target, VGG19_LAYERS["relu2_1"])
    _, c, h, w = a.shape
    gram_a = torch.einsum("nchw,ndhw->ncd", a, a) / (c * h * w)
    gram_b = torch.einsum("nchw,ndhw->ncd", b, b) / (c * h * w)
    torch.testing.assert_close(gram_matrix(a), gram_a)
    loss = PerceptualLoss(layers=["relu2_1"], style=3.0, weights=str(state_file))
    expected = (a - b).pow(2).mean() + 3.0 * (gram_a - gram_b).pow(2).mean()
    torch.testing.assert_close(loss(prediction, target), expected, rtol=1e-5, atol=1e-8)


def test_imagenet_weights_are_read_from_the_hub_cache(
    reference_vgg: nn.Module, state_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "vgg19-dcbb9e9d.pth").write_bytes(state_file.read_bytes())
    monkeypatch.setattr(weights_module, "_download", _refuse_download)
    loss = PerceptualLoss(layers=["relu3_1"])
    images = torch.rand(1, 3, 16, 16)
    expected = _reference_features(reference_vgg, images, VGG19_LAYERS["relu3_1"])
    torch.testing.assert_close(loss.features(images)["relu3_1"], expected, rtol=1e-5, atol=1e-5)
    assert "imagenet" in loss.weights_description and loss.term_name == "perceptual(layers=relu3_1)"


def _refuse_download(url: str, destination: Path, hash_prefix: str | None) -> None:
    raise OSError("no route to host")


def test_missing_imagenet_weights_raise_with_the_file_name_and_remedies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(weights_module.OFFLINE_ENV, raising=False)
    monkeypatch.setattr(weights_module, "_download", _refuse_download)
    with pytest.raises(WeightsUnavailableError) as caught:
        PerceptualLoss()
    message = str(caught.value)
    assert "'vgg19-dcbb9e9d.pth'" in message
    assert str(tmp_path / "hub" / "checkpoints") in message
    assert "dcbb9e9d" in message and "losslab weights add FILE" in message
    assert "weights=random" in message
    # the spec path passes the error through unchanged (no silent fallback, no re-wrapping)
    with pytest.raises(WeightsUnavailableError, match=r"vgg19-dcbb9e9d\.pth"):
        losslab.loss("mse + 0.01*perceptual")


def test_gradients_reach_the_prediction_only() -> None:
    loss = PerceptualLoss(weights="random", style=1.0)
    prediction, target = _images()
    prediction.requires_grad_(True)
    target.requires_grad_(True)
    loss(prediction, target).backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    assert target.grad is None
    for parameter in loss.parameters():
        assert not parameter.requires_grad and parameter.grad is None


def test_network_stays_in_eval_mode_when_the_owner_trains() -> None:
    owner = nn.ModuleDict({"loss": PerceptualLoss(weights="random")})
    owner.train()
    loss = owner["loss"]
    assert loss.training
    assert not any(module.training for module in loss.slices.modules())
    assert loss.train(True) is loss and not loss.slices.training


def test_network_is_truncated_after_the_deepest_requested_layer() -> None:
    loss = PerceptualLoss(layers=["relu2_1", "relu1_2"], weights="random")
    assert [len(block) for block in loss.slices] == [4, 3]  # indices 0-3, then 4-6
    convs = [m for m in loss.slices.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 and convs[-1].out_channels == 128
    assert loss.min_size == 2  # one max-pool before relu2_1
    deep = PerceptualLoss(layers=["relu5_4"], weights="random")
    assert sum(len(block) for block in deep.slices) == 36 and deep.min_size == 16


def test_images_smaller_than_the_pools_allow_are_rejected() -> None:
    loss = PerceptualLoss(layers=["relu4_1"], weights="random")
    with pytest.raises(ValueError, match="at least 8x8"):
        loss(torch.rand(1, 3, 6, 6), torch.rand(1, 3, 6, 6))


def test_bad_layer_name_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown VGG19 layer 'relu2_3'\. Block 2 has relu2_1, relu2_2\."):
        PerceptualLoss(layers=["relu2_3"], weights="random")
    with pytest.raises(ValueError, match=r"Did you mean 'relu2_2'"):
        PerceptualLoss(layers=["relu_2_2"], weights="random")
    with pytest.raises(ValueError, match="one weight per layer"):
        PerceptualLoss(layers=["relu1_2"], layer_weights=[1.0, 2.0], weights="random")
    with pytest.raises(ValueError, match="distance"):
        PerceptualLoss(distance="l2", weights="random")  # type: ignore[arg-type]


def test_a_state_dict_of_another_network_is_refused(tmp_path: Path, state_file: Path) -> None:
    state = torch.load(state_file, weights_only=True)
    vgg16_like = {k: v for k, v in state.items() if not k.startswith(("features.34", "features.32"))}
    torch.save(vgg16_like, tmp_path / "vgg16ish.pth")
    with pytest.raises(WeightsError, match=r"features\.32"):
        PerceptualLoss(layers=["relu1_2"], weights=str(tmp_path / "vgg16ish.pth"))
    with pytest.raises(WeightsError, match="no such file"):
        PerceptualLoss(weights=str(tmp_path / "absent.pth"))


def test_input_range_minus_one_one_gives_the_same_value() -> None:
    prediction, target = _images()
    unit = PerceptualLoss(weights="random")
    symmetric = PerceptualLoss(weights="random", input_range=(-1, 1))
    torch.testing.assert_close(
        symmetric(prediction * 2 - 1, target * 2 - 1), unit(prediction, target), rtol=1e-5, atol=0
    )


def test_random_weights_warn_are_seeded_and_named(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="losslab.losses.perceptual"):
        loss = PerceptualLoss(layers=["relu1_2"], weights="random")
    assert any("NOT ImageNet" in r.getMessage() and "not perceptual" in r.getMessage()
               for r in caplog.records)
    assert loss.weights_description == "random (seed 0) — NOT ImageNet"
    assert loss.term_name == "perceptual(layers=relu1_2, weights=random)"
    same = PerceptualLoss(layers=["relu3_1"], weights="random")  # deeper: same first layers
    other = PerceptualLoss(layers=["relu1_2"], weights="random", seed=1)
    first = loss.slices[0][0].weight
    assert torch.equal(first, same.slices[0][0].weight)
    assert not torch.equal(first, other.slices[0][0].weight)
    # torchvision's He initialisation: std sqrt(2 / fan_out), fan_out = 64 * 3 * 3
    assert abs(first.std().item() - (2 / 576) ** 0.5) < 0.1 * (2 / 576) ** 0.5


def test_spec_builds_it_with_layer_lists() -> None:
    criterion = losslab.loss("mse + 0.01*perceptual(layers=relu1_2,relu2_2, weights=random)")
    term = criterion.terms[1]
    assert isinstance(term, PerceptualLoss) and term.layers == ["relu1_2", "relu2_2"]
    assert "weights=random" in criterion.term_name
    prediction, target = _images()
    value = criterion(prediction, target)
    torch.testing.assert_close(
        value, F.mse_loss(prediction, target) + 0.01 * term(prediction, target)
    )


def test_identical_images_cost_zero_and_different_ones_do_not() -> None:
    loss = PerceptualLoss(weights="random")
    prediction, target = _images()
    assert loss(target, target).item() == 0.0
    assert loss(prediction, target).item() > 0.0


# -- distance=swd: feature distributions instead of positions -----------------------------------
def test_swd_distance_is_zero_for_identical_images_and_has_gradients(photo_batch: torch.Tensor) -> None:
    loss = losslab.loss("perceptual(layers=relu1_2,relu2_2, weights=random, distance=swd)")
    assert float(loss(photo_batch, photo_batch)) == 0.0
    prediction = photo_batch.flip(-1).clone().requires_grad_(True)
    value = loss(prediction, photo_batch)
    value.backward()
    assert float(value.detach()) > 0 and torch.isfinite(prediction.grad).all()
    assert prediction.grad.abs().sum() > 0


def test_swd_distance_directions_are_per_layer_buffers_from_the_seed() -> None:
    first = PerceptualLoss(layers=["relu1_2", "relu3_1"], weights="random", distance="swd")
    second = PerceptualLoss(layers=["relu1_2", "relu3_1"], weights="random", distance="swd")
    assert first.swd_directions_0.shape == (64, 64, 1, 1)
    assert first.swd_directions_1.shape == (256, 256, 1, 1)
    torch.testing.assert_close(first.swd_directions_1, second.swd_directions_1)
    assert "swd_directions_0" in first.state_dict()
    assert first.double().swd_directions_0.dtype == torch.float64
    assert first.term_name == "perceptual(layers=relu1_2,relu3_1, distance=swd, weights=random)"


def test_swd_distance_equals_the_sliced_wasserstein_of_the_features(photo_batch: torch.Tensor) -> None:
    from losslab.losses.swd import sliced_wasserstein

    loss = PerceptualLoss(layers=["relu2_1"], weights="random", distance="swd")
    prediction = photo_batch.flip(-2)
    expected = sliced_wasserstein(
        loss.features(prediction)["relu2_1"], loss.features(photo_batch)["relu2_1"],
        loss.swd_directions_0,
    ).mean()
    torch.testing.assert_close(loss(prediction, photo_batch), expected)


def test_swd_distance_refuses_a_style_term() -> None:
    with pytest.raises(ValueError, match="style term needs distance=mse or distance=l1"):
        PerceptualLoss(weights="random", distance="swd", style=1.0)
