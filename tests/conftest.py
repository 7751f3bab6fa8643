"""Suite-wide set-up: few threads (CI has 2 cores), GPU/TensorRT markers that skip with a reason."""

from __future__ import annotations

import importlib.util

import pytest
import torch

torch.set_num_threads(2)


def _cuda_reason() -> str | None:
    return None if torch.cuda.is_available() else "no CUDA GPU visible on this machine"


def _tensorrt_reason() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed (pip extra 'tensorrt'; needs an NVIDIA GPU)"
    return _cuda_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reasons = {"gpu": _cuda_reason(), "tensorrt": _tensorrt_reason()}
    for item in items:
        for marker, reason in reasons.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))
