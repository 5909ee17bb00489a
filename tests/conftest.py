"""Shared test fixtures: deterministic seeds, one CPU thread per test process, bundled photos."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def photo_batch() -> torch.Tensor:
    """Four 96x96 crops of scikit-image's bundled colour photos, (4, 3, 96, 96) in [0, 1]."""
    from skimage import data

    crops = []
    for image in (data.astronaut(), data.chelsea(), data.coffee(), data.rocket()):
        tensor = torch.from_numpy(image[:96, :96].copy()).permute(2, 0, 1).float() / 255.0
        crops.append(tensor)
    return torch.stack(crops)
