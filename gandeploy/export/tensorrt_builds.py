"""The export's TensorRT steps: ``model.plan`` from the FP16 ONNX and ``model.int8.plan`` from the accepted QDQ
``model.int8.onnx``, both through ``onnx2trt.build_engine`` (one Polygraphy loader chain, strongly typed network,
one optimization profile from ``tensorrt_profile``, the export root's shared timing cache), each recorded as a
manifest block (``tensorrt``, ``tensorrt_int8``: built, or why not).

The INT8 engine is accepted by the *same judge* that accepted ``model.int8.onnx`` (int8_verdict.py: the
distribution test for sampling generators, PSNR vs FP32 for picture inputs, against ``model.onnx`` on the same
seeds or pictures), run on the engine itself. Not a pixel bound against ``model.int8.onnx``: TensorRT fuses the
Q/DQ pairs into its own INT8 kernels (a convolution's bias and activation inside the integer kernel, its own
rounding), so it is not expected to match ONNX Runtime's INT8 pixels, and no bound on that difference is known
to mean anything; the verdict is what made the ONNX model acceptable, so the engine must pass it too. A failed
verdict, a Q/DQ layout TensorRT refuses (``qdq_problems``), a failed build or an engine that cannot run refuses
the INT8 engine with the reason in the manifest; the rest of the export stands, as for a refused ``model.int8.onnx``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gandeploy.errors import BackendUnavailable, ExportError, GanDeployError
from gandeploy.export import validate
from gandeploy.export.onnx2int8 import Int8Result, Judge
from gandeploy.export.onnx2trt import build_engine, qdq_problems
from gandeploy.formats import FORMATS
from gandeploy.models.io import HW, GeneratorIO
from gandeploy.runtimes.base import Runtime, batch_runner
from gandeploy.utils.logging import get_logger

log = get_logger("export.tensorrt")

SHARED_TIMING_CACHE = ".tensorrt/timing.cache"  # under the export root: reused by every TensorRT build there
TIMING_CACHE = "timing.cache"  # the export dir's own copy
INT8_PLAN = str(FORMATS["tensorrt-int8"].file)


def build_tensorrt(onnx_path: Path, out_dir: Path, io_spec: GeneratorIO, max_batch: int,
                   sizes: dict[str, HW] | None, key: str = "tensorrt") -> dict[str, Any]:
    """Build format ``key``'s plan (``FORMATS[key].file``) from ``onnx_path`` with ``tensorrt_profile``; the
    manifest entry records version, GPU, profile, memory and the timing cache."""
    profile = tensorrt_profile(io_spec, max_batch, sizes)
    shared = out_dir.parent / SHARED_TIMING_CACHE
    plan = out_dir / str(FORMATS[key].file)
    built = build_engine(onnx_path, plan, profile, timing_cache=shared,  # type: ignore[arg-type]
                         extra_caches=(out_dir / TIMING_CACHE,))
    return {"built": True, "source": onnx_path.name, "version": built.version, "gpu": built.gpu,
            "seconds": round(built.seconds, 2), "profile": {n: [list(s) for s in p] for n, p in built.profile.items()},
            "workspace_bytes": built.workspace_bytes, "device_memory_bytes": built.device_memory_bytes,
            "strongly_typed": True, "builder": "polygraphy",
            "timing_cache": {"file": TIMING_CACHE, "shared": str(shared), "reused": built.timing_cache_reused}}


def tensorrt_profile(io_spec: GeneratorIO, max_batch: int,
                     sizes: dict[str, HW] | None) -> dict[str, tuple[tuple[int, ...], ...]]:
    """One profile over every input: batch 1..max_batch (opt: max_batch; translation: 1 at the opt size)."""
    profile: dict[str, tuple[tuple[int, ...], ...]] = {}
    for spec in io_spec.inputs:
        if sizes:
            profile[spec.name] = (_shape(spec.shape, 1, sizes["min"]), _shape(spec.shape, 1, sizes["opt"]),
                                  _shape(spec.shape, max_batch, sizes["max"]))
        else:
            profile[spec.name] = (_shape(spec.shape, 1), _shape(spec.shape, max_batch),
                                  _shape(spec.shape, max_batch))
    return profile


def _shape(dims: tuple[int | str, ...], batch: int, hw: HW | None = None) -> tuple[int, ...]:
    """A concrete shape for a contract shape: 'N' → batch, 'H'/'W' → hw."""
    named = {"N": batch, "H": hw[0] if hw else 0, "W": hw[1] if hw else 0}
    return tuple(named[d] if isinstance(d, str) else int(d) for d in dims)


def int8_gate(int8: Int8Result, trt: bool | None, trt_reason: str | None) -> dict[str, Any] | None:
    """The ``tensorrt_int8`` record when the INT8 engine is not to be built, in the order a user fixes things
    (INT8 refused, --no-trt, no TensorRT here, a Q/DQ layout TensorRT refuses); None when it is to be built.
    The Q/DQ check needs no TensorRT, so the record says it even where TensorRT is absent."""
    if int8.path is None:
        return {"built": False, "reason": f"INT8 refused: {int8.reason}"}
    problems = qdq_problems(int8.path)
    qdq = {"tensorrt_compatible": not problems, "problems": problems}
    if trt is False:
        return {"built": False, "reason": "disabled with --no-trt", "qdq": qdq}
    if trt_reason:
        return {"built": False, "reason": trt_reason, "qdq": qdq}
    if problems:
        hint = "" if int8.symmetric else " (re-export with --int8 --int8-symmetric for TensorRT's form)"
        return {"built": False, "qdq": qdq, "reason": f"{int8.path.name} breaks TensorRT's explicit-quantization "
                                                      f"rules: {'; '.join(problems)}{hint}"}
    return None


def build_tensorrt_int8(int8_path: Path, out_dir: Path, io_spec: GeneratorIO, max_batch: int,
                        sizes: dict[str, HW] | None, judge: Judge, refs: Sequence[validate.Reference],
                        value_range: tuple[float, float],
                        open_plan: Callable[[Path], Runtime]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``model.int8.plan`` from ``int8_path`` (module docstring): (the ``tensorrt_int8`` record, the parity entry
    against the PyTorch references, None when nothing ran). ``open_plan(path)`` opens the engine
    (``TensorRTRuntime``); a refused engine is deleted."""
    plan = out_dir / INT8_PLAN
    try:
        record = build_tensorrt(int8_path, out_dir, io_spec, max_batch, sizes, "tensorrt-int8")
    except (ExportError, BackendUnavailable) as exc:
        log.warning("INT8 TensorRT engine not built: %s", exc)
        plan.unlink(missing_ok=True)
        return {"built": False, "reason": f"TensorRT could not build {INT8_PLAN}: {exc}"}, None
    record["qdq"] = {"tensorrt_compatible": True, "problems": []}
    try:
        with open_plan(plan) as runtime:
            entry = validate.compare(runtime, refs, validate.Tolerance(float("inf")), value_range)  # figures only
            verdict = judge(batch_runner(runtime, io_spec.output_names[0], max_batch))
    except GanDeployError as exc:  # an engine that cannot load or run here is refused, not the export
        plan.unlink(missing_ok=True)
        log.warning("INT8 TensorRT engine refused: %s", exc)
        return {**record, "built": False, "reason": f"TensorRT could not run {INT8_PLAN}: {exc}"}, None
    figures = {"passed": verdict.passed, "test": verdict.test, **verdict.figures}
    entry.update(passed=verdict.passed, tolerance={"test": verdict.test, "against": "model.onnx (FP32)"},
                 verdict=figures)
    record["verdict"] = figures
    if not verdict.passed:
        plan.unlink(missing_ok=True)
        log.warning("INT8 TensorRT engine refused: %s", verdict.reason)
        return {**record, "built": False, "reason": f"INT8 refused for TensorRT: {verdict.reason}"}, entry
    return record, entry
