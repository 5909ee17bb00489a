"""Tests for losslab.losses.multi_hypothesis: (relaxed) winner-takes-all over K hypotheses."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from losslab.losses import L1Loss, Loss, MSELoss, loss
from losslab.losses.multi_hypothesis import (
    MultiHypothesisLoss,
    annealed_weights,
    annealing_temperature,
    best_hypothesis,
    evolving_top_k,
    evolving_weights,
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


# -- annealed MCL and evolving WTA ---------------------------------------------------------
def test_annealed_weights_match_a_hand_calculation() -> None:
    # softmax(-[0, ln 2, ln 4]) = [1, 1/2, 1/4] / (7/4) = [4, 2, 1] / 7
    losses = torch.tensor([[0.0, math.log(2.0), math.log(4.0)]])
    assert torch.allclose(annealed_weights(losses, 1.0), torch.tensor([[4.0, 2.0, 1.0]]) / 7)
    # at T = 0.5 the exponents double: [1, 1/4, 1/16] / (21/16) = [16, 4, 1] / 21
    assert torch.allclose(annealed_weights(losses, 0.5), torch.tensor([[16.0, 4.0, 1.0]]) / 21)


def test_annealed_limits_are_hard_wta_and_the_mean() -> None:
    cold = annealed_weights(LOSSES, 1e-6)
    assert torch.allclose(cold, winner_takes_all_weights(LOSSES, mode="wta"), atol=1e-6)
    assert torch.equal(annealed_weights(LOSSES, 0.0), winner_takes_all_weights(LOSSES, mode="wta"))
    hot = annealed_weights(LOSSES, 1e6)
    assert torch.allclose(hot, torch.full_like(LOSSES, 1 / 3), atol=1e-5)
    # the loss at T -> inf is the mean over hypotheses of the base loss
    criterion = MultiHypothesisLoss(MSELoss(), assignment="annealed", temperature=1e6,
                                    temperature_end=1e6)
    predictions, target = torch.rand(3, 4, 3, 4, 4), torch.rand(3, 3, 4, 4)
    per_pair = (predictions - target[:, None]).square().mean(dim=(2, 3, 4))
    assert torch.allclose(criterion(predictions, target), per_pair.mean(), atol=1e-6)


def test_evolving_weights_match_a_hand_calculation() -> None:
    # row 0 losses [3, 1, 2]: best two are indices 1 and 2; row 1 [0.5, 0.7, 0.2]: 2 and 0
    assert torch.allclose(evolving_weights(LOSSES, 2),
                          torch.tensor([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5]]))
    assert torch.equal(evolving_weights(LOSSES, 1), winner_takes_all_weights(LOSSES, mode="wta"))
    assert torch.allclose(evolving_weights(LOSSES, 3), torch.full_like(LOSSES, 1 / 3))
    ties = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert torch.allclose(evolving_weights(ties, 2), torch.tensor([[0.5, 0.0, 0.0, 0.5]]))


def test_temperature_schedule_endpoints_and_midpoint() -> None:
    assert annealing_temperature(0, 1.0, 1e-4, 500) == pytest.approx(1.0)
    assert annealing_temperature(250, 1.0, 1e-4, 500) == pytest.approx(1e-2)  # geometric mean
    assert annealing_temperature(500, 1.0, 1e-4, 500) == pytest.approx(1e-4)
    assert annealing_temperature(9000, 1.0, 1e-4, 500) == pytest.approx(1e-4)
    assert annealing_temperature(100, 0.02, 0.0, 400, "linear") == pytest.approx(0.015)
    assert annealing_temperature(400, 0.02, 0.0, 400, "linear") == 0.0


def test_evolving_top_k_goes_from_k_to_one_in_equal_stages() -> None:
    ks = [evolving_top_k(step, 4, 300) for step in range(0, 400)]
    assert ks[0] == 4 and ks[99] == 4 and ks[100] == 3 and ks[199] == 3
    assert ks[200] == 2 and ks[299] == 2 and set(ks[300:]) == {1}
    assert evolving_top_k(0, 1, 10) == 1


def test_evolving_loss_at_k_equals_k_is_the_mean_over_hypotheses() -> None:
    criterion = MultiHypothesisLoss(MSELoss(), assignment="evolving", schedule_steps=100)
    predictions, target = torch.rand(3, 4, 3, 4, 4), torch.rand(3, 3, 4, 4)
    per_pair = (predictions - target[:, None]).square().mean(dim=(2, 3, 4))
    assert torch.allclose(criterion(predictions, target), per_pair.mean())
    criterion.set_step(100)  # k = 1: hard WTA
    assert torch.allclose(criterion(predictions, target), per_pair.min(dim=1).values.mean())
    assert criterion.assignment_logs(4) == {"hypotheses/top_k": 1.0}


def test_annealed_loss_follows_the_step_it_is_given() -> None:
    criterion = MultiHypothesisLoss(MSELoss(), assignment="annealed", temperature=1.0,
                                    temperature_end=1e-4, schedule_steps=500)
    predictions, target = torch.rand(2, 3, 3, 4, 4), torch.rand(2, 3, 4, 4)
    per_pair = (predictions - target[:, None]).square().mean(dim=(2, 3, 4))
    criterion.set_step(250)
    expected = (torch.softmax(-per_pair / 1e-2, dim=1) * per_pair).sum(dim=1).mean()
    assert torch.allclose(criterion(predictions, target), expected)
    assert criterion.assignment_logs(3)["hypotheses/temperature"] == pytest.approx(1e-2)
    assert criterion.term_name == "annealed_mcl(mse, T=1->0.0001 exponential over 500)"


def test_annealed_gradient_is_the_soft_weights() -> None:
    losses = torch.tensor([[0.0, math.log(3.0)]], requires_grad=True)
    (annealed_weights(losses, 1.0) * losses).sum().backward()  # weights are constants
    assert torch.allclose(losses.grad, torch.tensor([[0.75, 0.25]]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"assignment": "soft"}, "assignment must be one of 'relaxed', 'annealed', 'evolving'"),
        ({"assignment": "annealed", "mode": "wta"}, "applies to assignment 'relaxed' only"),
        ({"assignment": "annealed", "temperature_end": 0.0}, "never reaches 0"),
        ({"assignment": "annealed", "temperature": 0.01, "temperature_end": 0.1}, "cools down"),
        ({"assignment": "evolving", "schedule_steps": 0}, "steps >= 1"),
    ],
)
def test_invalid_assignments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MultiHypothesisLoss(MSELoss(), **kwargs)


def test_invalid_schedule_arguments_raise() -> None:
    with pytest.raises(ValueError, match=r"top_k must be a whole number in \[1, K = 3\]"):
        evolving_weights(LOSSES, 4)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        annealed_weights(LOSSES, -1.0)
    with pytest.raises(ValueError, match="step must be a whole number >= 0"):
        evolving_top_k(-1, 4, 10)
