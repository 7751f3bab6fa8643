"""Step ONNX → ONNX: pixel-unshuffle as ``SpaceToDepth``, so no 6-D tensor is left in the graph.

BasicSR's x2 (and x1) RRDBNet pixel-unshuffles its input, written as a 6-D view + permute; ``F.pixel_unshuffle``
exports the same way (onnxscript's torchlib: "SpaceToDepth only supports DCR channel ordering"). The graph then
holds ``Reshape [N, C, H/b, b, W/b, b] → Transpose [0, 1, 3, 5, 2, 4] → Reshape [N, C·b², H/b, W/b]``, with the
6-D shape computed at run time from ``Shape`` of a dynamic input — the construct Real-ESRGAN's x2 users report
TensorRT failing on. ``space_to_depth`` replaces each such chain by 4-D ops that ONNX Runtime and TensorRT both
run natively:

- ``SpaceToDepth(blocksize=b)``: the same values, channels ordered (row offset, column offset, c) — ONNX's only
  ordering — where PyTorch orders them (c, row offset, column offset);
- the reorder is folded into the next convolution's weights (its input channels permuted) when that convolution
  is the chain's only consumer, as in RRDBNet's ``conv_first``; otherwise a ``Gather`` on the channel axis with
  constant indices restores PyTorch's order.

Both are exact (data movement only), in FP32 and FP16. The test exports a pixel-unshuffling net and checks the
graph (no tensor of rank > 4) and its outputs against PyTorch through ONNX Runtime at 34x50 and 512x768.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from gandeploy.utils.logging import get_logger

log = get_logger("export.rewrite")

UNSHUFFLE_PERM = [0, 1, 3, 5, 2, 4]  # [N, C, h, b, w, b] → [N, C, b, b, h, w]


def _static_dims(value: onnx.ValueInfoProto) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]


def _perm(node: onnx.NodeProto) -> list[int]:
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), [])


def unshuffle_order(channels: int, block: int) -> np.ndarray:
    """Index into SpaceToDepth's channels for each of PyTorch's pixel-unshuffle channels: PyTorch channel
    ``c·b² + i·b + j`` is SpaceToDepth channel ``(i·b + j)·C + c``."""
    c, i, j = np.meshgrid(np.arange(channels), np.arange(block), np.arange(block), indexing="ij")  # [C, b, b]
    return ((i * block + j) * channels + c).reshape(-1).astype(np.int64)  # [C·b²]


def space_to_depth(model: onnx.ModelProto) -> int:
    """Rewrite every 6-D pixel-unshuffle chain of ``model`` in place (module docstring); returns how many."""
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    shapes = {v.name: _static_dims(v) for v in (*inferred.value_info, *inferred.input, *inferred.output)}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    weights = {t.name: t for t in graph.initializer}
    count = 0
    for transpose in [n for n in graph.node if n.op_type == "Transpose" and _perm(n) == UNSHUFFLE_PERM]:
        first = producer.get(transpose.input[0])
        after = consumers.get(transpose.output[0], [])
        dims6 = shapes.get(transpose.input[0], [])
        if first is None or first.op_type != "Reshape" or len(after) != 1 or after[0].op_type != "Reshape":
            continue
        last = after[0]
        source = first.input[0]
        if (len(dims6) != 6 or dims6[1] is None or dims6[3] is None or dims6[3] != dims6[5]
                or len(shapes.get(source, [])) != 4 or len(shapes.get(last.output[0], [])) != 4
                or len(consumers.get(first.output[0], [])) != 1 or transpose.output[0] in outputs):
            continue
        channels, block = int(dims6[1]), int(dims6[3])
        order = unshuffle_order(channels, block)
        s2d_out = f"{last.output[0]}_space_to_depth"
        new_nodes = [helper.make_node("SpaceToDepth", [source], [s2d_out], name=f"{last.name or 'unshuffle'}_s2d",
                                      blocksize=block)]
        target = last.output[0]
        users = consumers.get(target, [])
        conv = users[0] if len(users) == 1 and target not in outputs else None
        weight = weights.get(conv.input[1]) if conv is not None and conv.op_type == "Conv" else None
        group = next((a.i for a in conv.attribute if a.name == "group"), 1) if conv is not None else 1
        if weight is not None and group == 1 and len(consumers.get(weight.name, [])) == 1:
            w = numpy_helper.to_array(weight)  # [O, C·b², kh, kw] in PyTorch's channel order
            folded = np.empty_like(w)
            folded[:, order] = w  # SpaceToDepth channel order[k] carries PyTorch channel k
            weight.CopyFrom(numpy_helper.from_array(folded, weight.name))
            conv.input[0] = s2d_out  # type: ignore[union-attr]
            how = f"folded into {conv.name or 'the next Conv'}"  # type: ignore[union-attr]
        else:
            index = f"{target}_unshuffle_order"
            graph.initializer.append(numpy_helper.from_array(order, index))
            new_nodes.append(helper.make_node("Gather", [s2d_out, index], [target], name=f"{index}_gather", axis=1))
            how = "reordered by Gather"
        position = list(graph.node).index(last)
        for node in (first, transpose, last):
            graph.node.remove(node)
        for offset, node in enumerate(new_nodes):
            graph.node.insert(position - 2 + offset, node)
        count += 1
        log.info("pixel-unshuffle by %d (%d channels) exported as SpaceToDepth, channel order %s", block, channels,
                 how)
    if count:
        remove_dead_nodes(model)
    return count


def remove_dead_nodes(model: onnx.ModelProto) -> None:
    """Drop nodes (and initializers) nothing reads any more, e.g. the 6-D shape arithmetic left behind."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    changed = True
    while changed:
        used = {name for node in graph.node for name in node.input} | outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        for node in dead:
            graph.node.remove(node)
        changed = bool(dead)
    used = {name for node in graph.node for name in node.input}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)


def max_rank(model: onnx.ModelProto) -> int:
    """The largest tensor rank in ``model`` after shape inference (the check that no 6-D tensor is left)."""
    graph = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    return max((len(v.type.tensor_type.shape.dim) for v in (*graph.value_info, *graph.input, *graph.output)),
               default=0)
