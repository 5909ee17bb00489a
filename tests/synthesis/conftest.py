"""A small bundled-photo target for the synthesis tests (fast: 32x32 or 48x48)."""

from __future__ import annotations

import pytest
import torch

from losslab.synthesis import load_image


@pytest.fixture(scope="session")
def small_target() -> torch.Tensor:
    """astronaut, centre crop resized to 32x32: (1, 3, 32, 32) in [0, 1]."""
    return load_image("astronaut", 32)
