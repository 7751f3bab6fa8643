"""ONNX Runtime: ``model.onnx`` (FP32) or ``model.fp16.onnx`` (FP16 inside, FP32 IO).

CPU by default (``device="cpu"``). With onnxruntime-gpu installed, ``device="cuda"`` uses the CUDA execution
provider and ``device="tensorrt"`` the TensorRT one (CUDA as fallback); ``device="auto"`` takes the best
provider present. Asking for a provider that is not installed raises ``BackendUnavailable``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.errors import BackendUnavailable, ExportError
from gandeploy.models.io import TensorSpec
from gandeploy.runtimes.base import Runtime, artifact_path, check_inputs, read_manifest_io
from gandeploy.utils.logging import get_logger

log = get_logger("runtimes.onnxruntime")

PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
              "tensor(int32)": "int32"}


class OnnxRuntimeRuntime(Runtime):
    """One ``onnxruntime.InferenceSession`` over an ONNX file."""

    def __init__(self, key: str, path: Path, *, device: str = "cpu", threads: int | None = None,
                 io: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] | None = None) -> None:
        import onnxruntime as ort

        providers = _providers(device, ort.get_available_providers())
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 3  # errors only: FP16 graphs on CPU log harmless cast warnings
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise ExportError(f"ONNX Runtime cannot load '{path}': {str(exc).splitlines()[0][:300]}") from None
        used = self.session.get_providers()
        super().__init__(key, device="cpu" if used[0] == "CPUExecutionProvider" else "cuda")
        self.path = path
        self.providers = used
        self.inputs, self.outputs = io if io is not None else _io_from_session(self.session)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = check_inputs(self.inputs, inputs)
        results = self.session.run(list(self.output_names), feeds)
        return {name: np.asarray(value, dtype=np.float32) for name, value in zip(self.output_names, results,
                                                                                  strict=True)}

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {**super().describe(), "file": str(self.path), "providers": list(self.providers or []),
                "onnxruntime": ort.__version__}


def _providers(device: str, available: list[str]) -> list[str]:
    if device == "auto":
        for choice in ("tensorrt", "cuda", "cpu"):
            if PROVIDERS[choice][0] in available:
                return [p for p in PROVIDERS[choice] if p in available]
    if device not in PROVIDERS:
        raise BackendUnavailable(f"onnxruntime device must be one of auto, {', '.join(PROVIDERS)}; got '{device}'.")
    wanted = PROVIDERS[device]
    if wanted[0] not in available:
        raise BackendUnavailable(f"ONNX Runtime here has no {wanted[0]} (available: {', '.join(available)}); "
                                 "install onnxruntime-gpu on a machine with an NVIDIA GPU.")
    return [p for p in wanted if p in available]


def _io_from_session(session: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    def spec(arg: Any) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) else str(d) for d in arg.shape)
        return TensorSpec(arg.name, ORT_DTYPES.get(arg.type, "float32"), shape)

    return tuple(spec(a) for a in session.get_inputs()), tuple(spec(a) for a in session.get_outputs())


def open_runtime(key: str, export_dir: Path, *, device: str = "cpu", threads: int | None = None,
                 file: str | os.PathLike[str] | None = None, **_: Any) -> OnnxRuntimeRuntime:
    """ONNX Runtime over ``export_dir/<FORMATS[key].file>`` (or an explicit ``file``)."""
    path = Path(file) if file is not None else artifact_path(export_dir, key)
    io = read_manifest_io(export_dir) if file is None else None
    runtime = OnnxRuntimeRuntime(key, path, device=device, threads=threads, io=io)
    log.debug("opened %s on %s", path, runtime.providers)
    return runtime
