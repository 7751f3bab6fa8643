"""TensorRT: runs ``model.plan`` with dynamic shapes through the name-based tensor API (TensorRT 10 and 11).

Per call: ``set_input_shape`` for each input, ``get_tensor_shape`` for each output, ``set_tensor_address`` for
every IO tensor, then ``execute_async_v3`` on a CUDA stream. Device memory comes from torch CUDA tensors
when torch has CUDA, otherwise from cuda-python (``cudaMalloc`` / ``cudaMemcpy``). Plans are tied to the
TensorRT version and GPU that built them; only open plans you built yourself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.errors import BackendUnavailable, ExportError, UserInputError
from gandeploy.models.io import BATCH, HEIGHT, WIDTH, TensorSpec
from gandeploy.runtimes.base import Runtime, artifact_path, check_inputs, read_manifest_io
from gandeploy.utils.logging import get_logger

log = get_logger("runtimes.tensorrt")


def unavailable_reason() -> str | None:
    """Why TensorRT cannot run here (no package, no GPU), or None when it can."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        missing = exc.name or "tensorrt"
        return f"TensorRT is not installed (no Python module '{missing}'; pip extra 'tensorrt', NVIDIA GPU needed)"
    except Exception as exc:  # broken installs raise OSError/RuntimeError when loading libnvinfer
        return f"TensorRT failed to load ({str(exc).splitlines()[0][:200]})"
    if gpu_name() is None:
        return "no NVIDIA GPU is visible on this machine"
    return None


def gpu_name(index: int = 0) -> str | None:
    """The CUDA device's name via torch or cuda-python, or None without a usable GPU."""
    try:
        import torch

        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name(index))
    except Exception:  # noqa: BLE001 - any failure here means "no torch CUDA"
        pass
    cudart = _cudart()
    if cudart is None:
        return None
    try:
        err, count = cudart.cudaGetDeviceCount()
        if int(err) != 0 or count <= index:
            return None
        err, props = cudart.cudaGetDeviceProperties(index)
        if int(err) != 0:
            return None
        name = props.name
        return (name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)).strip()
    except Exception:  # noqa: BLE001 - a driver-less machine raises from inside the bindings
        return None


def _cudart() -> Any | None:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[no-redef]  # older cuda-python
        except ImportError:
            return None
    return cudart


class _TorchMemory:
    """Device buffers as torch CUDA tensors; copies and execution share torch's current stream."""

    def __init__(self, device_index: int) -> None:
        import torch

        self.torch = torch
        self.device = torch.device("cuda", device_index)
        self.stream = torch.cuda.current_stream(self.device)

    def to_device(self, arr: np.ndarray) -> tuple[Any, int]:
        t = self.torch.from_numpy(arr).to(self.device, non_blocking=False)
        return t, int(t.data_ptr())

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[Any, int]:
        t = self.torch.empty(shape, dtype=_TORCH_DTYPES[np.dtype(dtype).name](self.torch), device=self.device)
        return t, int(t.data_ptr())

    def stream_handle(self) -> int:
        return int(self.stream.cuda_stream)

    def to_host(self, buf: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        self.stream.synchronize()
        return buf.cpu().numpy().astype(np.float32, copy=False)

    def free(self, bufs: list[Any]) -> None:
        bufs.clear()

    def close(self) -> None:
        pass


_TORCH_DTYPES = {"float32": lambda t: t.float32, "float16": lambda t: t.float16, "int64": lambda t: t.int64,
                 "int32": lambda t: t.int32, "bool": lambda t: t.bool}


class _CudaPythonMemory:
    """Device buffers through cuda-python's runtime API (no torch CUDA needed)."""

    def __init__(self, device_index: int) -> None:
        cudart = _cudart()
        if cudart is None:
            raise BackendUnavailable("TensorRT execution needs torch with CUDA or cuda-python; neither is installed.")
        self.cudart = cudart
        _check(cudart.cudaSetDevice(device_index), "cudaSetDevice")
        self.stream = _check(cudart.cudaStreamCreate(), "cudaStreamCreate")

    def to_device(self, arr: np.ndarray) -> tuple[Any, int]:
        ptr = _check(self.cudart.cudaMalloc(max(arr.nbytes, 1)), "cudaMalloc")
        _check(self.cudart.cudaMemcpyAsync(ptr, arr.ctypes.data, arr.nbytes,
                                           self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream),
               "cudaMemcpyAsync")
        return (ptr, arr), int(ptr)  # keep the host array alive until the copy completes

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[Any, int]:
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        ptr = _check(self.cudart.cudaMalloc(max(nbytes, 1)), "cudaMalloc")
        return (ptr, None), int(ptr)

    def stream_handle(self) -> int:
        return int(self.stream)

    def to_host(self, buf: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        host = np.empty(shape, dtype=dtype)
        _check(self.cudart.cudaMemcpyAsync(host.ctypes.data, buf[0], host.nbytes,
                                           self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream),
               "cudaMemcpyAsync")
        _check(self.cudart.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        return host.astype(np.float32, copy=False)

    def free(self, bufs: list[Any]) -> None:
        self.cudart.cudaStreamSynchronize(self.stream)
        for ptr, _host in bufs:
            self.cudart.cudaFree(ptr)
        bufs.clear()

    def close(self) -> None:
        self.cudart.cudaStreamDestroy(self.stream)


def _check(result: Any, what: str) -> Any:
    """cuda-python calls return (err, *values); raise on a non-zero error code."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise ExportError(f"{what} failed with CUDA error {int(err)} ({err}).")
    return values[0] if len(values) == 1 else (values or None)


class TensorRTRuntime(Runtime):
    """One deserialized engine and one execution context; shapes set per call within the profile."""

    def __init__(self, key: str, path: Path, *, device_index: int = 0,
                 io: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]] | None = None) -> None:
        import tensorrt as trt

        super().__init__(key, device=f"cuda:{device_index}")
        self.trt = trt
        self.path = path
        self.gpu = gpu_name(device_index)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ExportError(f"TensorRT {trt.__version__} cannot load '{path}': plans only load on the TensorRT "
                              "version and GPU that built them; re-run 'gandeploy export --fp16' here.")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self._in = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._out = [n for n in names if n not in self._in]
        self._dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.profile = {n: tuple(tuple(int(d) for d in s) for s in self.engine.get_tensor_profile_shape(n, 0))
                        for n in self._in}  # name -> (min, opt, max)
        self.inputs, self.outputs = io if io is not None else self._io_from_engine()
        import importlib.util

        use_torch = False
        if importlib.util.find_spec("torch") is not None:
            import torch

            use_torch = torch.cuda.is_available()
        self._mem: _TorchMemory | _CudaPythonMemory = (_TorchMemory(device_index) if use_torch
                                                       else _CudaPythonMemory(device_index))

    def _io_from_engine(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        def spec(name: str) -> TensorSpec:
            dims = list(self.engine.get_tensor_shape(name))
            letters = [BATCH, None, HEIGHT, WIDTH] if len(dims) == 4 else [BATCH] + [None] * (len(dims) - 1)
            shape = tuple(letters[i] if d < 0 and letters[i] else int(d) for i, d in enumerate(dims))
            dtype = "int64" if self._dtypes[name] == np.int64 else "float32"
            return TensorSpec(name, dtype, shape)

        return tuple(spec(n) for n in self._in), tuple(spec(n) for n in self._out)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = check_inputs(self.inputs, inputs)
        keep: list[Any] = []
        try:
            for name in self._in:
                arr = np.ascontiguousarray(feeds[name], dtype=self._dtypes[name])
                self._check_profile(name, arr.shape)
                if not self.context.set_input_shape(name, arr.shape):
                    raise UserInputError(f"TensorRT rejected shape {list(arr.shape)} for input '{name}'.")
                buf, ptr = self._mem.to_device(arr)
                keep.append(buf)
                self.context.set_tensor_address(name, ptr)
            outs: dict[str, tuple[Any, tuple[int, ...]]] = {}
            for name in self._out:
                shape = tuple(int(d) for d in self.context.get_tensor_shape(name))
                buf, ptr = self._mem.empty(shape, self._dtypes[name])
                keep.append(buf)
                outs[name] = (buf, shape)
                self.context.set_tensor_address(name, ptr)
            if not self.context.execute_async_v3(self._mem.stream_handle()):
                raise ExportError(f"TensorRT execution of '{self.path}' failed (see the TensorRT log above).")
            return {name: self._mem.to_host(buf, shape, self._dtypes[name]) for name, (buf, shape) in outs.items()}
        finally:
            self._mem.free(keep)

    def _check_profile(self, name: str, shape: tuple[int, ...]) -> None:
        lo, _opt, hi = self.profile[name]
        if len(shape) != len(lo) or any(s < a or s > b for s, a, b in zip(shape, lo, hi, strict=True)):
            raise UserInputError(f"input '{name}' shape {list(shape)} is outside the engine's profile "
                                 f"(min {list(lo)}, max {list(hi)}); re-export with a larger --max-batch/--max-size.")

    def close(self) -> None:
        if getattr(self, "_mem", None) is not None:
            self._mem.close()
            self._mem = None  # type: ignore[assignment]
        self.context = None
        self.engine = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "file": str(self.path), "tensorrt": self.trt.__version__, "gpu": self.gpu,
                "profile": {n: [list(s) for s in p] for n, p in self.profile.items()}}


def open_runtime(key: str, export_dir: Path, *, device_index: int = 0, **_: Any) -> TensorRTRuntime:
    """TensorRT over ``export_dir/model.plan``; ``BackendUnavailable`` without TensorRT or a GPU."""
    reason = unavailable_reason()
    if reason:
        raise BackendUnavailable(f"TensorRT backend unavailable: {reason}.")
    path = artifact_path(export_dir, key)
    runtime = TensorRTRuntime(key, path, device_index=device_index, io=read_manifest_io(export_dir))
    log.debug("opened %s (TensorRT %s on %s)", path, runtime.trt.__version__, runtime.gpu)
    return runtime
