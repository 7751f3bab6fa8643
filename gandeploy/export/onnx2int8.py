"""Step ONNX FP32 → ONNX INT8: ``model.onnx`` to ``model.int8.onnx`` by ONNX Runtime static quantization (QDQ).

``quantize_int8`` runs ``onnxruntime.quantization.quantize_static`` in QDQ form (QuantizeLinear / DequantizeLinear
pairs around float ops, which ONNX Runtime's CPU provider fuses into integer kernels and which TensorRT reads as
explicit quantization): activations uint8 asymmetric, weights int8 per output channel (``symmetric=True``, ``export
--int8-symmetric``: activations int8 with zero point 0 and biases kept float, the form TensorRT takes,
export/onnx2trt.py ``qdq_problems``), MinMax ranges calibrated on the feeds it is given (the model's own inputs:
seeds' latents and labels, or pictures; chosen by the pipeline). Nodes that must stay float are never quantized
(``always_float``): normalisations (InstanceNormalization, LayerNormalization: their statistics divide small
differences), attention ``Softmax`` (probabilities near 0 vanish on an 8-bit grid) and every node that writes a
graph output (the output tanh / sigmoid computes in float; the tensor feeding it is still the QDQ output of the last
quantized layer, i.e. rounded to 256 steps of the pre-activation range — the verdict measures what that costs).

An INT8 model is only written when a judge accepts it (``quantize_accepted``): the judge is handed in by the
caller (the CLI passes the distribution / PSNR verdict of ``gandeploy.evaluation.parity.int8_verdict``), so this step
never decides quality by per-pixel error. On a failed verdict the step measures every weighted node's own error
(``node_errors``: relative error of its output in the INT8 model against FP32, minus the largest error on its
inputs, i.e. the error that node *adds*), keeps the worst ones in float (1, 2, 4, ... more per try) together
with the weighted node producing their input and the nodes reading their output (ONNX Runtime's QDQ quantizes
a tensor when either its producer or a reader is quantized, so only both ends float keep it float) and tries again; after ``max_tries`` it refuses and says why. Refusal writes nothing.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from gandeploy.errors import ExportError
from gandeploy.utils.logging import get_logger

log = get_logger("export.int8")

FLOAT_OP_TYPES = ("InstanceNormalization", "LayerNormalization", "GroupNormalization", "Softmax")
WEIGHTED_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")  # the nodes the search may keep in float
DQ_SUFFIX = "_DequantizeLinear_Output"  # onnxruntime.quantization's name for a tensor's dequantized copy
ELEMENTWISE_OP_TYPES = ("Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Clip", "Identity", "Mul", "Add",
                        "BatchNormalization")  # what the search walks through between two weighted layers
MAX_TRIES = 4
DEFAULT_SEEDS = 64  # sampling families: calibration seeds 0 .. N-1


@dataclass(frozen=True)
class Int8Verdict:
    """A judge's answer on one INT8 model: passed or not, by which test, its figures and (failing) why."""

    passed: bool
    test: str  # "distribution" | "psnr"
    figures: dict[str, Any]
    reason: str | None = None


# What a judge runs: an INT8 ONNX file (on ONNX Runtime), or a function running one batch of generator feeds to
# the output (another runtime of the accepted INT8 model: its TensorRT engine)
Candidate = Path | Callable[[dict[str, np.ndarray]], np.ndarray]
Judge = Callable[[Candidate], Int8Verdict]  # INT8 candidate → verdict against the FP32 model


@dataclass
class Int8Result:
    """What the INT8 step did: written or refused, what it kept in float and every try's verdict."""

    written: bool
    path: Path | None
    kept_float: list[str]  # node names excluded from quantization
    kept_float_ops: list[str]  # their op types, same order
    measured_kept: list[str]  # the subset the error search added
    verdict: Int8Verdict | None
    tries: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    seconds: float = 0.0
    calibrated_on: str = ""
    symmetric: bool = False  # activations int8 with zero point 0, biases float (TensorRT's form)

    def to_json(self) -> dict[str, Any]:
        return {"written": self.written, "file": self.path.name if self.path else None, "format": "QDQ",
                "activations": "int8 symmetric (MinMax)" if self.symmetric else "uint8 asymmetric (MinMax)",
                "weights": "int8 per-channel", "bias": "float" if self.symmetric else "int32",
                "kept_float": [{"node": n, "op": o} for n, o in zip(self.kept_float, self.kept_float_ops)],
                "kept_float_by_search": self.measured_kept,
                "verdict": None if self.verdict is None else {"passed": self.verdict.passed,
                                                                "test": self.verdict.test,
                                                                **self.verdict.figures},
                "calibrated_on": self.calibrated_on, "tries": self.tries, "reason": self.reason,
                "seconds": round(self.seconds, 2)}


def name_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every unnamed node a stable name (``nodes_to_exclude`` addresses nodes by name)."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)
    return model


def always_float(model: onnx.ModelProto) -> list[str]:
    """Nodes kept float whatever the measurement says: normalisations, softmax, and the output nodes."""
    outputs = {o.name for o in model.graph.output}
    return [n.name for n in model.graph.node
            if n.op_type in FLOAT_OP_TYPES or any(o in outputs for o in n.output)]


def quantize_int8(fp32_path: Path, out_path: Path, feeds: Sequence[dict[str, np.ndarray]],
                  keep_float: Iterable[str] = (), *, symmetric: bool = False) -> None:
    """Statically quantize ``fp32_path`` to ``out_path`` (QDQ, per-channel int8 weights, uint8 activations;
    ``symmetric``: int8 activations with zero point 0 and float biases) calibrated on ``feeds``; the nodes named
    in ``keep_float`` stay float."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if not feeds:
        raise ExportError("INT8 calibration needs at least one batch of inputs")
    class Feeds(CalibrationDataReader):  # the calibration batches, one dict of inputs each
        def __init__(self) -> None:
            self._it = iter(list(feeds))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    reader = Feeds()
    with tempfile.TemporaryDirectory(prefix="gd-int8-") as tmp:
        named = Path(tmp) / "named.onnx"
        onnx.save_model(name_nodes(onnx.load(str(fp32_path))), str(named))
        scheme = ((QuantType.QInt8, {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False})
                  if symmetric else (QuantType.QUInt8, {"CalibTensorRangeSymmetric": False}))
        quantize_static(str(named), str(out_path), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=scheme[0], weight_type=QuantType.QInt8,
                        nodes_to_exclude=list(keep_float), extra_options=scheme[1])


def _intermediates(path: Path, names: Sequence[str], feeds: Sequence[dict[str, np.ndarray]]
                   ) -> dict[str, list[np.ndarray]]:
    """Every tensor in ``names`` of the model at ``path``, for each feed."""
    import onnxruntime as ort

    model = onnx.load(str(path))
    present = {o for n in model.graph.node for o in n.output}
    have = {o.name for o in model.graph.output}
    wanted = [n for n in names if n in present]
    for n in wanted:
        if n not in have:
            model.graph.output.append(onnx.ValueInfoProto(name=n))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every named tensor
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    out: dict[str, list[np.ndarray]] = {n: [] for n in wanted}
    for feed in feeds:
        for n, v in zip(wanted, sess.run(wanted, feed)):
            out[n].append(np.asarray(v, dtype=np.float64))
    return out


def _rel_error(ref: list[np.ndarray], got: list[np.ndarray]) -> float:
    num = sum(float(np.sum((a - b) ** 2)) for a, b in zip(ref, got))
    den = sum(float(np.sum(a ** 2)) for a in ref)
    return float(np.sqrt(num / max(den, 1e-30)))


def node_errors(fp32_path: Path, int8_path: Path, feeds: Sequence[dict[str, np.ndarray]],
                skip: Iterable[str] = ()) -> list[tuple[str, str, float]]:
    """(node, op type, error it adds) for every weighted node of the FP32 graph not in ``skip``, worst first.

    The error of a tensor is ‖int8 − fp32‖ / ‖fp32‖ over ``feeds``, the INT8 side taken as its consumers see it
    (after its QuantizeLinear / DequantizeLinear pair, which also carries a fused Relu's clipping); a node's added
    error is its output's error (its own arithmetic and the quantization of its output) minus the largest error
    among its inputs (errors grow with depth, so the raw figure would always blame the
    last layers). The FP32 reference is the graph the quantizer itself worked on: ONNX Runtime's basic
    optimisations (BatchNorm folded into the convolution, Conv + Relu fused) applied to the named FP32 model, so a
    tensor name means the same values in both models (the raw export's ``convolution`` is pre-BatchNorm, the
    quantized model's post-BatchNorm).
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="gd-int8-err-") as tmp:
        named, optimized = Path(tmp) / "named.onnx", Path(tmp) / "optimized.onnx"
        onnx.save_model(name_nodes(onnx.load(str(fp32_path))), str(named))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(optimized)
        ort.InferenceSession(str(named), opts, providers=["CPUExecutionProvider"])
        model = onnx.load(str(optimized))
        skip = set(skip)
        names = [o for n in model.graph.node for o in n.output]
        ref = _intermediates(optimized, names, feeds)
        dq = [f"{n}{DQ_SUFFIX}" for n in names]  # the tensor as its consumers see it: quantized, then dequantized
        got = _intermediates(int8_path, names + dq, feeds)
    got = {n: got.get(f"{n}{DQ_SUFFIX}", got.get(n)) for n in names if n in got or f"{n}{DQ_SUFFIX}" in got}
    err = {n: _rel_error(ref[n], got[n]) for n in ref if n in got}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    rows = []
    for node in model.graph.node:
        if node.op_type not in WEIGHTED_OP_TYPES or node.name in skip:
            continue
        out = node.output[0]  # ONNX Runtime fuses Conv + Relu: follow elementwise ops to a tensor both models have
        while out not in err and len(consumers.get(out, [])) == 1 and consumers[out][0].op_type in ELEMENTWISE_OP_TYPES:
            out = consumers[out][0].output[0]
        if out not in err:
            continue
        upstream = max((err.get(i, 0.0) for i in node.input), default=0.0)
        rows.append((node.name, node.op_type, err[out] - upstream))
    return sorted(rows, key=lambda r: -r[2])


def with_producers(model: onnx.ModelProto, names: Iterable[str]) -> list[str]:
    """``names`` plus, for each, the nodes producing its first input back to the nearest weighted node
    (through elementwise ops)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    by_name = {n.name: n for n in model.graph.node}
    out: list[str] = []
    for name in names:
        out.append(name)
        node = by_name.get(name)
        while node is not None and node.input and node.input[0] in producer:
            node = producer[node.input[0]]
            if node.op_type not in WEIGHTED_OP_TYPES + ELEMENTWISE_OP_TYPES:
                break
            out.append(node.name)
            if node.op_type in WEIGHTED_OP_TYPES:
                break
    return list(dict.fromkeys(out))


def with_consumers(model: onnx.ModelProto, names: Iterable[str]) -> list[str]:
    """``names`` plus every node reading their output, through elementwise ops up to the next weighted nodes:
    QDQ quantizes a tensor whenever a quantized node reads it, so its producer and its readers stay float
    together."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    by_name = {n.name: n for n in model.graph.node}
    out: list[str] = []
    for name in names:
        out.append(name)
        frontier = list(by_name[name].output) if name in by_name else []
        while frontier:
            for reader in consumers.get(frontier.pop(), []):
                out.append(reader.name)
                if reader.op_type in ELEMENTWISE_OP_TYPES:
                    frontier += list(reader.output)
    return list(dict.fromkeys(out))


def quantize_accepted(fp32_path: Path, out_path: Path, feeds: Sequence[dict[str, np.ndarray]], judge: Judge,
                      *, max_tries: int = MAX_TRIES, forced_float: Iterable[str] = (),
                      symmetric: bool = False) -> Int8Result:
    """Quantize, judge, and on failure keep the worst nodes in float and retry (module docstring).

    Writes ``out_path`` only when a try passes; otherwise returns a refusal with the reason. ``forced_float``:
    further node names to keep float from the start (a user's or a test's choice); ``symmetric``: see
    ``quantize_int8``."""
    start = time.perf_counter()
    model = name_nodes(onnx.load(str(fp32_path)))
    ops = {n.name: n.op_type for n in model.graph.node}
    kept = list(dict.fromkeys([*always_float(model), *forced_float]))
    searched: list[str] = []
    tries: list[dict[str, Any]] = []
    verdict: Int8Verdict | None = None
    step = 1
    fd, tmp_name = tempfile.mkstemp(prefix=".int8-", suffix=".onnx", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        for attempt in range(1, max_tries + 1):
            try:
                quantize_int8(fp32_path, tmp, feeds, kept, symmetric=symmetric)
            except Exception as exc:  # noqa: BLE001 - the quantizer's failure refuses INT8, never the export
                text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                verdict = Int8Verdict(False, "quantization", {}, f"ONNX Runtime could not quantize the model: "
                                                                   f"{type(exc).__name__}: {text}")
                tries.append({"try": attempt, "kept_float": len(kept), "passed": False, "reason": verdict.reason})
                break
            verdict = judge(tmp)
            headline = {k: verdict.figures[k] for k in ("kid_shift", "kid_unpaired_std", "fid_delta", "psnr_db")
                        if k in verdict.figures}
            tries.append({"try": attempt, "kept_float": len(kept), "passed": verdict.passed, **headline,
                          "reason": verdict.reason})
            log.info("INT8 try %d (%d nodes float): %s", attempt, len(kept),
                     "passed" if verdict.passed else f"failed ({verdict.reason})")
            if verdict.passed:
                os.replace(tmp, out_path)
                return Int8Result(True, out_path, kept, [ops.get(n, "?") for n in kept], searched, verdict, tries,
                                  seconds=time.perf_counter() - start, symmetric=symmetric)
            if attempt == max_tries:
                break
            worst = [r for r in node_errors(fp32_path, tmp, feeds[:4], skip=kept) if r[2] > 0][:step]
            if not worst:
                break
            log.info("INT8: keeping float the nodes adding the most error: %s",
                     ", ".join(f"{n} ({op}, +{e:.3g})" for n, op, e in worst))
            picked = with_producers(model, [n for n, _, _ in worst])  # its input float: both ends of it
            added = [n for n in with_consumers(model, picked) if n not in kept]  # its output float: both ends
            searched += added
            kept += added
            step *= 2
    finally:
        tmp.unlink(missing_ok=True)
    reason = (f"INT8 refused after {len(tries)} tries ({len(searched)} nodes searched into float): "
              f"{verdict.reason if verdict else 'not judged'}")
    log.warning("%s; the FP32 (and FP16) export stands, model.int8.onnx is not written", reason)
    return Int8Result(False, None, kept, [ops.get(n, "?") for n in kept], searched, verdict, tries, reason,
                      time.perf_counter() - start, symmetric=symmetric)


def sampling_feeds(contract: Any, seeds: int, batch: int = 8) -> list[dict[str, np.ndarray]]:
    """Calibration batches of a sampling generator: seeds 0 .. ``seeds``-1 through the served contract's
    ``generator_feeds`` (the latents, labels and codes those seeds are served with)."""
    if seeds < 1:
        raise ExportError(f"--calibration must be at least 1 seed, got {seeds}")
    all_seeds = np.arange(seeds, dtype=np.int64)
    return [contract.generator_feeds(all_seeds[i:i + batch]) for i in range(0, seeds, batch)]


def int8_card_lines(int8: dict[str, Any] | None) -> list[str]:
    """The model card's INT8 paragraph from the manifest's ``int8`` entry (nothing when INT8 was not asked)."""
    if not int8 or not int8.get("tries"):
        return []
    v = int8.get("verdict") or {}
    if v.get("test") == "psnr":
        figure = f"PSNR vs FP32 {v.get('psnr_db')} dB (bound ≥ {v.get('psnr_min_db')} dB)"
    else:
        fid_delta = v.get("fid_delta")
        figure = (f"unpaired KID vs FP32 {v.get('kid_unpaired', float('nan')):.3g} (FP32 control "
                  f"{v.get('kid_control', float('nan')):.3g}, std {v.get('kid_unpaired_std', float('nan')):.3g}) on "
                  f"{v.get('features')} features, {v.get('n')} seeds"
                  + (f", FID delta {fid_delta:+.3g}" if fid_delta is not None else ""))
    searched = int8.get("kept_float_by_search") or []
    kept = ", ".join(f"{k['node']} ({k['op']})" for k in int8.get("kept_float", [])) or "none"
    head = ("INT8 (`model.int8.onnx`, QDQ, calibrated on " + str(int8.get("calibrated_on", "?")) + "): "
            + ("accepted" if int8.get("written") else f"refused — {int8.get('reason')}"))
    return [f"\n{head}; {figure}; kept float: {kept}"
            + (f" ({len(searched)} by the error search)" if searched else "") + "."]
