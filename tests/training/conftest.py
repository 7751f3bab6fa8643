"""Fixtures of the training tests (helpers live in training_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    """An empty folder for run dirs."""
    d = tmp_path / "runs"
    d.mkdir()
    return d
