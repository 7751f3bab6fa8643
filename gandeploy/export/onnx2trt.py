"""Step ONNX FP16 / QDQ INT8 → TensorRT plan, built with NVIDIA Polygraphy's loaders (TensorRT 10.x and 11.x).

- ``NetworkFromOnnxPath(path, strongly_typed=True)``: precision comes from the FP16 ONNX itself (InstanceNorm
  and IO kept FP32 by ``onnx2fp16``, layers whose activations pass FP16's range kept FP32 by
  ``fp16_safety``); a strongly typed network follows those types exactly, so the plan keeps them in FP32 too.
  No ``BuilderFlag.FP16`` (removed in TensorRT 11.0).
- The profile covers the *inputs* only (min/opt/max, H and W on the generator's declared size rule); TensorRT
  derives the outputs — ``scale`` x the input for super-resolution — and its activation memory from them, so
  ``check_context`` fails a profile whose largest output does not fit. Pixel-unshuffle reaches TensorRT as
  ``SpaceToDepth`` (``onnx_rewrite``), a 4-D op of its ONNX parser; not yet run on a GPU.
- ``CreateConfig(profiles=[Profile().add(name, min, opt, max)], memory_pool_limits={WORKSPACE: bytes},
  load_timing_cache=shared)``: one profile covering every dynamic input.
- ``EngineFromNetwork(..., save_timing_cache=shared)``: after the build Polygraphy *merges* the new timings
  into the file (``ITimingCache.combine(ignore_mismatch=True)``), so caches of several GPUs accumulate.
- ``SaveEngine`` writes ``model.plan`` (to a temporary name, then renamed into place).

The INT8 engine (``model.int8.plan``) is built by the same chain from the accepted ``model.int8.onnx``: TensorRT
*explicit quantization*. Per NVIDIA's "Explicit Quantization" page
(https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/quantized-types-explicit-quantization.html):
a network with Q/DQ layers is built with explicit-quantization logic, "use explicit quantization with Strong
Typing. Precision-control build flags are not required and should not be specified" — so no INT8 builder flag
and no calibrator: the Q/DQ nodes say where INT8 runs, the layers the ONNX keeps float stay float. TensorRT's
scheme is symmetric ("Working with Quantized Types": signed INT8, zero point 0; INT8, INT4, FP8 and FP4 are its
quantized types): ``qdq_problems`` reads the ONNX first and names the Q/DQ tensors TensorRT would refuse
(unsigned or int32 types, nonzero zero points), so an export says why instead of failing in the parser.

Before the build every cache file is checked by deserialising it: a corrupt one is moved aside to
``<file>.corrupt`` with a warning and the build starts from an empty cache; the export dir's own copy is merged
into the shared one. After the build the engine must give an execution context for its largest profile shape
(TensorRT returns None when that activation memory does not fit the GPU): otherwise an ``ExportError`` names
``--max-batch`` / ``--max-size``. ``engine.device_memory_size`` goes into the manifest.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gandeploy.errors import BackendUnavailable, ExportError
from gandeploy.runtimes.tensorrt_rt import device_memory_bytes, gpu_name, unavailable_reason
from gandeploy.utils.io import atomic_write_bytes
from gandeploy.utils.logging import get_logger, quiet_polygraphy

log = get_logger("export.tensorrt")

DEFAULT_WORKSPACE = 4 << 30  # 4 GiB

Shape = tuple[int, ...]
ShapeProfile = Mapping[str, tuple[Shape, Shape, Shape]]  # input name -> (min, opt, max)


@dataclass(frozen=True)
class TrtBuild:
    """What ``build_engine`` wrote and where it ran."""

    plan: Path
    version: str
    gpu: str
    seconds: float
    timing_cache: Path
    timing_cache_reused: bool
    profile: dict[str, tuple[Shape, Shape, Shape]] = field(default_factory=dict)
    workspace_bytes: int = DEFAULT_WORKSPACE
    device_memory_bytes: int = 0


def polygraphy_profile(profile: ShapeProfile) -> Any:
    """One Polygraphy ``Profile`` holding min/opt/max for every input (pure Python, no TensorRT needed)."""
    from polygraphy.backend.trt import Profile

    out = Profile()
    for name, (lo, opt, hi) in profile.items():
        if not (len(lo) == len(opt) == len(hi)) or any(not a <= b <= c for a, b, c in zip(lo, opt, hi, strict=True)):
            raise ExportError(f"optimization profile for '{name}' needs min <= opt <= max per axis, got "
                              f"{list(lo)} / {list(opt)} / {list(hi)}.")
        out.add(name, min=tuple(lo), opt=tuple(opt), max=tuple(hi))
    return out


def engine_loader(onnx_path: Path, profile: ShapeProfile, *, timing_cache: Path, load_cache: bool,
                  workspace_bytes: int, pool_key: Any) -> Any:
    """The Polygraphy loader chain (lazy: nothing runs until it is called). ``pool_key`` is
    ``trt.MemoryPoolType.WORKSPACE``."""
    from polygraphy.backend.trt import CreateConfig, EngineFromNetwork, NetworkFromOnnxPath

    quiet_polygraphy()
    network = NetworkFromOnnxPath(str(onnx_path), strongly_typed=True)
    config = CreateConfig(profiles=[polygraphy_profile(profile)], memory_pool_limits={pool_key: int(workspace_bytes)},
                          load_timing_cache=str(timing_cache) if load_cache else None)
    return EngineFromNetwork(network, config=config, save_timing_cache=str(timing_cache))


def qdq_problems(onnx_path: Path) -> list[str]:
    """Where a QDQ ONNX breaks TensorRT's explicit-quantization rules (module docstring): one line per kind of
    problem, with up to three tensor names each; [] when TensorRT takes every Q/DQ node. Zero points come from
    initializers (what ONNX Runtime's quantizer writes); a Q/DQ node without one is not judged here."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path), load_external_data=False)
    inits = {t.name: t for t in model.graph.initializer}
    kinds: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") or len(node.input) < 3:
            continue
        zero = inits.get(node.input[2])
        if zero is None:
            continue
        values = numpy_helper.to_array(zero)
        tensor = node.output[0] if node.op_type == "QuantizeLinear" else node.input[0]
        if values.dtype != np.int8:
            kinds.setdefault(f"{values.dtype} quantized tensors (TensorRT quantizes to signed INT8)", []).append(tensor)
        if np.any(values != 0):
            kinds.setdefault("nonzero zero points (TensorRT quantization is symmetric: zero point 0)",
                             []).append(tensor)
    return [f"{len(set(names))} {kind}, e.g. {', '.join(sorted(set(names))[:3])}" for kind, names in kinds.items()]


def vet_timing_cache(path: Path, loads: Callable[[bytes], bool]) -> bool:
    """True when ``path`` holds a cache ``loads`` accepts; a corrupt file is moved to ``<path>.corrupt``."""
    if not path.is_file():
        return False
    try:
        ok = bool(loads(path.read_bytes()))
    except Exception as exc:  # noqa: BLE001 - TensorRT raises RuntimeError/TypeError on garbage
        log.debug("timing cache %s: %s", path, exc)
        ok = False
    if not ok:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        log.warning("timing cache %s is corrupt or unreadable; moved it to %s and starting a new one", path, aside)
    return ok


def _trt_cache_tools(trt: Any) -> tuple[Callable[[bytes], bool], Callable[[Path, Path], None]]:
    """(loads, merge) over a throwaway builder config: deserialise a cache; merge source into target."""
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    config = builder.create_builder_config()

    def loads(data: bytes) -> bool:
        return bool(data) and config.create_timing_cache(data) is not None

    def merge(target: Path, source: Path) -> None:
        cache = config.create_timing_cache(target.read_bytes())
        if not cache.combine(config.create_timing_cache(source.read_bytes()), True):  # ignore_mismatch
            log.warning("could not merge timing cache %s into %s", source, target)
            return
        atomic_write_bytes(target, bytes(memoryview(cache.serialize())))

    return loads, merge


def build_engine(onnx_path: Path, plan_path: Path, profile: ShapeProfile, *, timing_cache: Path,
                 extra_caches: tuple[Path, ...] = (), workspace_bytes: int = DEFAULT_WORKSPACE) -> TrtBuild:
    """Build ``plan_path`` from ``onnx_path`` with one optimization profile (input name → min/opt/max)."""
    reason = unavailable_reason()
    if reason:
        raise BackendUnavailable(reason)
    import tensorrt as trt
    from polygraphy.backend.trt import SaveEngine
    from polygraphy.exception import PolygraphyException

    start = time.perf_counter()
    loads, merge = _trt_cache_tools(trt)
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    reused = vet_timing_cache(timing_cache, loads)
    for extra in extra_caches:  # the export dir's copy (maybe from another GPU) joins the shared cache
        if vet_timing_cache(extra, loads) and extra.resolve() != timing_cache.resolve():
            if reused:
                merge(timing_cache, extra)
            else:
                shutil.copyfile(extra, timing_cache)
                reused = True
    if reused:
        log.info("reusing TensorRT timing cache %s", timing_cache)
    log.info("building TensorRT %s engine for %s (profile %s)", trt.__version__, onnx_path.name,
             {n: [list(s) for s in p] for n, p in profile.items()})
    loader = engine_loader(onnx_path, profile, timing_cache=timing_cache, load_cache=reused,
                           workspace_bytes=workspace_bytes, pool_key=trt.MemoryPoolType.WORKSPACE)
    try:
        engine = loader()
    except PolygraphyException as exc:
        raise ExportError(f"TensorRT {trt.__version__} could not build an engine from {onnx_path.name}: "
                          f"{str(exc).strip()[:500]}") from None
    check_context(engine, profile)
    device_bytes = device_memory_bytes(engine)
    tmp = plan_path.with_name(plan_path.name + ".tmp")
    SaveEngine(engine, str(tmp))()
    os.replace(tmp, plan_path)
    for extra in extra_caches:
        if timing_cache.is_file():
            atomic_write_bytes(extra, timing_cache.read_bytes())
    seconds = time.perf_counter() - start
    log.info("built %s in %.1f s (activation memory %.1f MiB)", plan_path.name, seconds, device_bytes / 2**20)
    return TrtBuild(plan_path, str(trt.__version__), gpu_name() or "unknown GPU", seconds, timing_cache, reused,
                    {n: tuple(p) for n, p in profile.items()}, int(workspace_bytes), device_bytes)  # type: ignore[misc]


def check_context(engine: Any, profile: ShapeProfile) -> None:
    """An execution context must exist: TensorRT gives None when the largest profile shape's activation memory
    does not fit on this GPU."""
    context = engine.create_execution_context()
    if context is None:
        largest = {n: list(p[2]) for n, p in profile.items()}
        raise ExportError(f"TensorRT built the engine but cannot create an execution context for its largest "
                          f"profile shape {largest} (activation memory {device_memory_bytes(engine) / 2**30:.1f} "
                          "GiB does not fit on this GPU): lower --max-batch or --max-size and export again.")
    del context
