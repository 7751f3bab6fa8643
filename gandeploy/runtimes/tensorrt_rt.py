"""TensorRT: runs ``model.plan`` / ``model.int8.plan`` through NVIDIA Polygraphy's ``TrtRunner`` (TensorRT 10 and 11).

``TrtRunner`` owns the execution context, a CUDA stream and persistent device buffers (its own ctypes CUDA
runtime wrapper: no torch CUDA, no cuda-python). The CUDA device is selected before the engine is deserialised
(an engine lives on the device that was current when it was loaded). A GPU counts as visible when the CUDA
driver (``libcuda``) reports one, whatever torch was built for. Plans are tied to the TensorRT version and GPU
that built them; only open plans you built yourself.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.errors import BackendUnavailable, ExportError, UserInputError
from gandeploy.models.io import BATCH, HEIGHT, WIDTH, TensorSpec
from gandeploy.runtimes.base import Runtime, artifact_path, check_inputs, read_manifest_io
from gandeploy.utils.logging import get_logger, quiet_polygraphy

log = get_logger("runtimes.tensorrt")

DRIVER_LIBS = ("libcuda.so.1", "libcuda.so", "nvcuda.dll")


def unavailable_reason() -> str | None:
    """Why TensorRT cannot run here (no package, no Polygraphy, no GPU), or None when it can."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        missing = exc.name or "tensorrt"
        return f"TensorRT is not installed (no Python module '{missing}'; pip extra 'tensorrt', NVIDIA GPU needed)"
    except Exception as exc:  # broken installs raise OSError/RuntimeError when loading libnvinfer
        return f"TensorRT failed to load ({str(exc).splitlines()[0][:200]})"
    try:
        import polygraphy  # noqa: F401
    except ImportError:
        return "Polygraphy is not installed (pip install polygraphy; it comes with gandeploy)"
    if gpu_name() is None:
        return "no NVIDIA GPU is visible on this machine (the CUDA driver reports none)"
    return None


def gpu_name(index: int = 0) -> str | None:
    """The name of CUDA device ``index`` from the CUDA driver API, or None without a driver or such a GPU."""
    lib = None
    for name in DRIVER_LIBS:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        return None
    try:
        count, device = ctypes.c_int(0), ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value <= index:
            return None
        if lib.cuDeviceGet(ctypes.byref(device), index) != 0:
            return None
        buf = ctypes.create_string_buffer(256)
        if lib.cuDeviceGetName(buf, len(buf), device) != 0:
            return None
        return buf.value.decode(errors="replace").strip() or None
    except (AttributeError, OSError):
        return None


def select_device(index: int) -> None:
    """Make CUDA device ``index`` current for this thread (Polygraphy's CUDA runtime wrapper)."""
    from polygraphy import cuda

    status = cuda.wrapper().handle.cudaSetDevice(ctypes.c_int(int(index)))
    if status != 0:
        raise UserInputError(f"cannot select CUDA device {index} (cudaSetDevice error {status}); pass a "
                             "device_index the driver lists.")


def device_memory_bytes(engine: Any) -> int:
    """Activation memory of the engine's largest profile shape (``device_memory_size[_v2]``)."""
    for attr in ("device_memory_size_v2", "device_memory_size"):
        value = getattr(engine, attr, None)
        if value is not None:
            return int(value)
    return 0


class TensorRTRuntime(Runtime):
    """One deserialised engine behind a Polygraphy ``TrtRunner``; shapes set per call within the profile."""

    def __init__(self, key: str, path: Path, *, device_index: int = 0,
                 io: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] | None = None) -> None:
        import tensorrt as trt
        from polygraphy.backend.common import BytesFromPath
        from polygraphy.backend.trt import EngineFromBytes, TrtRunner
        from polygraphy.exception import PolygraphyException

        quiet_polygraphy()
        super().__init__(key, device=f"cuda:{device_index}")
        self.trt = trt
        self.path = path
        self.device_index = device_index
        self.gpu = gpu_name(device_index)
        self.runner: Any = None
        select_device(device_index)  # before deserialising: the engine binds to the current device
        try:
            self.engine = EngineFromBytes(BytesFromPath(str(path)))()
        except PolygraphyException:
            flags = "--int8 --int8-symmetric" if self.precision == "int8" else "--fp16"
            raise ExportError(f"TensorRT {trt.__version__} cannot load '{path}': plans only load on the TensorRT "
                              f"version and GPU that built them; re-run 'gandeploy export {flags}' here.") from None
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self._in = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._out = [n for n in names if n not in self._in]
        self._dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.profile = {n: tuple(tuple(int(d) for d in s) for s in self.engine.get_tensor_profile_shape(n, 0))
                        for n in self._in}  # name -> (min, opt, max)
        self.device_memory_bytes = device_memory_bytes(self.engine)
        self.inputs, self.outputs = io if io is not None else self._io_from_engine()
        runner = TrtRunner(self.engine)
        try:
            runner.activate()
        except PolygraphyException:
            raise ExportError(f"TensorRT cannot create an execution context for '{path}' on {self.gpu} (activation "
                              f"memory {self.device_memory_bytes / 2**30:.1f} GiB for the largest profile shape "
                              "does not fit): re-export with a lower --max-batch or --max-size.") from None
        self.runner = runner

    def _io_from_engine(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        def spec(name: str) -> TensorSpec:
            dims = list(self.engine.get_tensor_shape(name))
            letters = [BATCH, None, HEIGHT, WIDTH] if len(dims) == 4 else [BATCH] + [None] * (len(dims) - 1)
            shape = tuple(letters[i] if d < 0 and letters[i] else int(d) for i, d in enumerate(dims))
            dtype = "int64" if self._dtypes[name] == np.int64 else "float32"
            return TensorSpec(name, dtype, shape)

        return tuple(spec(n) for n in self._in), tuple(spec(n) for n in self._out)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.runner is None:
            raise ExportError(f"TensorRT runtime for '{self.path}' is closed.")
        feeds = check_inputs(self.inputs, inputs)
        arrays = {}
        for name in self._in:
            arr = np.ascontiguousarray(feeds[name], dtype=self._dtypes[name])
            self._check_profile(name, arr.shape)
            arrays[name] = arr
        select_device(self.device_index)
        outputs = self.runner.infer(arrays)  # host NumPy arrays in buffers the runner reuses: copy them out
        return {name: np.array(outputs[name], dtype=np.float32, copy=True) for name in self._out}

    def _check_profile(self, name: str, shape: tuple[int, ...]) -> None:
        lo, _opt, hi = self.profile[name]
        if len(shape) != len(lo) or any(s < a or s > b for s, a, b in zip(shape, lo, hi, strict=True)):
            raise UserInputError(f"input '{name}' shape {list(shape)} is outside the engine's profile "
                                 f"(min {list(lo)}, max {list(hi)}); re-export with a larger --max-batch/--max-size.")

    def close(self) -> None:
        if getattr(self, "runner", None) is not None:
            self.runner.deactivate()
            self.runner = None
        self.engine = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "file": str(self.path), "tensorrt": self.trt.__version__, "gpu": self.gpu,
                "runner": "polygraphy.TrtRunner", "device_memory_bytes": self.device_memory_bytes,
                "profile": {n: [list(s) for s in p] for n, p in self.profile.items()}}


def open_runtime(key: str, export_dir: Path, *, device_index: int = 0, **_: Any) -> TensorRTRuntime:
    """TensorRT over the format's plan in ``export_dir`` (``FORMATS[key].file``); ``BackendUnavailable`` without
    TensorRT or a GPU."""
    reason = unavailable_reason()
    if reason:
        raise BackendUnavailable(f"TensorRT backend unavailable: {reason}.")
    if gpu_name(device_index) is None:
        raise UserInputError(f"no CUDA device {device_index} is visible (device_index); the first is 0.")
    path = artifact_path(export_dir, key)
    runtime = TensorRTRuntime(key, path, device_index=device_index, io=read_manifest_io(export_dir))
    log.debug("opened %s (TensorRT %s on %s)", path, runtime.trt.__version__, runtime.gpu)
    return runtime
