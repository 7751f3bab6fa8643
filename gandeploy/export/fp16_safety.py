"""FP16 that never returns a black picture: measure the FP16 graph on real inputs and keep unsafe layers in FP32.

Real-ESRGAN users' FP16 exports return black or NaN pictures when an activation passes FP16's largest value
(65504): the inf becomes NaN in the next normalisation or subtraction and the picture goes black. A type-based
block list (``onnx2fp16.FP16_RISKY_OPS``) cannot know which convolution of a given network grows that large,
so ``safe_fp16`` measures it, on calibration inputs (real pictures for a picture input: ``calibration.py``):

1. **Overflow scan** — run the FP32 graph with every float intermediate exposed (in chunks: ``SCAN_CHUNK``
   tensors first, then as many as fit ``SCAN_BYTES`` at the size measured, bounding memory and passes) and find the tensors with non-finite values or ``|x| > FP16_MAX / HEADROOM``. Their
   producers *and* consumers stay in FP32 (a consumer in FP16 would cast the large value to inf on entry).
2. **Convert** with those nodes in onnxconverter-common's ``node_block_list`` (on top of the op-type list).
3. **Error check** — run FP16 and FP32 ONNX Runtime on every calibration input and compare with the one FP16
   tolerance (``tolerances.py``: max abs 2e-2 in tanh-space units, uint8 within 2 levels of the declared
   range). A breach starts a **bisection** over the compute nodes in graph order: the shortest prefix that,
   kept in FP32 too, meets the tolerance (log2(nodes) conversions).
4. If only an all-FP32 graph meets it, FP16 is abandoned: no ``model.fp16.onnx`` is written and the manifest
   says why (``fallback``).

Why the scan and not only the error check: ONNX Runtime on x86 CPUs has few FP16 kernels and runs the rest in
FP32 between inserted casts, so an FP16 graph that overflows on a GPU can look perfect there (measured: a net
with activations of 2.5e5 gave max abs 2e-4 on ORT CPU, inf under real FP16 arithmetic). The scan reads FP32
activations and does not depend on the runtime; the tests evaluate FP16 graphs with ONNX's reference evaluator
(numpy float16 arithmetic) to show the difference.

The manifest's ``fp16`` entry records the nodes kept in FP32 (by cause), the largest FP32 activation seen and
the measured FP16 error on the calibration inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from gandeploy.diffs import Diff, compare_float
from gandeploy.export.onnx2fp16 import Fp16Export, convert_fp16
from gandeploy.models.io import DEFAULT_RANGE
from gandeploy.tolerances import tolerance_for
from gandeploy.utils.logging import get_logger

log = get_logger("export.fp16")

FP16_MAX = 65504.0  # the largest finite float16
HEADROOM = 2.0  # flag activations above FP16_MAX / HEADROOM: other inputs of the same model reach further
SCAN_CHUNK = 48  # intermediates exposed by the first FP32 run of the overflow scan
SCAN_BYTES = 1 << 30  # later runs expose as many as fit this many bytes (measured on the first run)
NO_COMPUTE = {"Shape", "Constant", "ConstantOfShape", "Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze",
              "Gather", "Concat", "Slice", "Transpose", "Flatten", "Range", "Size"}  # not worth a bisection step

Feeds = Mapping[str, np.ndarray]


@dataclass
class Fp16Safety:
    """What the measurement found and did (the manifest's ``fp16`` entry, with ``to_json``)."""

    inputs: int
    measured_on: str
    max_activation: float = 0.0
    overflow_nodes: list[str] = field(default_factory=list)
    error_nodes: list[str] = field(default_factory=list)
    diff: Diff | None = None
    passed: bool = False
    conversions: int = 0
    fallback: str | None = None
    seconds: float = 0.0

    @property
    def kept_nodes(self) -> list[str]:
        return sorted(set(self.overflow_nodes) | set(self.error_nodes))

    def to_json(self) -> dict[str, Any]:
        return {"calibration": {"inputs": self.inputs, "measured_on": self.measured_on},
                "max_fp32_activation": float(f"{self.max_activation:.6g}"),
                "kept_fp32_nodes": {"overflow": self.overflow_nodes, "error": self.error_nodes},
                "error": self.diff.to_json() if self.diff else None, "passed": self.passed,
                "conversions": self.conversions, "fallback": self.fallback, "seconds": round(self.seconds, 2)}


def _session(model: onnx.ModelProto | Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def float_tensors(model: onnx.ModelProto) -> dict[str, str]:
    """Every float32 tensor a node computes → the node's name (unnamed nodes get ``gd_node_<i>``)."""
    typed = onnx.shape_inference.infer_shapes(model).graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*typed.value_info, *typed.output)}
    out = {}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"gd_node_{i}"
        for name in node.output:
            if types.get(name) == onnx.TensorProto.FLOAT:
                out[name] = node.name
    return out


def scan_overflow(model: onnx.ModelProto, feeds: Sequence[Feeds]) -> tuple[list[str], float]:
    """(nodes that must stay FP32, largest finite |activation|) from FP32 runs with intermediates exposed."""
    produced = float_tensors(model)
    limit = FP16_MAX / HEADROOM
    big: set[str] = set()
    largest = 0.0
    graph_outputs = {o.name for o in model.graph.output}
    names = list(produced)  # graph outputs included: their producers run in FP16 too
    start, chunk_size = 0, SCAN_CHUNK
    while start < len(names):
        chunk = names[start:start + chunk_size]
        start += len(chunk)
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        probe.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                                  for n in chunk if n not in graph_outputs)
        session = _session(probe)
        held = 0
        for feed in feeds:
            values = session.run(chunk, dict(feed))
            held = max(held, sum(v.nbytes for v in values))
            for name, value in zip(chunk, values, strict=True):
                finite = np.isfinite(value)
                peak = float(np.abs(value[finite]).max(initial=0.0))
                largest = max(largest, peak)
                if peak > limit or not finite.all():
                    big.add(name)
        chunk_size = max(SCAN_CHUNK, int(SCAN_BYTES / max(held / len(chunk), 1.0)))
    keep = {produced[t] for t in big}
    keep |= {n.name for n in model.graph.node if big & set(n.input)}
    order = [n.name for n in model.graph.node if n.name in keep]
    if order:
        log.warning("FP16: %d tensor(s) exceed ±%.0f in FP32 (largest |x| %.3g); keeping %d node(s) in FP32: %s",
                    len(big), limit, largest, len(order), ", ".join(order[:8]) + (" ..." if len(order) > 8 else ""))
    return order, largest


def reference_outputs(path: Path, feeds: Sequence[Feeds]) -> list[np.ndarray]:
    """The FP32 graph's first output on every calibration input."""
    session = _session(path)
    return [session.run(None, dict(f))[0] for f in feeds]


def worst_diff(path: Path, feeds: Sequence[Feeds], refs: Sequence[np.ndarray],
               value_range: tuple[float, float]) -> Diff:
    """The FP16 graph's error against ``refs``, worst over the calibration inputs (max of each figure)."""
    session = _session(path)
    diffs = [compare_float(ref, session.run(None, dict(f))[0], value_range) for f, ref in zip(feeds, refs, strict=True)]
    return max(diffs, key=lambda d: (d.max_abs, d.uint8_max or 0))


def safe_fp16(src: Path, dst: Path, feeds: Sequence[Feeds], *, measured_on: str,
              value_range: tuple[float, float] = DEFAULT_RANGE, metadata: Mapping[str, str] | None = None,
              convert: Callable[..., Fp16Export] = convert_fp16) -> tuple[Fp16Export | None, Fp16Safety]:
    """Write an FP16 graph of ``src`` to ``dst`` that meets the FP16 tolerance on ``feeds`` (module docstring),
    or none (``safety.fallback`` says why). Returns (the conversion, what was measured)."""
    start = time.perf_counter()
    tolerance = tolerance_for("fp16")
    model = onnx.load(str(src))
    safety = Fp16Safety(len(feeds), measured_on)
    safety.overflow_nodes, safety.max_activation = scan_overflow(model, feeds)
    refs = reference_outputs(src, feeds)
    compute = [n.name for n in model.graph.node
               if n.op_type not in NO_COMPUTE and n.name not in safety.overflow_nodes]

    def attempt(extra: Sequence[str]) -> tuple[Fp16Export, Diff, bool]:
        safety.conversions += 1
        result = convert(src, dst, metadata=metadata, keep_nodes=[*safety.overflow_nodes, *extra])
        diff = worst_diff(dst, feeds, refs, value_range)
        return result, diff, not tolerance.breaches(diff)

    result, diff, ok = attempt([])
    if not ok:
        log.warning("FP16 breaks its tolerance on %s (%s): bisecting over %d compute nodes for the ones to keep in "
                    "FP32", measured_on, "; ".join(tolerance.breaches(diff)), len(compute))
        lo, hi = 0, len(compute)  # invariant: prefix hi passes (all compute in FP32), prefix lo fails
        while hi - lo > 1:
            mid = (lo + hi) // 2
            _, _, mid_ok = attempt(compute[:mid])
            lo, hi = (lo, mid) if mid_ok else (mid, hi)
        if hi >= len(compute):
            dst.unlink(missing_ok=True)
            safety.fallback = (f"FP16 met its tolerance only with every layer in FP32 (FP16 error "
                               f"{'; '.join(tolerance.breaches(diff))} on {measured_on}); no FP16 model was written")
            safety.diff, safety.seconds = diff, time.perf_counter() - start
            log.warning("FP16 abandoned: %s", safety.fallback)
            return None, safety
        safety.error_nodes = compute[:hi]
        result, diff, ok = attempt(safety.error_nodes)
    safety.diff, safety.passed, safety.seconds = diff, ok, time.perf_counter() - start
    log.info("FP16 on %s: max abs %.2e, uint8 within %s level(s); %d node(s) kept in FP32 by measurement "
             "(%d conversion(s), %.1f s)", measured_on, diff.max_abs, diff.uint8_max, len(safety.kept_nodes),
             safety.conversions, safety.seconds)
    return result, safety
