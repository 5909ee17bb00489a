"""Fixtures of the training tests (helpers live in train_helpers.py)."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def quiet_lightning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Less console noise from Lightning in test output."""
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
