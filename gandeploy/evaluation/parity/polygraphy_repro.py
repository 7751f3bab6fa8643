"""``polygraphy run`` commands that reproduce each TensorRT comparison of a parity report, outside gandeploy.

For every TensorRT row the parity inputs of that case are saved in Polygraphy's JSON format
(``polygraphy.json.save_json``, what ``--load-inputs`` reads); the command runs ``model.plan`` with Polygraphy's
TensorRT runner, saves its outputs, then runs ``model.onnx`` on ONNX Runtime FP32 and compares with the
row's max-abs tolerance. ONNX Runtime FP32 stands in for the PyTorch reference: the tolerance table bounds the
two at 1e-4 apart, far below the FP16 bound.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from gandeploy.formats import FORMATS
from gandeploy.utils.logging import quiet_polygraphy

if TYPE_CHECKING:
    from gandeploy.evaluation.parity.parity import ParityReport, Row

BACKEND = "tensorrt"


def _case_name(row: Row) -> str:
    size = f"_{row.case.hw[0]}x{row.case.hw[1]}" if row.case.hw else ""
    return f"b{row.case.batch}{size}_s{row.case.seed}"


def command(export_dir: str, inputs: Path, outputs: Path, atol: float) -> str:
    """The two ``polygraphy run`` calls (TensorRT, then ONNX Runtime FP32 compared with it) as one line."""
    plan = Path(export_dir) / FORMATS[BACKEND].file  # type: ignore[operator]
    onnx = Path(export_dir) / FORMATS["onnxruntime"].file  # type: ignore[operator]
    q = shlex.quote
    return (f"polygraphy run {q(str(plan))} --model-type engine --trt --load-inputs {q(str(inputs))} "
            f"--save-outputs {q(str(outputs))} && polygraphy run {q(str(onnx))} --onnxrt --load-inputs "
            f"{q(str(inputs))} --load-outputs {q(str(outputs))} --atol {atol:g} --rtol 0 --check-error-stat max")


def write_reproduction(report: ParityReport, out_dir: Path) -> tuple[str, list[Path]]:
    """Save the inputs of every TensorRT case under ``out_dir``; returns (Markdown section, files written)."""
    rows = [r for r in report.rows if r.backend == BACKEND and r.diff is not None]
    if not rows:
        return "", []
    from polygraphy.json import save_json

    from gandeploy.evaluation.parity.parity import case_inputs
    from gandeploy.manifest import load_manifest

    quiet_polygraphy()

    contract = load_manifest(Path(report.export_dir)).contract
    lines = ["", "Reproduce the TensorRT comparisons with NVIDIA Polygraphy (ONNX Runtime FP32 as the reference):",
             ""]
    files: list[Path] = []
    for row in rows:
        name = _case_name(row)
        inputs, outputs = out_dir / f"polygraphy_inputs_{name}.json", out_dir / f"polygraphy_trt_outputs_{name}.json"
        save_json([case_inputs(contract, row.case)[0]], str(inputs), description="parity inputs")
        files.append(inputs)
        lines += [f"- batch {row.case.batch}" + (f", {row.case.hw[0]}x{row.case.hw[1]}" if row.case.hw else "")
                  + f" (max abs {row.diff.max_abs:.2e}):", "", "  ```bash",
                  "  " + command(report.export_dir, inputs, outputs, float(row.tolerance.max_abs or 0.0)),
                  "  ```", ""]
    return "\n".join(lines), files
