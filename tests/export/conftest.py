"""Fixtures of the export tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from export_helpers import make_run_dir


@pytest.fixture
def run_factory(tmp_path: Path):
    """``run_factory(model, name=None, **arch)`` → a fresh tiny run dir under tmp_path."""

    def make(model: str, name: str | None = None, **arch: Any) -> Path:
        return make_run_dir(tmp_path / "runs" / (name or f"{model}-tiny"), model, **arch)

    return make
