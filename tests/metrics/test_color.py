"""Colour decomposition: per channel, luma, chroma, chroma ratio."""

from __future__ import annotations

import pytest
import torch

from losslab.metrics import chroma_ratio, color_errors
from losslab.probe import perturb


def test_red_only_change(photo_batch: torch.Tensor) -> None:
    target = photo_batch * 0.8 + 0.1  # room to add without clipping
    output = target.clone()
    output[:, 0] += 0.05
    errors = color_errors(output, target)
    assert errors["err_red"] == pytest.approx(0.05, abs=1e-6)
    assert errors["err_green"] == 0.0 and errors["err_blue"] == 0.0
    assert errors["err_luma"] == pytest.approx(0.299 * 0.05, abs=1e-6)  # BT.601 Kr


def test_chroma_only_change_keeps_luma(photo_batch: torch.Tensor) -> None:
    rotated = perturb("hue", photo_batch, 0.05)
    errors = color_errors(rotated, photo_batch)
    assert errors["err_luma"] < 1e-5
    assert errors["err_chroma"] > 0.01


def test_chroma_ratio_detects_desaturation(photo_batch: torch.Tensor) -> None:
    grey = photo_batch.mean(dim=1, keepdim=True)
    half = grey + 0.5 * (photo_batch - grey)
    assert chroma_ratio(photo_batch, photo_batch) == pytest.approx(1.0)
    assert chroma_ratio(half, photo_batch) == pytest.approx(0.5, abs=1e-5)
