"""metrics.perceptual: the LPIPS metric is the loss's implementation (same number as the loss),
checked against torchmetrics' independent LPIPS on the same cached backbone; LPIPS, FID and KID
are unavailable with the remedy when weights are missing, unreadable, or the images too small."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import Tensor

from losslab import weights as weights_module
from losslab.losses.lpips import LPIPS_NETS, LPIPSLoss
from losslab.metrics import compute_image_metrics, lpips, lpips_unavailable_reason


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A TORCH_HOME whose cache holds a seeded random AlexNet under torchvision's file name (the
    real weights cannot be downloaded here); every download attempt fails."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        torch.save(torchvision.models.alexnet().state_dict(), checkpoints / "alexnet-owt-7be5be79.pth")

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("downloads are forbidden in this test")

    monkeypatch.setattr(weights_module, "_download", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return checkpoints


def _pair(size: int = 48) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(4)
    target = torch.rand(3, 3, size, size, generator=generator)
    output = (target + 0.15 * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    return output, target


def test_metric_equals_the_loss_and_torchmetrics_on_the_same_backbone(torch_home: Path) -> None:
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    output, target = _pair()
    value, reason = lpips(output, target)
    assert reason is None and value is not None and value > 0.01
    # One implementation: the loss of the same name gives the same number.
    assert value == pytest.approx(float(LPIPSLoss()(output, target)), rel=1e-6)
    # An independent LPIPS (torchmetrics' own copy of the network, loading the same cache file).
    reference = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)
    assert value == pytest.approx(float(reference(output, target)), rel=1e-4)
    assert lpips(target, target)[0] == pytest.approx(0.0, abs=1e-7)


def test_missing_weights_give_the_file_and_the_remedy(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(weights_module.OFFLINE_ENV, raising=False)
    output, target = _pair()
    value, reason = lpips(output, target, net="vgg")
    assert value is None and reason is not None
    assert "vgg16-397923af.pth" in reason and "losslab weights add FILE" in reason
    assert "never downloads" in reason  # the metric's own reason, not $LOSSLAB_OFFLINE
    assert lpips_unavailable_reason("vgg") == reason


def test_too_small_images_are_unavailable_not_an_error(torch_home: Path) -> None:
    minimum = LPIPS_NETS.get("alex").min_size
    output, target = _pair(minimum - 1)
    value, reason = lpips(output, target)
    assert value is None and f"at least {minimum}x{minimum}" in str(reason)
    result = compute_image_metrics(output, target, metrics=["lpips"])
    assert result["lpips"] is None and "30x30" in result["unavailable"]["lpips"]


def test_unknown_backbone_is_rejected() -> None:
    output, target = _pair()
    with pytest.raises(ValueError, match="net must be one of 'alex', 'squeeze', 'vgg'"):
        lpips(output, target, net="resnet")  # type: ignore[arg-type]


def test_fid_and_kid_are_unavailable_with_the_reason_never_a_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from losslab.metrics import perceptual

    images = torch.rand(4, 3, 16, 16)
    monkeypatch.setattr(perceptual, "fid_kid_unavailable_reason", lambda: "no torch-fidelity")
    values, reasons = perceptual.fid_kid(images, images)
    assert values == {"fid": None, "kid": None}
    assert reasons == {"fid": "no torch-fidelity", "kid": "no torch-fidelity"}
    monkeypatch.setattr(perceptual, "fid_kid_unavailable_reason", lambda: None)
    values, reasons = perceptual.fid_kid(images[:1], images[:1])
    assert values["fid"] is None and "at least 2 images per set; got 1" in reasons["fid"]
