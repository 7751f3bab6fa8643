"""Suite-wide set-up: few threads (CI has 2 cores), GPU/TensorRT markers that skip with a reason."""

from __future__ import annotations

import importlib.util
import os

# One intra-op thread for torch here and in every subprocess the tests start (CLI runs, DDP workers). The
# suite shares 2 cores with tritonserver and those subprocesses; OpenMP's spin-waiting under that
# oversubscription made a tiny MLP's training step ~30x slower with 2 threads than with 1 (measured).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def _cuda_reason() -> str | None:
    return None if torch.cuda.is_available() else "no CUDA GPU visible on this machine"


def _tensorrt_reason() -> str | None:
    """TensorRT importable and a GPU the CUDA driver reports (not torch.cuda: the Makefile's torch is CPU-only)."""
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed (pip extra 'tensorrt'; needs an NVIDIA GPU)"
    from gandeploy.runtimes.tensorrt_rt import unavailable_reason

    return unavailable_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "stress" not in (config.getoption("markexpr") or ""):  # minutes-long repeats: only when asked for
        stress = [item for item in items if "stress" in item.keywords]
        if stress:
            config.hook.pytest_deselected(items=stress)
            items[:] = [item for item in items if "stress" not in item.keywords]
    reasons = {"gpu": _cuda_reason(), "tensorrt": _tensorrt_reason()}
    for item in items:
        for marker, reason in reasons.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))
