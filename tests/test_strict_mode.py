"""Strict mode (``GANDEPLOY_STRICT=1``, tests/conftest.py): a skip that is not a missing GPU/TensorRT fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")
SUITE = '''
import pytest

def test_runs():
    assert True

def test_missing_tool():
    pytest.skip("perf_analyzer cannot start, missing shared libraries (libb64.so.0d)")

@pytest.mark.gpu
def test_needs_gpu():
    import torch
    assert torch.cuda.is_available()

@pytest.mark.skipif(True, reason="opt-in: set SOMETHING=1")
def test_opt_in():
    pass

def test_no_gpu_by_reason():
    pytest.skip("no CUDA GPU visible on this machine")
'''


def _run(tmp_path: Path, strict: str | None) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if k != "GANDEPLOY_STRICT"}
    if strict is not None:
        env["GANDEPLOY_STRICT"] = strict
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "-c",
                           os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("value", [None, "0"])
def test_skips_pass_outside_strict_mode(tmp_path: Path, value: str | None) -> None:
    out = _run(tmp_path, value)
    assert out.returncode == 0, out.stdout + out.stderr


def test_strict_mode_fails_and_lists_each_non_hardware_skip(tmp_path: Path) -> None:
    out = _run(tmp_path, "1")
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "GANDEPLOY_STRICT=1: skips that are not a missing GPU/TensorRT" in text
    assert "test_suite.py::test_missing_tool: perf_analyzer cannot start" in text
    assert "test_suite.py::test_opt_in: opt-in: set SOMETHING=1" in text
    assert "1 failed" in text and "1 error" in text  # a skip at setup (skipif) fails as an error
    summary = text.split("skips that are not a missing GPU/TensorRT")[1]
    assert "test_needs_gpu" not in summary and "test_no_gpu_by_reason" not in summary


def test_ci_runs_make_test_strict_with_the_tools_installed() -> None:
    root = Path(__file__).resolve().parents[1]
    ci = (root / ".ci" / "run").read_text().splitlines()
    assert "export GANDEPLOY_STRICT=1" in ci and ci.index("export GANDEPLOY_STRICT=1") < ci.index("make test")
    makefile = (root / "Makefile").read_text()
    test_rule = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert {"install", "browser", "perf-libs"} <= set(test_rule.split(":", 1)[1].split())
    assert "libb64-0d" in makefile and '".[dev,bench]"' in makefile  # perf_analyzer's two libraries
