"""Tests for losslab.losses.multi_hypothesis: (relaxed) winner-takes-all over K hypotheses."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from losslab.losses import L1Loss, Loss, MSELoss, loss
from losslab.losses.multi_hypothesis import (
    MultiHypothesisLoss,
    best_hypothesis,
    select_hypothesis,
    winner_takes_all,
    winner_takes_all_weights,
)
from losslab.models import MultiHypothesisHead

LOSSES = torch.tensor([[3.0, 1.0, 2.0], [0.5, 0.7, 0.2]])


def test_wta_weights_are_one_hot_on_the_lowest_loss() -> None:
    weights = winner_takes_all_weights(LOSSES, mode="wta")
    assert torch.equal(weights, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))


def test_relaxed_weights_match_a_hand_calculation() -> None:
    weights = winner_takes_all_weights(LOSSES, mode="relaxed", epsilon=0.1)
    expected = torch.tensor([[0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    assert torch.allclose(weights, expected)
    assert torch.allclose(weights.sum(dim=1), torch.ones(2))


def test_winner_takes_all_values_match_a_hand_calculation() -> None:
    # row 0: 0.05*3 + 0.9*1 + 0.05*2 = 1.15; row 1: 0.05*0.5 + 0.05*0.7 + 0.9*0.2 = 0.24
    per_sample = winner_takes_all(LOSSES, mode="relaxed", epsilon=0.1, reduction="none")
    assert torch.allclose(per_sample, torch.tensor([1.15, 0.24]))
    assert torch.isclose(winner_takes_all(LOSSES, "relaxed", 0.1), torch.tensor(0.695))
    assert torch.isclose(winner_takes_all(LOSSES, "relaxed", 0.1, "sum"), torch.tensor(1.39))
    assert torch.allclose(winner_takes_all(LOSSES, "wta", reduction="none"), torch.tensor([1.0, 0.2]))


def test_gradient_of_wta_is_the_weights_and_ties_go_to_the_first() -> None:
    losses = torch.tensor([[1.0, 1.0, 4.0]], requires_grad=True)
    winner_takes_all(losses, "relaxed", epsilon=0.2).backward()
    assert torch.allclose(losses.grad, torch.tensor([[0.8, 0.1, 0.1]]))


def test_single_hypothesis_gets_the_full_weight() -> None:
    assert torch.equal(winner_takes_all_weights(torch.rand(3, 1), "relaxed"), torch.ones(3, 1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epsilon": 1.0}, r"epsilon must be a number in \[0, 1\)"),
        ({"epsilon": -0.1}, "epsilon must be"),
        ({"mode": "soft"}, "mode must be one of 'relaxed', 'wta'; got 'soft'"),
    ],
)
def test_invalid_wta_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        winner_takes_all(LOSSES, **kwargs)


def test_per_hypothesis_losses_must_be_two_dimensional() -> None:
    with pytest.raises(ValueError, match=r"\(N, K\) tensor.*got \(3,\)"):
        winner_takes_all(torch.rand(3))


def test_best_hypothesis_and_select() -> None:
    target = torch.rand(2, 3, 4, 4)
    predictions = torch.rand(2, 3, 3, 4, 4)
    predictions[0, 2] = target[0] + 0.01
    predictions[1, 0] = target[1] - 0.01
    index = best_hypothesis(predictions, target)
    assert index.tolist() == [2, 0]
    assert torch.equal(select_hypothesis(predictions, index), predictions[[0, 1], [2, 0]])
    with pytest.raises(ValueError, match=r"\(N, K, C, H, W\)"):
        best_hypothesis(target, target)
    with pytest.raises(ValueError, match="index must have shape"):
        select_hypothesis(predictions, torch.tensor([0]))


def test_loss_is_epsilon_times_the_other_hypothesis_when_one_equals_the_target() -> None:
    target = torch.rand(3, 3, 8, 8) * 0.8
    other = target + 0.1
    predictions = torch.stack([target, other], dim=1)
    predictions[1] = predictions[1].flip(0)  # sample 1: the exact hypothesis is the second
    relaxed = MultiHypothesisLoss(MSELoss(), mode="relaxed", epsilon=0.05)
    value = relaxed(predictions, target)
    assert torch.isclose(value, torch.tensor(0.05 * 0.1**2), rtol=1e-4)
    assert relaxed.last_best.tolist() == [0, 1, 0]
    assert float(MultiHypothesisLoss(MSELoss(), mode="wta")(predictions, target)) == 0.0


def _reference(base: Loss, predictions: Tensor, target: Tensor) -> Tensor:
    """Per-(sample, hypothesis) losses by calling the base on one image at a time."""
    samples, hypotheses = predictions.shape[:2]
    return torch.stack(
        [
            torch.stack([base(predictions[n, k : k + 1], target[n : n + 1]) for k in range(hypotheses)])
            for n in range(samples)
        ]
    )


@pytest.mark.parametrize(
    "base",
    [
        MSELoss(),
        L1Loss("luma"),
        L1Loss("rgb", reduction="sum"),
        loss("mse + 0.5*l1(luma) + 2*charbonnier"),
        loss("huber(delta=0.05)", input_range=(-1, 1)),
    ],
    ids=["mse", "l1-luma", "l1-sum", "weighted-sum", "huber-minus-one-to-one"],
)
def test_matches_a_loop_over_samples_and_hypotheses(base: Loss) -> None:
    predictions = torch.rand(3, 4, 3, 8, 8)
    target = torch.rand(3, 3, 8, 8)
    if base.input_range == (-1.0, 1.0):
        predictions, target = predictions * 2 - 1, target * 2 - 1
    criterion = MultiHypothesisLoss(base, mode="relaxed", epsilon=0.1)
    reference = _reference(base, predictions, target)
    assert torch.allclose(criterion.per_hypothesis(predictions, target), reference, atol=1e-6)
    weights = winner_takes_all_weights(reference, "relaxed", 0.1)
    expected = (weights * reference).sum(dim=1).mean()
    assert torch.allclose(criterion(predictions, target), expected, atol=1e-6)
    assert getattr(base, "reduction", "mean") != "none"  # the base's reduction was restored


def test_schedules_of_a_weighted_sum_are_followed() -> None:
    base = loss("mse + l1@start(10)")
    criterion = MultiHypothesisLoss(base, mode="wta")
    predictions = torch.rand(2, 2, 3, 4, 4)
    target = torch.rand(2, 3, 4, 4)
    mse_only = MultiHypothesisLoss(MSELoss(), mode="wta")(predictions, target)
    assert torch.allclose(criterion(predictions, target), mse_only)
    assert set(criterion.last_values) == {"mse"}
    criterion.set_step(10)
    later = criterion(predictions, target)
    assert later > mse_only
    assert set(criterion.last_values) == {"mse", "l1"}


def test_gradient_flows_mostly_to_the_best_hypothesis() -> None:
    target = torch.full((1, 1, 2, 2), 0.5)
    predictions = torch.stack([target + 0.1, target + 0.3], dim=1).requires_grad_(True)
    MultiHypothesisLoss(MSELoss(), mode="relaxed", epsilon=0.05)(predictions, target).backward()
    # d/dp mean((p - t)^2) = 2 (p - t) / 4 per pixel, times the weight
    assert torch.allclose(predictions.grad[0, 0], torch.full((1, 2, 2), 0.95 * 2 * 0.1 / 4))
    assert torch.allclose(predictions.grad[0, 1], torch.full((1, 2, 2), 0.05 * 2 * 0.3 / 4))


class _ScalarOnly(Loss):
    def compute(self, prediction: Tensor, target: Tensor) -> Tensor:
        return (prediction - target).abs().mean()


class _Adversarial(MSELoss):
    judged_by_discriminator = True


def test_unsupported_bases_raise_clear_errors() -> None:
    with pytest.raises(TypeError, match="no 'reduction' option"):
        MultiHypothesisLoss(_ScalarOnly())
    with pytest.raises(TypeError, match="adversarial"):
        MultiHypothesisLoss(MSELoss() + _Adversarial())
    with pytest.raises(ValueError, match="reducing base"):
        MultiHypothesisLoss(MSELoss(reduction="none"))
    with pytest.raises(TypeError, match="base must be a losslab Loss"):
        MultiHypothesisLoss(nn.MSELoss())  # type: ignore[arg-type]


def test_shape_errors_name_the_expected_layout() -> None:
    criterion = MultiHypothesisLoss(MSELoss())
    with pytest.raises(ValueError, match="MultiHypothesisHead"):
        criterion(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="do not match target"):
        criterion(torch.rand(2, 2, 3, 4, 4), torch.rand(2, 3, 5, 4))
    with pytest.raises(ValueError, match="must have 3 channels"):  # the base's own checks run
        MultiHypothesisLoss(L1Loss("luma"))(torch.rand(2, 2, 1, 4, 4), torch.rand(2, 1, 4, 4))


def test_name_describes_mode_and_base() -> None:
    assert MultiHypothesisLoss(MSELoss(), "wta").term_name == "wta(mse)"
    assert MultiHypothesisLoss(L1Loss("luma"), epsilon=0.1).term_name == "relaxed_wta(l1(luma), epsilon=0.1)"


def _train(model: nn.Module, criterion: nn.Module, steps: int = 300) -> Tensor:
    """Fit a constant input to targets that are all-0.2 or all-0.8 images (half each)."""
    inputs = torch.ones(16, 1, 2, 2)
    target = torch.cat([torch.full((8, 1, 2, 2), 0.2), torch.full((8, 1, 2, 2), 0.8)])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        optimizer.zero_grad()
        criterion(model(inputs), target).backward()
        optimizer.step()
    with torch.no_grad():
        return model(inputs[:1])


def test_wta_learns_both_modes_where_mse_learns_their_mean() -> None:
    def tiny(outputs: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 8, 1), nn.Tanh(), nn.Conv2d(8, outputs, 1), nn.Sigmoid())

    single = _train(tiny(1), MSELoss())
    assert torch.allclose(single, torch.full_like(single, 0.5), atol=0.02)  # the blurred mean

    head = MultiHypothesisHead(tiny(2), hypotheses=2, channels=1)
    hypotheses = _train(head, MultiHypothesisLoss(MSELoss(), mode="relaxed", epsilon=0.05))
    values = sorted(hypotheses[0, :, 0].mean(dim=(1, 2)).tolist())
    # relaxed WTA's fixed points: 0.95 * 0.2 + 0.05 * 0.8 = 0.23 and 0.77
    assert values == pytest.approx([0.23, 0.77], abs=0.03)
