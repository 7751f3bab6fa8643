"""Planted errors: parity must fail loudly (exit code 1, BREACH rows) when an artifact or reference is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper
from parity_helpers import TINY

from gandeploy.cli import main
from gandeploy.evaluation.parity.parity import run_parity


def corrupt_largest_weight(path: Path, factor: float = 2.0) -> str:
    """Scale the largest initializer of an ONNX file in place (a silently damaged weight); returns its name."""
    model = onnx.load(str(path))
    target = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    arr = numpy_helper.to_array(target)
    target.CopyFrom(numpy_helper.from_array((arr * factor).astype(arr.dtype), target.name))
    onnx.save(model, str(path))
    return target.name


@pytest.fixture
def copied(tiny_exports: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the DCGAN export (its manifest still points at the original run dir)."""
    dst = tmp_path / "dcgan-copy"
    shutil.copytree(tiny_exports["dcgan"], dst)
    return dst


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["parity", *args])
    return result.exit_code, result.output


def test_corrupted_fp32_weight_fails(copied: Path, tmp_path: Path) -> None:
    corrupt_largest_weight(copied / "model.onnx")
    code, out = invoke(str(copied), "--backends", "onnxruntime,onnxruntime-fp16", "--report", str(tmp_path / "r"))
    assert code == 1, out
    assert "BREACH" in out and "parity FAILED" in out
    data = json.loads((tmp_path / "r" / "parity.json").read_text())
    assert not data["passed"]
    by_backend = {r["backend"]: r for r in data["rows"]}
    assert not by_backend["onnxruntime"]["passed"] and by_backend["onnxruntime"]["breaches"]
    assert all(r["passed"] for r in data["rows"] if r["backend"] == "onnxruntime-fp16")  # only the damaged file
    assert (tmp_path / "r" / "parity_dcgan.png").stat().st_size > 0  # the figure shows the breach


def test_corrupted_fp16_weight_fails(copied: Path, tmp_path: Path) -> None:
    corrupt_largest_weight(copied / "model.fp16.onnx", factor=1.5)
    code, out = invoke(str(copied), "--backends", "onnxruntime-fp16", "--report", str(tmp_path / "r"))
    assert code == 1 and "onnxruntime-fp16" in out and "BREACH" in out, out


def test_wrong_reference_run_fails(tiny_exports: dict[str, Path], tmp_path: Path) -> None:
    """Same architecture, other weights: the export is not what the run dir holds."""
    from gandeploy.evaluation.bench.suite import make_run

    other = make_run(tmp_path / "other-run", "dcgan", TINY["dcgan"], seed=7)
    report = run_parity(tiny_exports["dcgan"], ["onnxruntime"], batch_sizes=(2,), run_dir=other)
    assert not report.passed and report.failures[0].breaches
    code, out = invoke(str(tiny_exports["dcgan"]), "--backends", "onnxruntime", "--run-dir", str(other),
                       "--report", str(tmp_path / "r"))
    assert code == 1 and "max_abs" in out, out


def test_tampered_export_cannot_be_served(copied: Path, tmp_path: Path) -> None:
    """Without --url parity builds its own repository; a file altered after export fails, it is not skipped."""
    corrupt_largest_weight(copied / "model.onnx")
    code, out = invoke(str(copied), "--backends", "triton", "--report", str(tmp_path / "r"))
    assert code == 1 and "could not be served" in out and "modified after export" in out, out


def test_unavailable_backends_are_listed(tiny_exports: dict[str, Path], tmp_path: Path) -> None:
    report = run_parity(tiny_exports["mlp"], ["onnxruntime", "tensorrt", "triton-ensemble"], batch_sizes=(1,))
    assert report.passed and report.compared == ["onnxruntime"]
    assert set(report.skipped) == {"tensorrt", "triton-ensemble"} or "tensorrt" in report.compared
    assert all(reason for reason in report.skipped.values())


def test_nothing_compared_is_an_error(tiny_exports: dict[str, Path], tmp_path: Path) -> None:
    export = tmp_path / "mlp-fp32-only"
    shutil.copytree(tiny_exports["mlp"], export)
    (export / "model.fp16.onnx").unlink()
    code, out = invoke(str(export), "--backends", "onnxruntime-fp16", "--report", str(tmp_path / "r"))
    assert code == 1 and "compared no backend" in out and "re-export with --fp16" in out, out


def test_user_errors_name_the_flag(tiny_exports: dict[str, Path], tmp_path: Path) -> None:
    code, out = invoke(str(tiny_exports["dcgan"]), "--backends", "onnxruntme")
    assert code != 0 and "did you mean 'onnxruntime'" in out.lower()
    code, out = invoke(str(tiny_exports["dcgan"]), "--backends", "onnxruntime", "--batch-sizes", "99")
    assert code != 0 and "--batch-sizes" in out
    code, out = invoke(str(tmp_path / "missing"))
    assert code != 0 and "gandeploy export" in out and "Traceback" not in out
