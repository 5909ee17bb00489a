"""LPIPSLoss: backbone loaded from the hub cache only, checked against a hand-written LPIPS on the
same weights; the missing-backbone error; frozen network; gradients; range invariance."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import Tensor, nn

import losslab
from losslab import weights as weights_module
from losslab.losses.lpips import LPIPSLoss
from losslab.weights import WeightsUnavailableError

# LPIPS v0.1 input scaling (Zhang et al.'s ScalingLayer), for images in [-1, 1].
SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
ALEX_TAPS = (1, 4, 7, 9, 11)  # torchvision alexnet.features indices of relu1..relu5


@pytest.fixture(scope="module")
def reference_alexnet() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(7)
        return torchvision.models.alexnet().eval()


@pytest.fixture
def torch_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference_alexnet: nn.Module
) -> Path:
    """A TORCH_HOME whose cache holds the random AlexNet under torchvision's exact file name
    (``features.*`` keys only: LPIPS uses no classifier); every download attempt fails."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    state = {k: v for k, v in reference_alexnet.state_dict().items() if k.startswith("features.")}
    torch.save(state, checkpoints / "alexnet-owt-7be5be79.pth")
    _forbid_downloads(monkeypatch)
    return checkpoints


def _forbid_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("downloads are forbidden in this test")

    monkeypatch.setattr(weights_module, "_download", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)  # what torchvision would call


def _hand_lpips(alexnet: nn.Module, prediction: Tensor, target: Tensor) -> Tensor:
    """LPIPS from its definition: unit-normalise channels, weight squared differences with the
    package's v0.1 heads, average over space, sum over layers (inputs in [0, 1])."""
    import lpips

    heads = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth",
                       map_location="cpu", weights_only=True)
    total = torch.zeros(prediction.shape[0])
    x, y = ((prediction * 2 - 1) - SHIFT) / SCALE, ((target * 2 - 1) - SHIFT) / SCALE
    with torch.no_grad():
        start = 0
        for layer, tap in enumerate(ALEX_TAPS):
            for index in range(start, tap + 1):
                x, y = alexnet.features[index](x.clone()), alexnet.features[index](y.clone())
            start = tap + 1
            nx = x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ny = y / (y.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            w = heads[f"lin{layer}.model.1.weight"].view(1, -1, 1, 1)
            total += ((nx - ny).pow(2) * w).sum(1).mean((1, 2))
    return total.mean()


def _pair(size: int = 40) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(3)
    target = torch.rand(2, 3, size, size, generator=generator)
    prediction = (target + 0.2 * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    return prediction, target


def test_matches_a_hand_written_lpips_on_the_cached_backbone(
    torch_home: Path, reference_alexnet: nn.Module
) -> None:
    loss = LPIPSLoss("alex")
    prediction, target = _pair()
    expected = _hand_lpips(reference_alexnet, prediction, target)
    assert expected > 0
    torch.testing.assert_close(loss(prediction, target), expected, rtol=1e-4, atol=1e-6)
    assert loss(target, target).item() == pytest.approx(0.0, abs=1e-7)


def test_the_backbone_is_the_cached_file_not_a_random_one(
    torch_home: Path, reference_alexnet: nn.Module
) -> None:
    loss = LPIPSLoss()
    loaded = loss.model.net.slice1[0].weight
    torch.testing.assert_close(loaded, reference_alexnet.features[0].weight, rtol=0, atol=0)
    deepest = getattr(loss.model.net.slice5, "10").weight  # lpips keeps torchvision's indices
    torch.testing.assert_close(deepest, reference_alexnet.features[10].weight, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("net", "file_name"),
    [("alex", "alexnet-owt-7be5be79.pth"), ("vgg", "vgg16-397923af.pth"),
     ("squeeze", "squeezenet1_1-b8a52dc0.pth")],
)
def test_missing_backbone_raises_naming_the_file(
    net: str, file_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(weights_module.OFFLINE_ENV, raising=False)
    _forbid_downloads(monkeypatch)
    with pytest.raises(WeightsUnavailableError) as caught:
        LPIPSLoss(net)  # type: ignore[arg-type]
    message = str(caught.value)
    assert f"'{file_name}'" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "losslab weights add FILE" in message and file_name.split("-")[-1][:8] in message
    with pytest.raises(WeightsUnavailableError, match=file_name.replace(".", r"\.")):
        losslab.loss(f"lpips({net})")


def test_gradients_reach_the_prediction_only_and_the_network_stays_frozen(
    torch_home: Path,
) -> None:
    loss = LPIPSLoss()
    prediction, target = _pair()
    prediction.requires_grad_(True)
    loss(prediction, target).backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    for parameter in loss.parameters():
        assert not parameter.requires_grad and parameter.grad is None


def test_stays_in_eval_mode_when_the_owner_trains(torch_home: Path) -> None:
    owner = nn.ModuleList([LPIPSLoss()])
    owner.train()
    assert owner[0].training
    assert not any(module.training for module in owner[0].model.modules())
    prediction, target = _pair()
    torch.testing.assert_close(owner[0](prediction, target), owner[0](prediction, target))


def test_input_range_minus_one_one_gives_the_same_value(torch_home: Path) -> None:
    prediction, target = _pair()
    unit = LPIPSLoss()
    symmetric = LPIPSLoss(input_range=(-1, 1))
    torch.testing.assert_close(symmetric(prediction * 2 - 1, target * 2 - 1),
                               unit(prediction, target), rtol=1e-5, atol=1e-7)


def test_rejects_bad_net_and_images_too_small_for_alexnet(torch_home: Path) -> None:
    with pytest.raises(ValueError, match="net must be one of"):
        LPIPSLoss("resnet")  # type: ignore[arg-type]
    loss = LPIPSLoss()
    assert loss.term_name == "lpips"
    with pytest.raises(ValueError, match="at least 31x31"):
        loss(torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24))


def test_squeezenet_backbone_maps_fire_module_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _forbid_downloads(monkeypatch)
    with torch.random.fork_rng():
        torch.manual_seed(11)
        squeezenet = torchvision.models.squeezenet1_1()
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(squeezenet.state_dict(), checkpoints / "squeezenet1_1-b8a52dc0.pth")
    loss = LPIPSLoss("squeeze")
    fire = getattr(loss.model.net.slice7, "12")  # the last Fire module, features[12]
    torch.testing.assert_close(fire.expand3x3.weight, squeezenet.features[12].expand3x3.weight,
                               rtol=0, atol=0)
    prediction, target = _pair()
    assert loss(prediction, target) > 0 and loss.term_name == "lpips(squeeze)"


def test_float64_inputs_are_computed_in_the_networks_dtype(torch_home: Path) -> None:
    """Issue 11: a float64 batch failed inside the float32 network."""
    prediction, target = _pair()
    loss = LPIPSLoss()
    double = prediction.double().requires_grad_(True)
    value = loss(double, target.double())
    value.backward()
    assert value.dtype == torch.float64 and double.grad is not None
    torch.testing.assert_close(value.float(), loss(prediction, target), rtol=1e-5, atol=1e-7)
