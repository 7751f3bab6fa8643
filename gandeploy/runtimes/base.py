"""The one runtime interface: ``run(inputs) -> outputs`` over named NumPy arrays, plus device/precision info.

Every runtime (``torch_rt``, ``onnxruntime_rt``, ``tensorrt_rt``, ``triton_rt``) subclasses ``Runtime`` and
exposes a module-level ``open_runtime(key, export_dir, **options)``. Callers never import those modules:
``open_runtime`` below dispatches through ``gandeploy.formats.FORMATS[key].runtime``.

Inputs and outputs follow ``gandeploy.models.io`` (``z`` / ``label`` / ``image`` → ``output``). A missing
library or GPU raises ``BackendUnavailable`` with the reason; a missing artifact file or malformed input
raises ``UserInputError`` naming the file or the input.
"""

from __future__ import annotations

import importlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.errors import BackendUnavailable, ExportError, UserInputError
from gandeploy.formats import get_format
from gandeploy.manifest import unbuilt_reason
from gandeploy.models.io import BATCH, TensorSpec

NP_DTYPES: dict[str, type] = {"float32": np.float32, "float16": np.float16, "int64": np.int64, "int32": np.int32,
                             "uint8": np.uint8}


class Runtime(ABC):
    """Runs one exported generator. Subclasses set ``inputs`` / ``outputs`` and implement ``run``."""

    key: str  # a FORMATS key
    device: str  # "cpu" | "cuda" | "cuda:N" | "server"
    precision: str  # "fp32" | "fp16"
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()

    def __init__(self, key: str, device: str | None = None, precision: str | None = None) -> None:
        fmt = get_format(key)
        self.key = fmt.key
        self.device = device or fmt.device
        self.precision = precision or fmt.precision

    @abstractmethod
    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch: named arrays in (``gandeploy.models.io`` names), named float32 arrays out."""

    def close(self) -> None:
        """Release sessions, engines and device memory (idempotent)."""

    def describe(self) -> dict[str, Any]:
        """What runs where: key, device, precision, IO signature and runtime-specific details."""
        return {
            "key": self.key,
            "runtime": type(self).__name__,
            "device": self.device,
            "precision": self.precision,
            "inputs": [signature(t) for t in self.inputs],
            "outputs": [signature(t) for t in self.outputs],
        }

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, device={self.device!r}, precision={self.precision!r})"


def open_runtime(key: str, export_dir: str | os.PathLike[str], **options: Any) -> Runtime:
    """Open the runtime for format ``key`` on ``export_dir`` (``FORMATS[key].runtime`` → ``<runtime>_rt``)."""
    fmt = get_format(key)
    module_name = f"gandeploy.runtimes.{fmt.runtime}_rt"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise BackendUnavailable(f"runtime '{fmt.runtime}' for backend '{key}' is not part of this "
                                     "installation") from None
        raise BackendUnavailable(f"backend '{key}' needs the Python package '{exc.name}', which is not "
                                 "installed") from None
    return module.open_runtime(fmt.key, Path(export_dir), **options)


def batch_runner(runtime: Runtime, output: str, max_batch: int) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """``run(feeds) -> output`` of ``runtime`` in slices of at most ``max_batch`` rows (an engine's profile, an
    export's max batch), concatenated: how a judge of INT8 models runs any runtime of one."""
    def run(feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        rows = len(next(iter(feeds.values())))
        return np.concatenate([runtime.run({k: v[i:i + max_batch] for k, v in feeds.items()})[output]
                               for i in range(0, rows, max_batch)])

    return run


# --- helpers shared by the runtime files -------------------------------------------------------------------


def signature(spec: TensorSpec) -> dict[str, Any]:
    """A TensorSpec as the manifest writes it (``TensorSpec.to_json``)."""
    return spec.to_json()


def spec_from_signature(data: Mapping[str, Any]) -> TensorSpec:
    return TensorSpec.from_json(data)


def read_manifest_io(export_dir: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] | None:
    """Inputs/outputs recorded in ``export_dir/manifest.json``, or None when there is no manifest."""
    path = Path(export_dir) / "manifest.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return (tuple(spec_from_signature(t) for t in data["inputs"]),
                tuple(spec_from_signature(t) for t in data["outputs"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{path} is damaged ({exc}); re-run 'gandeploy export'.") from None


def _manifest_data(export_dir: Path) -> dict[str, Any]:
    """``export_dir/manifest.json`` as a dict ({} when absent or unreadable: only for messages)."""
    try:
        data = json.loads((export_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def artifact_path(export_dir: Path, key: str, file: str | None = None) -> Path:
    """The file of format ``key`` inside ``export_dir``; a clear error when it is not there."""
    fmt = get_format(key)
    name = file or fmt.file
    if name is None:
        raise UserInputError(f"backend '{key}' has no artifact file inside an export dir.")
    path = Path(export_dir) / name
    if not path.is_file():
        if not Path(export_dir).is_dir():
            raise UserInputError(f"export dir '{export_dir}' does not exist: run 'gandeploy export RUN_DIR' first.")
        unbuilt = unbuilt_reason(_manifest_data(Path(export_dir)), key) if file is None else None
        how = {"fp16": " (re-export with --fp16)", "int8": " (re-export with --int8)"}.get(fmt.precision,
                                                                                        " (re-run 'gandeploy export')")
        raise UserInputError(f"no {name} in '{export_dir}': not built at export: {unbuilt}." if unbuilt
                             else f"no {name} in '{export_dir}'{how}.")
    return path


def check_inputs(specs: tuple[TensorSpec, ...], inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Validate names, ranks, fixed dims and one shared batch size; cast to the contract dtypes."""
    missing = [t.name for t in specs if t.name not in inputs]
    unknown = sorted(set(inputs) - {t.name for t in specs})
    if missing or unknown:
        want = ", ".join(t.name for t in specs)
        raise UserInputError(f"inputs must be named {want}; missing {missing or 'none'}, unknown {unknown or 'none'}.")
    feeds: dict[str, np.ndarray] = {}
    batch: int | None = None
    for spec in specs:
        arr = np.asarray(inputs[spec.name])
        want_dtype = NP_DTYPES[spec.dtype]
        if spec.dtype == "int64" and not np.issubdtype(arr.dtype, np.integer):
            raise UserInputError(f"input '{spec.name}' must hold integers (int64), got {arr.dtype}.")
        arr = np.ascontiguousarray(arr, dtype=want_dtype)
        if arr.ndim != len(spec.shape):
            raise UserInputError(f"input '{spec.name}' must have shape {list(spec.shape)}, got {list(arr.shape)}.")
        for axis, (dim, got) in enumerate(zip(spec.shape, arr.shape, strict=True)):
            if isinstance(dim, int) and dim != got:
                raise UserInputError(f"input '{spec.name}' axis {axis} must be {dim}, got {got} "
                                     f"(shape {list(arr.shape)}).")
        if spec.shape and spec.shape[0] == BATCH:
            if batch is not None and arr.shape[0] != batch:
                raise UserInputError(f"all inputs must share one batch size; '{spec.name}' has {arr.shape[0]}, "
                                     f"expected {batch}.")
            batch = arr.shape[0]
        feeds[spec.name] = arr
    if batch == 0:
        raise UserInputError("batch size must be at least 1.")
    return feeds
