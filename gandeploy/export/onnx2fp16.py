"""Step ONNX FP32 → ONNX FP16: FP16 weights and activations, FP32 inputs/outputs, risky ops kept in FP32.

``onnxconverter_common.float16.convert_float_to_float16`` with ``keep_io_types=True``. Its ``op_block_list``
argument *replaces* the default list, so the default list is merged in here, plus the ops that overflow or
drift in FP16: InstanceNormalization (onnxruntime#10079, torch2trt#776: the variance of a 256x256 feature map
overflows 65504), the other normalisations, reductions, powers, exponentials and softmax. Blocked nodes run in
FP32 between inserted Casts.

By structure, not by model: every MatMul whose two operands are both computed tensors (no weight among them —
self-attention's unscaled QKᵀ and attention·V) is kept in FP32 too (``activation_matmul_nodes``). A weight
product is bounded by its weight's norm (spectral norm makes it ≤ 1); a product of two activations is not,
and QKᵀ past 65504 becomes inf and the softmax NaN. Measured on untrained SAGAN / BigGAN generators with
γ = 1 (2026-12, ORT CPU): SAGAN 64x64 (attention at 32x32) max abs 1.2e-3, BigGAN 64x64 7.7e-3, with or
without this rule — the rounding of the attention's FP16 *inputs*, amplified by the logits, dominates, so the
rule is a guard against overflow (for engines that keep FP16 MatMul outputs in FP16), not a cure for drift.
ORT CPU itself gave no NaN even with logits of 8.8e4 in the unguarded graph.

Documented FP16 tolerance (checked at export against the FP32 PyTorch reference, outputs in tanh space):
max abs error ≤ ``FP16_MAX_ABS`` (2e-2) and, for image outputs, uint8 pictures within ``FP16_MAX_LEVELS``
(2) levels, one level being 1/127.5.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from gandeploy.errors import ExportError
from gandeploy.tolerances import TOLERANCES
from gandeploy.export.onnx_io import check_model, save_model, set_metadata
from gandeploy.utils.logging import get_logger

log = get_logger("export.fp16")

# The FP16 row of the one tolerance table (gandeploy/tolerances.py, where the figures are justified).
FP16_MAX_ABS = float(TOLERANCES[("fp16", "float")].max_abs)  # type: ignore[arg-type]  # tanh space, [-1, 1]
FP16_MAX_LEVELS = int(TOLERANCES[("fp16", "float")].uint8_max)  # type: ignore[arg-type]  # 1 level = 1/127.5

# Ops kept in FP32 on top of onnxconverter-common's default block list.
FP16_RISKY_OPS = (
    "InstanceNormalization", "LayerNormalization", "GroupNormalization", "BatchNormalization",
    "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp",
    "Pow", "Sqrt", "Reciprocal", "Exp", "Log", "Softmax", "LogSoftmax", "Erf",
)


def activation_matmul_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the MatMul nodes none of whose inputs is a weight (initializer or Constant output).

    Unnamed nodes get a name first (``gd_matmul_<i>``) so the converter's ``node_block_list`` can hold them.
    """
    constants = {t.name for t in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    names = []
    for i, node in enumerate(model.graph.node):
        if node.op_type == "MatMul" and not constants & set(node.input):
            if not node.name:
                node.name = f"gd_matmul_{i}"
            names.append(node.name)
    return names


def fp16_block_list() -> list[str]:
    """The converter's default block list merged with ``FP16_RISKY_OPS`` (the argument replaces the default)."""
    from onnxconverter_common import float16

    return sorted(set(float16.DEFAULT_OP_BLOCK_LIST) | set(FP16_RISKY_OPS))


@dataclass(frozen=True)
class Fp16Export:
    """What ``convert_fp16`` wrote; ``kept_fp32`` lists the op types of this graph left in FP32."""

    path: Path
    kept_fp32: tuple[str, ...]
    seconds: float
    kept_nodes: tuple[str, ...] = ()  # nodes kept in FP32 by name (activation MatMuls, measured overflows)


def convert_fp16(src: Path, dst: Path, *, metadata: Mapping[str, str] | None = None,
                 keep_nodes: Sequence[str] = ()) -> Fp16Export:
    """Write the FP16 version of ``src`` to ``dst`` atomically; checked like the FP32 model. ``keep_nodes``:
    node names kept in FP32 besides the op-type list (``fp16_safety`` measures which)."""
    from onnxconverter_common import float16

    start = time.perf_counter()
    model = onnx.load(str(src))
    block = fp16_block_list()
    _name_nodes(model)  # the names fp16_safety measured by (it names unnamed nodes the same way)
    keep_nodes = sorted(set(activation_matmul_nodes(model)) | set(keep_nodes))
    unshare_initializers(model, {n.name for n in model.graph.node if n.op_type in block or n.name in keep_nodes})
    try:
        with warnings.catch_warnings(record=True) as caught:  # one warning per clipped weight: summarise
            warnings.simplefilter("always")
            converted = float16.convert_float_to_float16(model, keep_io_types=True, op_block_list=block,
                                                         node_block_list=keep_nodes, disable_shape_infer=False)
    except Exception as exc:  # noqa: BLE001 - the converter raises assorted errors
        raise ExportError(f"FP16 conversion of {src.name} failed: {str(exc).splitlines()[0][:300]}") from None
    clipped = sum("truncated" in str(w.message) for w in caught)
    if clipped:
        log.info("FP16: %d weight values outside FP16's range were clipped (to ±1e-7 / ±1e4)", clipped)
    fuse_cast_pairs(converted)
    kept = sorted({n.op_type for n in converted.graph.node if n.op_type in block or n.name in keep_nodes})
    set_metadata(converted, {**(metadata or {}), "gandeploy.precision": "fp16",
                             "gandeploy.fp16_fp32_ops": ",".join(kept)})
    check_model(converted, dst.name)
    save_model(converted, dst)
    seconds = time.perf_counter() - start
    log.info("converted %s to FP16 in %.1f s (kept in FP32: %s)", dst.name, seconds, ", ".join(kept) or "none")
    return Fp16Export(dst, tuple(kept), seconds, tuple(keep_nodes))


def _cast_to(node: onnx.NodeProto) -> int | None:
    return next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None


def fuse_cast_pairs(model: onnx.ModelProto) -> int:
    """Remove FP32 → FP16 → FP32 round trips the converter leaves between two FP32-kept nodes.

    The converter wraps each kept node on its own (Cast to FP32 in, Cast to FP16 out), so two kept nodes in a
    row exchange their tensor in FP16: a value past 65504 — the reason they were kept — becomes inf on the way.
    Consumers of the second Cast read the first Cast's FP32 input instead; returns how many Casts went."""
    graph = model.graph
    producer = {out: n for n in graph.node for out in n.output}
    outputs = {o.name for o in graph.output}
    removed = 0
    for back in [n for n in graph.node if _cast_to(n) == onnx.TensorProto.FLOAT]:
        down = producer.get(back.input[0])
        if down is None or _cast_to(down) != onnx.TensorProto.FLOAT16 or back.output[0] in outputs:
            continue
        source = down.input[0]  # the FP32 tensor before the round trip
        for node in graph.node:
            node.input[:] = [source if i == back.output[0] else i for i in node.input]
        graph.node.remove(back)
        removed += 1
        if not any(down.output[0] in n.input for n in graph.node) and down.output[0] not in outputs:
            graph.node.remove(down)
            removed += 1
    return removed


def unshare_initializers(model: onnx.ModelProto, fp32_nodes: set[str]) -> None:
    """Give the FP32-kept consumers of a weight shared with FP16 nodes their own copy: the converter casts a
    shared initializer once, to FP16, and the kept node then reads the wrong type (an invalid graph)."""
    weights = {t.name: t for t in model.graph.initializer}
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in set(node.input) & set(weights):
            users.setdefault(name, []).append(node)
    for name, nodes in users.items():
        kept = [n for n in nodes if n.name in fp32_nodes]
        if not kept or len(kept) == len(nodes):
            continue
        copy = onnx.TensorProto()
        copy.CopyFrom(weights[name])
        copy.name = f"{name}_fp32"
        model.graph.initializer.append(copy)
        for node in kept:
            node.input[:] = [copy.name if i == name else i for i in node.input]


def _name_nodes(model: onnx.ModelProto) -> None:
    """Give unnamed nodes the name ``gd_node_<index>`` (node_block_list works by name)."""
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"gd_node_{i}"
