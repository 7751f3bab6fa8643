"""Fixtures of the parity suite: one tiny export per registry model (lively random weights), shared per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from parity_helpers import TINY, make_export


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """model name → export dir (model.onnx + model.fp16.onnx), built once per session."""
    root = tmp_path_factory.mktemp("parity")
    return {model: make_export(root, model) for model in TINY}
