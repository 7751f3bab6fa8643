"""The parity report's ``polygraphy run`` reproduction of each TensorRT comparison.

Without TensorRT the command is exercised with ONNX Runtime FP16 standing in for the plan (the same inputs
file, the same comparison against ONNX Runtime FP32, the row's tolerance): it proves the inputs file is what
Polygraphy's ``--load-inputs`` reads and that the comparison passes, or fails when the tolerance is too tight.
"""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gandeploy.evaluation.parity.parity import run_parity
from gandeploy.evaluation.parity.polygraphy_repro import write_reproduction
from gandeploy.evaluation.parity.report import write_parity_report

POLYGRAPHY = str(Path(sys.executable).parent / "polygraphy")


def _on_cpu(cmd: str) -> list[str]:
    """The TensorRT half of the command with ONNX Runtime FP16 instead of model.plan."""
    return shlex.split(cmd.replace("model.plan --model-type engine --trt", "model.fp16.onnx --onnxrt")
                       .replace("polygraphy run", POLYGRAPHY + " run"))


@pytest.mark.parametrize("model", ["cgan", "cyclegan"])
def test_reproduction_commands_run_with_polygraphy(tiny_exports: dict[str, Path], tmp_path: Path,
                                                   model: str) -> None:
    report = run_parity(tiny_exports[model], ["onnxruntime-fp16"], batch_sizes=[2])
    assert report.passed
    # the FP16 rows, labelled as the TensorRT comparisons they stand for here
    report.rows = [dataclasses.replace(r, backend="tensorrt") for r in report.rows]
    markdown, files = write_reproduction(report, tmp_path)
    assert len(files) == len(report.rows) and all(f.is_file() for f in files)
    commands = [line.strip() for line in markdown.splitlines() if line.strip().startswith("polygraphy run")]
    assert len(commands) == len(report.rows)
    assert "--model-type engine --trt" in commands[0] and "--onnxrt" in commands[0]
    for cmd in commands:
        parts = [p.strip() for p in cmd.split("&&")]
        for part in parts:  # TensorRT stand-in saves outputs; ONNX Runtime FP32 compares within the tolerance
            done = subprocess.run(_on_cpu(part), capture_output=True, text=True, timeout=300, cwd=tmp_path)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        too_tight = _on_cpu(parts[1].replace("--atol 0.02", "--atol 1e-09"))
        done = subprocess.run(too_tight, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr


def test_report_without_tensorrt_rows_has_no_reproduction(tiny_exports: dict[str, Path], tmp_path: Path) -> None:
    report = run_parity(tiny_exports["dcgan"], ["onnxruntime"], batch_sizes=[1])
    paths = write_parity_report(report, tmp_path)
    assert not any(p.name.startswith("polygraphy_") for p in paths)
    assert "polygraphy run" not in (tmp_path / "parity.md").read_text()
