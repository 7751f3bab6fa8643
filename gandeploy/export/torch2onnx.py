"""Step torch → ONNX: an eval-mode generator to ``model.onnx`` (FP32) with dynamic batch (and H, W).

The dynamo exporter (``torch.onnx.export(dynamo=True)`` with ``torch.export.Dim`` dynamic shapes) is tried
first; if it fails for a model, the TorchScript exporter with ``dynamic_axes`` is used and recorded.
Graph IO follows ``gandeploy.models.io``: dynamic axes are named exactly 'N', 'H', 'W'.
"""

from __future__ import annotations

import contextlib
import math
import io
import logging
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from gandeploy.errors import ExportError
from gandeploy.export.onnx_io import check_model, save_model, set_metadata
from gandeploy.models.io import BATCH, HEIGHT, WIDTH, GeneratorIO, example_inputs
from gandeploy.utils.logging import get_logger

log = get_logger("export.onnx")

SIZE_MULTIPLE = 4  # image-to-image generators: H and W multiples of 4
DYNAMO_MIN_OPSET = 18  # the dynamo exporter emits opset >= 18; older opsets go to TorchScript directly
MAX_DIM = 1 << 14  # upper bound given to torch.export for dynamic sizes (ONNX itself keeps them open)


@dataclass(frozen=True)
class OnnxExport:
    """What ``export_onnx`` wrote and how."""

    path: Path
    exporter: str  # "dynamo" | "torchscript"
    opset: int
    seconds: float
    fallback_reason: str | None = None


def export_onnx(generator: nn.Module, io_spec: GeneratorIO, path: Path, *, num_classes: int = 0,
                example_hw: tuple[int, int] | None = None, opset: int | None = None,
                metadata: Mapping[str, str] | None = None) -> OnnxExport:
    """Export ``generator`` to ``path`` atomically; check it (full checker + shape inference) and tag it."""
    generator = generator.eval()
    # batch 2 and (for images) an example size: torch.export specialises dims of size 0 and 1
    feeds = example_inputs(io_spec, 2, image_hw=example_hw)
    args = tuple(torch.from_numpy(feeds[name]) for name in io_spec.input_names)
    start = time.perf_counter()
    failures: list[str] = []
    model: onnx.ModelProto | None = None
    exporter = ""
    for exporter, export_fn in (("dynamo", _export_dynamo), ("torchscript", _export_torchscript)):
        if exporter == "dynamo" and opset is not None and opset < DYNAMO_MIN_OPSET:
            failures.append(f"dynamo: exports opset >= {DYNAMO_MIN_OPSET} only, --opset {opset} was requested")
            continue
        try:
            model = export_fn(generator, io_spec, args, opset)
            produced = _opset(model)
            if opset is not None and produced != opset:
                raise ExportError(f"produced opset {produced} instead of the requested {opset}")
            name_dynamic_axes(model, io_spec)
            model.producer_name, model.producer_version = "gandeploy", torch.__version__
            set_metadata(model, {**(metadata or {}), "gandeploy.exporter": exporter})
            check_model(model, path.name)
            break
        except Exception as exc:  # noqa: BLE001 - a failing exporter triggers the documented fallback
            text = str(exc).strip()
            failures.append(f"{exporter}: {type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}")
            model = None
            if exporter == "dynamo":
                log.warning("dynamo exporter failed (%s); falling back to the TorchScript exporter", failures[-1])
    if model is None:
        raise ExportError(f"ONNX export failed with both exporters ({'; '.join(failures)}). Try another --opset.")
    fallback = failures[0] if failures else None
    save_model(model, path)
    opset_used = _opset(model)
    seconds = time.perf_counter() - start
    log.info("exported %s with the %s exporter (opset %d) in %.1f s", path.name, exporter, opset_used, seconds)
    return OnnxExport(path, exporter, int(opset_used), seconds, fallback)


def _opset(model: onnx.ModelProto) -> int:
    return int(next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0))


def size_step(io_spec: GeneratorIO) -> int:
    """Image sizes an export plans, checks and traces are multiples of this: the generator's declared size rule
    (``multiple``; a U-Net's 2**num_downs), and of ``SIZE_MULTIPLE`` (4) as before for every other model."""
    return math.lcm(SIZE_MULTIPLE, io_spec.size_multiple)


def _dynamic_shapes(io_spec: GeneratorIO) -> dict[str, dict[int, object]]:
    batch = torch.export.Dim("N", min=1, max=MAX_DIM)
    step = size_step(io_spec)
    quarter = {HEIGHT: torch.export.Dim("H_q", min=1, max=MAX_DIM // step),
               WIDTH: torch.export.Dim("W_q", min=1, max=MAX_DIM // step)}
    shapes: dict[str, dict[int, object]] = {}
    for spec in io_spec.inputs:
        axes: dict[int, object] = {}
        for axis, dim in spec.dynamic_axes.items():
            axes[axis] = batch if dim == BATCH else step * quarter[dim]  # H = step * H_q
        shapes[spec.name] = axes
    return shapes


def _export_dynamo(generator: nn.Module, io_spec: GeneratorIO, args: tuple[torch.Tensor, ...],
                   opset: int | None) -> onnx.ModelProto:
    with _quiet():
        program = torch.onnx.export(
            generator, args, input_names=list(io_spec.input_names), output_names=list(io_spec.output_names),
            opset_version=opset, dynamo=True, dynamic_shapes=_dynamic_shapes(io_spec), optimize=True,
            verbose=False, external_data=False)
    if program is None:
        raise ExportError("the dynamo exporter returned no program")
    return program.model_proto


def _export_torchscript(generator: nn.Module, io_spec: GeneratorIO, args: tuple[torch.Tensor, ...],
                        opset: int | None) -> onnx.ModelProto:
    axes = {t.name: dict(t.dynamic_axes) for t in (*io_spec.inputs, *io_spec.outputs)}
    buf = io.BytesIO()
    with _quiet():
        torch.onnx.export(generator, args, buf, dynamo=False, input_names=list(io_spec.input_names),
                          output_names=list(io_spec.output_names), dynamic_axes=axes,
                          opset_version=opset or 17, do_constant_folding=True)
    return onnx.load_from_string(buf.getvalue())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' chatter (torchvision notices, deprecation and tracer warnings)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def name_dynamic_axes(model: onnx.ModelProto, io_spec: GeneratorIO) -> None:
    """Rename the graph's symbolic IO dims ('s0', '4*H_q', ...) to the contract's 'N' / 'H' / 'W'."""
    specs = {t.name: t for t in (*io_spec.inputs, *io_spec.outputs)}
    graph_io = list(model.graph.input) + list(model.graph.output)
    for value in graph_io:
        spec = specs.get(value.name)
        if spec is None:
            raise ExportError(f"exported graph has unexpected IO tensor '{value.name}'")
        dims = value.type.tensor_type.shape.dim
        if len(dims) != len(spec.shape):
            raise ExportError(f"exported '{value.name}' has rank {len(dims)}, contract says {list(spec.shape)}")
        for axis, dim in enumerate(dims):
            if axis in spec.dynamic_axes:
                if dim.HasField("dim_value"):
                    raise ExportError(f"the exporter fixed dynamic axis {spec.dynamic_axes[axis]} of "
                                      f"'{value.name}' to {dim.dim_value}")
                dim.Clear()
                dim.dim_param = spec.dynamic_axes[axis]
            elif dim.dim_param:  # the contract fixes this axis: pin it
                dim.Clear()
                dim.dim_value = int(spec.shape[axis])
    # intermediate shapes still speak of the exporter's private symbols ('4*H_q + 6'): drop them; every
    # consumer (checker, ORT, TensorRT, the FP16 converter) re-infers shapes from the named IO
    del model.graph.value_info[:]
