"""Every registered loss, tested the day it is registered: builds from its name, gives a finite
scalar, passes gradients to the prediction only, rejects mismatched shapes, follows dtype moves,
and is listed by ``losslab losses``."""

from __future__ import annotations

import pytest
import torch

import losslab
from losslab.cli import main
from losslab.losses import available_losses, format_loss_table, get_loss_entry
from losslab.train.adversarial import attach_discriminators

#: How to build a loss offline where its bare name would need downloads or larger images.
OFFLINE_SPEC = {
    "perceptual": "perceptual(weights=random)",
    "ms_ssim": "ms_ssim(scales=2)",
}
#: Losses whose bare construction needs files that cannot exist here; their own tests cover them.
NEEDS_PRETRAINED = {"lpips": "needs a pretrained backbone; tests/losses/test_lpips.py covers it"}
#: Terms that own trainable networks of their own (a discriminator learns from its own step).
OWNS_TRAINABLE_NETWORK = {"adversarial", "feature_matching"}

NAMES = available_losses()


def _build(name: str) -> losslab.losses.Loss:
    if name in NEEDS_PRETRAINED:
        pytest.skip(NEEDS_PRETRAINED[name])
    criterion = losslab.loss(OFFLINE_SPEC.get(name, name))
    if name in OWNS_TRAINABLE_NETWORK:  # discriminators are models: attached as the trainer does
        attach_discriminators(criterion)
    return criterion


def _pair(size: int = 48, samples: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A prediction near a target; for sample-based losses (``sample_based``) two such draws
    per input, ``(N, 2, C, H, W)``."""
    target = torch.rand(2, 3, size, size)
    draws = 2 if samples else 1
    prediction = (target.unsqueeze(1) + 0.1 * torch.randn(2, draws, 3, size, size)).clamp(0, 1)
    return (prediction if samples else prediction[:, 0]), target


def test_the_registry_holds_the_core_names() -> None:
    expected = {"mse", "l1", "charbonnier", "huber", "ssim", "ms_ssim", "gdl", "frequency",
                "perceptual", "lpips", "adversarial", "feature_matching"}
    missing = expected - set(NAMES)
    assert not missing, f"not registered: {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_the_prediction_only(name: str) -> None:
    criterion = _build(name)
    prediction, target = _pair(samples=criterion.sample_based)
    prediction.requires_grad_(True)
    target.requires_grad_(True)
    value = criterion(prediction, target.detach() if name not in {"feature_matching"} else target)
    assert value.dim() == 0 and torch.isfinite(value)
    value.backward()
    assert prediction.grad is not None and torch.isfinite(prediction.grad).all()
    assert prediction.grad.abs().sum() > 0
    if name not in OWNS_TRAINABLE_NETWORK:
        assert target.grad is None or target.grad.abs().sum() == 0
        for parameter in criterion.parameters():
            assert parameter.grad is None, f"{name} passed a gradient into its own weights"


@pytest.mark.parametrize("name", NAMES)
def test_mismatched_shapes_are_rejected(name: str) -> None:
    criterion = _build(name)
    shape = (1, 2, 3, 48, 48) if criterion.sample_based else (1, 3, 48, 48)
    with pytest.raises(ValueError, match="same shape"):
        criterion(torch.rand(*shape), torch.rand(1, 3, 48, 40))


@pytest.mark.parametrize("name", NAMES)
def test_buffers_follow_a_dtype_move(name: str) -> None:
    criterion = _build(name).double()
    prediction, target = _pair(samples=criterion.sample_based)
    value = criterion(prediction.double(), target.double())
    assert value.dtype == torch.float64 and torch.isfinite(value)


@pytest.mark.parametrize("name", NAMES)
def test_listed_with_parameters_and_description(name: str) -> None:
    entry = get_loss_entry(name)
    assert entry.description and entry.description != entry.cls.__name__
    assert f"\n{name}" in "\n" + format_loss_table()


def test_cli_lists_every_loss(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["losses"]) == 0
    printed = capsys.readouterr().out
    for name in NAMES:
        assert name in printed
