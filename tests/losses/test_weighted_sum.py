"""Weighted sums: totals, per-term values for logging, schedules, and NaN reporting by term."""

from __future__ import annotations

import pytest
import torch

import losslab
from losslab.losses import L1Loss, Loss, LossContext, MSELoss, WeightedSum
from losslab.losses.weighted_sum import fold_samples, weighted_terms


def test_python_composition_matches_the_weighted_sum() -> None:
    p, t = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    combined = L1Loss("luma") + 0.25 * MSELoss()
    expected = L1Loss("luma")(p, t) + 0.25 * MSELoss()(p, t)
    torch.testing.assert_close(combined(p, t), expected)
    assert isinstance(combined, WeightedSum)
    assert combined.term_name == "l1(luma) + 0.25*mse"
    assert set(combined.last_values) == {"l1(luma)", "mse"}
    torch.testing.assert_close(combined.last_values["mse"], MSELoss()(p, t))


def test_weights_multiply_through_and_sum_builtin_works() -> None:
    p, t = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    nested = 2 * (L1Loss() + 0.5 * MSELoss())
    assert nested.weights == [2.0, 1.0]
    total = sum([L1Loss(), MSELoss()])
    torch.testing.assert_close(total(p, t), L1Loss()(p, t) + MSELoss()(p, t))


def test_spec_and_objects_agree() -> None:
    p, t = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    from_spec = losslab.loss("0.84*l1(luma) + 0.16*mse")
    from_objects = 0.84 * L1Loss("luma") + 0.16 * MSELoss()
    torch.testing.assert_close(from_spec(p, t), from_objects(p, t))


def test_schedules_change_effective_weights_at_the_stated_steps() -> None:
    total = losslab.loss("l1 + 0.5*mse@ramp(100,200) + 2*l1(luma)@start(50)")
    assert isinstance(total, WeightedSum)
    expected = {
        0: {"l1": 1.0, "mse": 0.0, "l1(luma)": 0.0},
        50: {"l1": 1.0, "mse": 0.0, "l1(luma)": 2.0},
        150: {"l1": 1.0, "mse": 0.25, "l1(luma)": 2.0},
        500: {"l1": 1.0, "mse": 0.5, "l1(luma)": 2.0},
    }
    for step, weights in expected.items():
        total.set_step(step)
        assert total.current_weights() == pytest.approx(weights)
    total.set_step(0)
    p, t = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(total(p, t), L1Loss()(p, t))
    assert "mse" not in total.last_values  # a term that has not started is not computed


def test_nan_total_names_the_term() -> None:
    class Exploding(MSELoss):
        def compute(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return super().compute(prediction, target) * float("nan")

    exploding = Exploding()
    exploding.term_name = "exploding"
    total = L1Loss() + 0.1 * exploding
    with pytest.raises(FloatingPointError, match="'exploding' = nan"):
        total(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))


def test_duplicate_terms_get_distinct_log_names() -> None:
    total = losslab.loss("l1 + l1")
    assert total.term_names == ["l1", "l1#2"]


def test_terms_of_a_sum_must_be_scalars() -> None:
    total = L1Loss(reduction="none") + MSELoss()
    with pytest.raises(ValueError, match="reduce to a scalar"):
        total(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))


def test_gradient_reaches_prediction_only() -> None:
    p = torch.rand(1, 3, 8, 8, requires_grad=True)
    t = torch.rand(1, 3, 8, 8, requires_grad=True)
    losslab.loss("l1(luma) + 0.5*mse(chroma)")(p, t.detach()).backward()
    assert p.grad is not None and p.grad.abs().sum() > 0
    assert t.grad is None


class _Judged(Loss):
    """A stand-in adversarial term that records what the sum hands it."""

    judged_by_discriminator = True
    uses_reconstruction = True

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, object]] = []

    def evaluate(self, prediction: torch.Tensor, target: torch.Tensor,
                 context: LossContext | None = None) -> torch.Tensor:
        assert context is not None
        self.calls.append({"reconstruction": context.reconstruction,
                           "last_layer": context.last_layer})
        return prediction.mean()


def test_weighted_terms_is_the_one_view_of_the_parts() -> None:
    criterion = losslab.loss("l1 + 0.5*mse@ramp(10,20) + 0.01*l1(luma)@start(5)")
    criterion.set_step(15)
    parts = list(criterion.weighted_terms())
    assert [p.name for p in parts] == criterion.term_names
    assert [(p.index, p.weight, p.factor) for p in parts] == [(0, 1.0, 1.0), (1, 0.5, 0.5),
                                                              (2, 0.01, 1.0)]
    assert {p.name: p.current for p in parts} == criterion.current_weights()
    assert [p.schedule.kind for p in parts] == ["constant", "ramp", "start"]
    criterion.set_step(0)
    assert [p.waiting for p in criterion.weighted_terms()] == [False, True, True]
    (alone,) = weighted_terms(MSELoss())
    assert (alone.name, alone.weight, alone.current, alone.waiting) == ("mse", 1.0, 1.0, False)


def test_evaluate_terms_hands_the_reconstruction_and_last_layer_to_judged_terms_last() -> None:
    judged = _Judged()
    criterion = WeightedSum([judged, L1Loss(), MSELoss()], [0.1, 2.0, 3.0])
    prediction, target = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)
    layer = torch.ones(3, requires_grad=True)
    evaluated = criterion.evaluate_terms(prediction, target, LossContext(last_layer=layer))
    assert [part.name for part, _ in evaluated] == ["l1", "mse", "_Judged"]  # judged ones last
    (call,) = judged.calls
    expected = 2.0 * (prediction - target).abs().mean() + 3.0 * (prediction - target).pow(2).mean()
    torch.testing.assert_close(call["reconstruction"], expected)
    assert call["reconstruction"].requires_grad and call["last_layer"] is layer
    total = criterion(prediction, target, LossContext(last_layer=layer))
    torch.testing.assert_close(total, expected + 0.1 * prediction.mean())
    assert judged.calls[-1]["last_layer"] is layer


class _SampleSpread(Loss):
    """A stand-in sample-based term: the mean spread of the draws around their mean."""

    sample_based = True

    def check_shapes(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        if prediction.dim() != 5:
            raise ValueError("samples must be (N, m, C, H, W)")

    def compute(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction - prediction.mean(dim=1, keepdim=True)).abs().mean()


def test_samples_go_to_sample_terms_and_every_draw_to_the_image_terms() -> None:
    samples, target = torch.rand(2, 4, 3, 8, 8), torch.rand(2, 3, 8, 8)
    spread = _SampleSpread()
    criterion = MSELoss() + 0.5 * spread
    total = criterion(samples, target)
    per_draw = (samples - target.unsqueeze(1)).pow(2).mean()  # each of the 4 draws vs the target
    torch.testing.assert_close(total, per_draw + 0.5 * spread.compute(samples, target))
    assert set(criterion.last_values) == {"mse", "_SampleSpread"}
    flat, repeated = fold_samples(samples, target)
    assert flat.shape == repeated.shape == (8, 3, 8, 8)
    torch.testing.assert_close(repeated[4:8], target[1].expand(4, -1, -1, -1))


def test_samples_without_a_sample_based_term_are_refused() -> None:
    with pytest.raises(ValueError, match="no term of 'l1 \\+ mse' is sample-based"):
        (L1Loss() + MSELoss())(torch.rand(2, 4, 3, 8, 8), torch.rand(2, 3, 8, 8))


def test_the_loss_call_is_plain_and_the_context_is_checked() -> None:
    prediction, target = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    with pytest.raises(TypeError):  # a plain term takes two images, nothing more
        L1Loss()(prediction, target, LossContext())  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"LossContext\(condition=inputs\)"):
        (L1Loss() + MSELoss())(prediction, target, prediction)  # type: ignore[arg-type]
    torch.testing.assert_close((L1Loss() + MSELoss())(prediction, target, LossContext()),
                               (L1Loss() + MSELoss())(prediction, target))


def test_capability_flags_are_declared_once_on_the_base_class() -> None:
    flags = {"judged_by_discriminator", "uses_condition", "uses_reconstruction",
             "uses_ema_prediction", "sample_based", "edge_sign_blind"}
    assert all(getattr(Loss, flag) is False for flag in flags)
    from losslab.losses import AdversarialLoss, FeatureMatchingLoss, LDLLoss

    assert AdversarialLoss.judged_by_discriminator and FeatureMatchingLoss.judged_by_discriminator
    assert LDLLoss.uses_ema_prediction and not L1Loss.judged_by_discriminator
