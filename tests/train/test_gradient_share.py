"""Gradient shares against hand-derived gradient norms of L1 and MSE."""

from __future__ import annotations

import math

import pytest
import torch

import losslab
from losslab.train import gradient_shares


def test_norms_match_hand_derivation() -> None:
    prediction = torch.rand(2, 3, 8, 8, requires_grad=True)
    target = torch.rand(2, 3, 8, 8)
    criterion = losslab.loss("l1 + 0.5*mse")
    shares = gradient_shares(criterion, prediction, target)
    n = prediction.numel()
    # d mean|p - t| / dp = sign(p - t) / n  ->  norm sqrt(n) / n (no ties in random data)
    l1_norm = 1.0 / math.sqrt(n)
    # d 0.5 * mean (p - t)^2 / dp = (p - t) / n  ->  norm ||p - t|| / n
    mse_norm = float((prediction - target).detach().norm()) / n
    assert shares["l1"][0] == pytest.approx(l1_norm, rel=1e-5)
    assert shares["mse"][0] == pytest.approx(mse_norm, rel=1e-5)
    assert shares["l1"][1] == pytest.approx(l1_norm / (l1_norm + mse_norm), rel=1e-5)
    assert shares["l1"][1] + shares["mse"][1] == pytest.approx(1.0)


def test_luma_view_norm_is_weight_vector_norm() -> None:
    prediction = torch.rand(1, 3, 4, 4, requires_grad=True)
    target = torch.rand(1, 3, 4, 4)
    shares = gradient_shares(losslab.loss("l1(luma) + mse"), prediction, target)
    weights = torch.tensor([0.299, 0.587, 0.114])
    pixels = 16  # luma L1 averages over N*1*H*W values; each RGB gets sign * w_c / pixels
    assert shares["l1(luma)"][0] == pytest.approx(float(weights.norm()) * math.sqrt(pixels) / pixels, rel=1e-5)


def test_scheduled_term_before_start_contributes_nothing() -> None:
    prediction = torch.rand(1, 3, 4, 4, requires_grad=True)
    criterion = losslab.loss("l1 + 0.01*mse@start(100)")
    criterion.set_step(10)
    shares = gradient_shares(criterion, prediction, torch.rand(1, 3, 4, 4))
    assert shares["mse"] == (0.0, 0.0) and shares["l1"][1] == 1.0
    criterion.set_step(100)
    assert gradient_shares(criterion, prediction, torch.rand(1, 3, 4, 4))["mse"][0] > 0


def test_needs_a_graph() -> None:
    with pytest.raises(ValueError, match="requires grad"):
        gradient_shares(losslab.loss("l1 + mse"), torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4))


def test_share_target_in_training_sets_and_logs_the_weight(tmp_path) -> None:
    """``100*mse@share(0.2)`` on a real run: the logged share settles at 0.2, the weight moves
    from 100, it is logged as weight/mse, and the rule state is in the checkpoint."""
    import logging
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from train_helpers import column, read_metrics, tiny_config

    from losslab.train import train

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    runs = []
    for name in ("a", "b"):
        config = tiny_config(tmp_path / name, loss="l1 + 100*mse@share(0.2)", steps=30,
                             val_every=30, grad_share_every=1, log_every=1)
        runs.append(read_metrics(train(config).run_dir))
    rows = runs[0]
    shares, weights = column(rows, "grad_share/mse"), column(rows, "weight/mse")
    assert weights[0] != 100.0 and weights[29] < 10.0
    late = [shares[step] for step in range(10, 30)]
    # Measured: mean 0.198; single batches of 4 crops spread 0.145-0.248 around it (the weight
    # follows smoothed norms, each batch's own norms differ).
    assert abs(sum(late) / len(late) - 0.2) <= 0.05, late
    assert all(abs(s - 0.2) <= 0.1 for s in late), late
    assert column(runs[1], "weight/mse") == weights  # deterministic given the seed
    checkpoint = torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt", weights_only=True)
    assert float(checkpoint["state_dict"]["loss.share_multipliers"][1]) == pytest.approx(
        weights[29] / 100.0, rel=0.5)
