"""Step ONNX FP16 → TensorRT plan: a strongly typed network, one optimization profile, a reused timing cache.

Written against the TensorRT 10.x / 11.x Python API:

- ``builder.create_network(flags)`` with ``1 << NetworkDefinitionCreationFlag.STRONGLY_TYPED`` on 10.x; on 11.x
  networks are always strongly typed (the flag is deprecated and ignored), so no flag is passed. Precision
  comes from the FP16 ONNX itself: no ``BuilderFlag.FP16`` (removed in 11.0).
- ``OnnxParser.parse_from_file``; ``create_optimization_profile`` + ``set_shape(name, min, opt, max)``.
- ``config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)``.
- ``config.create_timing_cache(bytes)`` / ``set_timing_cache(cache, ignore_mismatch=False)``; after the build
  ``get_timing_cache().serialize()`` is written back so the next build (any model) reuses it.
- ``builder.build_serialized_network(network, config)``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gandeploy.errors import BackendUnavailable, ExportError
from gandeploy.runtimes.tensorrt_rt import gpu_name, unavailable_reason
from gandeploy.utils.io import atomic_write_bytes
from gandeploy.utils.logging import get_logger

log = get_logger("export.tensorrt")

DEFAULT_WORKSPACE = 4 << 30  # 4 GiB

Shape = tuple[int, ...]


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


def trt_major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def network_flags(trt: Any) -> int:
    """``STRONGLY_TYPED`` on TensorRT 10.x; 0 on 11.x, where every network is strongly typed."""
    if trt_major(trt.__version__) >= 11:
        return 0
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None:
        raise BackendUnavailable(f"TensorRT {trt.__version__} has no strongly typed networks; use TensorRT >= 10.")
    return 1 << int(flag)


def build_engine(onnx_path: Path, plan_path: Path, profile: Mapping[str, tuple[Shape, Shape, Shape]], *,
                 timing_cache: Path, extra_caches: tuple[Path, ...] = (),
                 workspace_bytes: int = DEFAULT_WORKSPACE) -> TrtBuild:
    """Build ``plan_path`` from ``onnx_path`` with one optimization profile (input name → min/opt/max)."""
    reason = unavailable_reason()
    if reason:
        raise BackendUnavailable(reason)
    import tensorrt as trt

    start = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT {trt.__version__} cannot parse {onnx_path.name}: {errors[:500]}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    reused = False
    cache = None
    for source in (timing_cache, *extra_caches):  # the shared cache first, then the export dir's copy
        if source.is_file():
            cache = config.create_timing_cache(source.read_bytes())
            if config.set_timing_cache(cache, False):  # ignore_mismatch=False: a foreign cache is refused
                reused = True
                log.info("reusing TensorRT timing cache %s", source)
                break
            log.info("timing cache %s is from another TensorRT/GPU; starting a new one", source)
    if not reused:
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)

    opt_profile = builder.create_optimization_profile()
    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    for name in inputs:
        if name not in profile:
            raise ExportError(f"no optimization profile for TensorRT input '{name}'")
        lo, opt, hi = profile[name]
        opt_profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(opt_profile)

    log.info("building TensorRT %s engine for %s (profile %s)", trt.__version__, onnx_path.name,
             {n: [list(s) for s in profile[n]] for n in inputs})
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(f"TensorRT {trt.__version__} failed to build an engine from {onnx_path.name} "
                          "(see the TensorRT log above).")
    atomic_write_bytes(plan_path, bytes(serialized))
    cache_bytes = bytes(config.get_timing_cache().serialize())
    for target in (timing_cache, *extra_caches):
        atomic_write_bytes(target, cache_bytes)
    seconds = time.perf_counter() - start
    log.info("built %s in %.1f s", plan_path.name, seconds)
    return TrtBuild(plan_path, str(trt.__version__), gpu_name() or "unknown GPU", seconds, timing_cache, reused,
                    {n: tuple(profile[n]) for n in inputs}, int(workspace_bytes))  # type: ignore[misc]
