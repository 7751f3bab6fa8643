"""The one format table: CLI choices, export, runtime dispatch, parity and benchmarks look formats up here.

Always look up by key (``FORMATS["onnxruntime-fp16"]``), never by position.
"""

from __future__ import annotations

from dataclasses import dataclass

from gandeploy.errors import unknown_choice


@dataclass(frozen=True)
class Format:
    """An artifact format and the runtime that executes it."""

    key: str
    file: str | None  # file name inside an export dir (None: not a file artifact)
    runtime: str  # module under gandeploy.runtimes
    device: str  # "cpu" | "cuda" | "server"
    precision: str  # "fp32" | "fp16" | "int8"
    description: str
    record: str | None = None  # the manifest block saying whether the export built it and why not (built engines)


FORMATS: dict[str, Format] = {
    f.key: f
    for f in (
        Format("torch", None, "torch", "cpu", "fp32", "PyTorch eager, the FP32 reference"),
        Format("onnxruntime", "model.onnx", "onnxruntime", "cpu", "fp32", "ONNX FP32 on ONNX Runtime"),
        Format("onnxruntime-fp16", "model.fp16.onnx", "onnxruntime", "cpu", "fp16",
               "ONNX FP16 (FP32 IO, InstanceNorm in FP32) on ONNX Runtime"),
        Format("onnxruntime-int8", "model.int8.onnx", "onnxruntime", "cpu", "int8",
               "ONNX INT8 QDQ (per-channel weights; norms, softmax and output kept float) on ONNX Runtime, "
               "accepted by its distribution"),
        Format("tensorrt", "model.plan", "tensorrt", "cuda", "fp16", "TensorRT strongly typed FP16 engine",
               record="tensorrt"),
        Format("tensorrt-int8", "model.int8.plan", "tensorrt", "cuda", "int8",
               "TensorRT strongly typed engine from the QDQ INT8 ONNX (explicit quantization)",
               record="tensorrt_int8"),
        Format("triton", None, "triton", "server", "fp32", "served raw generator <name>_generator"),
        Format("triton-ensemble", None, "triton", "server", "fp32", "served user-facing model <name>"),
    )
}


def get_format(key: str) -> Format:
    try:
        return FORMATS[key]
    except KeyError:
        raise unknown_choice("backend", key, FORMATS) from None
