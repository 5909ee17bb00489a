"""DISTS: weights only through the hub cache (a missing file names itself and the remedy), a
state dict we build is loaded, and the formula equals DISTS_pytorch's on the same random trunk
and alpha/beta within 1e-5; zero for identical images, gradients, random weights offline."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import losslab
from losslab import weights as weights_module
from losslab.core.filters import gaussian_blur
from losslab.losses.dists import DISTSLoss, DISTSNetwork, L2Pooling
from losslab.weights import WeightsError, WeightsUnavailableError, get_weights_info


def _forbid_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("no network in tests")

    monkeypatch.setattr(weights_module, "_download", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture(scope="module")
def random_vgg16() -> nn.Module:
    torch.manual_seed(5)
    return torchvision.models.vgg16().eval()  # random initialisation, no download


def _features_only(vgg: nn.Module) -> dict[str, torch.Tensor]:
    # The trunk reads only `features.*`; leaving out the 120M classifier weights keeps it fast.
    return {k: v for k, v in vgg.state_dict().items() if k.startswith("features.")}


@pytest.fixture
def random_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, random_vgg16: nn.Module
) -> tuple[nn.Module, dict]:
    """A TORCH_HOME holding a random torchvision VGG16 and random alpha/beta under the names
    losslab looks for; returns both (to load the same weights into the reference)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _forbid_downloads(monkeypatch)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    vgg = random_vgg16
    torch.save(_features_only(vgg), checkpoints / get_weights_info("vgg16-imagenet").file_name)
    alpha_beta = {"alpha": 0.1 + 0.05 * torch.rand(1, 1475, 1, 1),
                  "beta": 0.1 + 0.05 * torch.rand(1, 1475, 1, 1)}
    torch.save(alpha_beta, checkpoints / get_weights_info("dists-alpha-beta").file_name)
    return vgg, alpha_beta


def _reference(vgg: nn.Module, alpha_beta: dict, monkeypatch: pytest.MonkeyPatch) -> nn.Module:
    """DISTS_pytorch's model on the same trunk and alpha/beta (its constructor would download
    the ImageNet VGG16: its `models.vgg16` is replaced by one returning our random VGG16)."""
    from DISTS_pytorch import DISTS_pt

    monkeypatch.setattr(DISTS_pt, "models", types.SimpleNamespace(vgg16=lambda **_: vgg))
    model = DISTS_pt.DISTS(load_weights=False)
    model.alpha.data = alpha_beta["alpha"].clone()
    model.beta.data = alpha_beta["beta"].clone()
    return model.eval()


def test_equals_dists_pytorch_on_the_same_random_weights(
    random_files: tuple[nn.Module, dict], photo_batch: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    vgg, alpha_beta = random_files
    ours = DISTSLoss(reduction="none")
    reference = _reference(vgg, alpha_beta, monkeypatch)
    target = photo_batch
    for prediction in (gaussian_blur(target, 1.5),
                       (target + 0.1 * torch.randn_like(target)).clamp(0, 1),
                       photo_batch.roll(1, dims=0)):
        expected = reference(prediction, target)
        value = ours(prediction, target)
        assert value.shape == expected.shape == (4,)
        assert torch.allclose(value, expected, atol=1e-5, rtol=0), (value, expected)
        assert float(value.min()) > 1e-3


def test_identical_images_cost_zero_and_the_gradient_is_finite(
    random_files: tuple[nn.Module, dict], photo_batch: torch.Tensor
) -> None:
    loss = DISTSLoss()
    assert abs(float(loss(photo_batch, photo_batch))) < 1e-6
    prediction = gaussian_blur(photo_batch[:2], 1.0).requires_grad_(True)
    value = loss(prediction, photo_batch[:2])
    value.backward()
    assert torch.isfinite(prediction.grad).all() and prediction.grad.abs().sum() > 0
    assert loss.state_dict() == {} or all("network" not in k for k in loss.state_dict())


def test_missing_files_name_the_file_and_the_remedy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, random_vgg16: nn.Module
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv(weights_module.OFFLINE_ENV, "1")
    _forbid_downloads(monkeypatch)
    with pytest.raises(WeightsUnavailableError) as caught:
        losslab.loss("dists")
    message = str(caught.value)
    assert "vgg16-397923af.pth" in message and "losslab weights add" in message
    assert "dists(weights=random)" in message
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(_features_only(random_vgg16), checkpoints / "vgg16-397923af.pth")
    with pytest.raises(WeightsUnavailableError, match=r"dists_alpha_beta-f5e65c96\.pt"):
        losslab.loss("dists")


def test_a_wrong_alpha_beta_file_is_refused(
    random_files: tuple[nn.Module, dict], tmp_path: Path
) -> None:
    torch.save({"alpha": torch.ones(3)}, tmp_path / "hub" / "checkpoints"
               / get_weights_info("dists-alpha-beta").file_name)
    with pytest.raises(WeightsError, match="alpha"):
        DISTSLoss()


def test_the_pinned_alpha_beta_hash_is_the_published_file() -> None:
    from DISTS_pytorch import DISTS_pt

    shipped = Path(DISTS_pt.__file__).parent / "weights.pt"
    assert get_weights_info("dists-alpha-beta").matches(weights_module.sha256_of(shipped))


def test_random_weights_build_offline_and_say_so() -> None:
    loss = losslab.loss("dists(weights=random)")
    assert loss.term_name == "dists(weights=random)"
    x = torch.rand(2, 3, 32, 32)
    assert abs(float(loss(x, x))) < 1e-6
    assert float(loss(x, torch.rand(2, 3, 32, 32))) > 0


def test_l2_pooling_is_the_root_of_a_hann_weighted_mean_of_squares() -> None:
    x = torch.rand(1, 1, 5, 5)
    pooled = L2Pooling(1)(x)
    assert pooled.shape == (1, 1, 3, 3)
    window = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    centre = (x[0, 0, 1:4, 1:4].square() * window).sum().sqrt()
    assert float(pooled[0, 0, 1, 1]) == pytest.approx(float(centre), rel=1e-6)
    assert DISTSNetwork("random").alpha.shape == (1475,)
