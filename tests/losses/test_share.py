"""Weights set by gradient share (``@share``): the rule, the spec syntax, and that it works."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import losslab
from losslab.losses import SpecError, WeightedSum, WeightSchedule
from losslab.losses.share import SHARE_RANGE, share_multipliers, smooth_norms


def test_multipliers_solve_the_shares_exactly() -> None:
    norms, weights, factors = [2.0, 0.5, 4.0], [1.0, 3.0, 0.01], [1.0, 1.0, 1.0]
    targets = [None, 0.2, 0.3]
    m = share_multipliers(norms, weights, factors, targets, [1.0, 1.0, 1.0])
    weighted = [abs(w * f * k) * n for w, f, k, n in zip(weights, factors, m, norms, strict=True)]
    shares = [g / sum(weighted) for g in weighted]
    assert shares == pytest.approx([0.5, 0.2, 0.3], rel=1e-12)
    assert m[0] == 1.0


def test_a_ramp_scales_the_target_and_undefined_cases_keep_the_multiplier() -> None:
    # Half-way up a ramp the term aims at half its share.
    m = share_multipliers([1.0, 1.0], [1.0, 1.0], [1.0, 0.5], [None, 0.4], [1.0, 1.0])
    weighted = [1.0, 0.5 * m[1]]
    assert weighted[1] / sum(weighted) == pytest.approx(0.2)
    # No measurement yet (norm 0), or nothing unshared to scale against: keep the old value.
    assert share_multipliers([1.0, 0.0], [1.0, 1.0], [1.0, 1.0], [None, 0.2], [1.0, 7.0])[1] == 7.0
    assert share_multipliers([0.0, 1.0], [1.0, 1.0], [1.0, 1.0], [None, 0.2], [1.0, 7.0])[1] == 7.0
    # Clamped to the documented range.
    assert share_multipliers([1.0, 1e-9], [1.0, 1.0], [1.0, 1.0], [None, 0.5], [1.0, 1.0])[1] \
        == SHARE_RANGE[1]


def test_smoothing_starts_at_the_first_measurement_and_ignores_bad_ones() -> None:
    assert smooth_norms([0.0, 2.0, 2.0, 2.0], [4.0, 4.0, None, float("nan")]) == \
        pytest.approx([4.0, 0.8 * 2.0 + 0.2 * 4.0, 2.0, 2.0])


def test_spec_syntax_composes_with_schedules_and_renders_back() -> None:
    built = losslab.loss("l1 + 0.01*mse@ramp(10,20)@share(0.2) + 2*l1(luma)@share(0.1)")
    assert isinstance(built, WeightedSum)
    assert built.schedules[1] == WeightSchedule("ramp", 10, 20, share=0.2)
    assert built.schedules[2] == WeightSchedule(share=0.1)
    assert built.share_targets == [None, 0.2, 0.1]
    assert built.term_name == "l1 + 0.01*mse@ramp(10,20)@share(0.2) + 2*l1(luma)@share(0.1)"
    same = losslab.loss("l1 + 0.01*mse@share(0.2)@ramp(10,20)")  # either order
    assert same.schedules[1] == built.schedules[1]
    assert {"share_norms", "share_multipliers"} <= set(built.state_dict())
    assert "share_norms" not in losslab.loss("l1 + mse").state_dict()


@pytest.mark.parametrize(("spec", "message"), [
    ("l1@share(0.2)", "at least one term must keep a fixed weight"),
    ("l1 + mse@share(0.6) + l1(luma)@share(0.5)", "add up to 1.1"),
    ("l1 + mse@share(1.5)", r"in \(0, 1\)"),
    ("l1 + mse@share(0.2)@share(0.3)", "one share"),
    ("l1 + mse@start(5)@ramp(1,2)", "one of start/ramp"),
    ("l1 + mse@shares(0.2)", "share\\(FRACTION\\)"),
])
def test_bad_share_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        losslab.loss(spec)


def _mse_share(criterion: WeightedSum, prediction: torch.Tensor, target: torch.Tensor) -> float:
    """mse's share of the gradient, measured independently of the sum: ``||w d mse/dp|| /
    (||d l1/dp|| + ||w d mse/dp||)`` with ``w`` the sum's current mse weight (l1's is 1)."""
    weight = criterion.current_weights()["mse"]
    (l1_gradient,) = torch.autograd.grad(F.l1_loss(prediction, target), prediction,
                                         retain_graph=True)
    (mse_gradient,) = torch.autograd.grad(weight * F.mse_loss(prediction, target), prediction,
                                          retain_graph=True)
    norms = float(l1_gradient.norm()), float(mse_gradient.norm())
    return norms[1] / sum(norms)


def _fit(spec: str, steps: int, seed: int = 0) -> tuple[WeightedSum, list[float]]:
    """Train a small conv net on a fixed pair; returns the sum and mse's measured shares."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    criterion = losslab.loss(spec)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    inputs, target = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    shares = []
    for step in range(steps):
        criterion.set_step(step)
        prediction = net(inputs)
        loss = criterion(prediction, target)
        shares.append(_mse_share(criterion, prediction, target))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return criterion, shares


def test_share_brings_a_mis_weighted_term_to_its_target() -> None:
    _, plain = _fit("l1 + 100*mse", 40)
    assert plain[-1] > 0.9  # mis-weighted: mse takes almost all of the gradient
    criterion, shares = _fit("l1 + 100*mse@share(0.2)", 40)
    assert all(abs(s - 0.2) <= 0.05 for s in shares[10:]), shares  # measured: 0.156-0.198
    assert criterion.current_weights()["mse"] < 1.0  # the weight came down from 100


def test_share_is_deterministic_and_follows_a_start() -> None:
    first, _ = _fit("l1 + 100*mse@start(5)@share(0.3)", 15)
    second, shares = _fit("l1 + 100*mse@start(5)@share(0.3)", 15)
    assert torch.equal(first.share_multipliers, second.share_multipliers)
    assert shares[:5] == [0.0] * 5  # off before its start
    assert abs(shares[-1] - 0.3) < 0.05


def test_no_update_in_eval_mode_or_without_gradients() -> None:
    criterion = losslab.loss("l1 + 100*mse@share(0.2)")
    prediction = torch.rand(2, 3, 8, 8, requires_grad=True)
    target = torch.rand(2, 3, 8, 8)
    criterion.eval()
    criterion(prediction, target)
    with torch.no_grad():
        criterion.train()(prediction, target)
    assert criterion.multipliers() == [1.0, 1.0]
    criterion(prediction, target)
    assert criterion.multipliers()[1] != 1.0
