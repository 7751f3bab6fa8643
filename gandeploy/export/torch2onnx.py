"""Step torch → ONNX: an eval-mode generator to ``model.onnx`` (FP32) with dynamic batch (and H, W).

``exporter`` chooses: ``dynamo`` (``torch.onnx.export(dynamo=True)`` with ``torch.export.Dim`` dynamic shapes),
``torchscript`` (``dynamic_axes``), or ``auto``: dynamo, and TorchScript only when dynamo *fails* — the reason
is returned (the manifest records it and the CLI prints it as a warning). Ctrl-C is never a failure: a SIGINT
during an exporter ends the export with ``KeyboardInterrupt`` even when the exporter catches it and raises
something else. Graph IO follows ``gandeploy.models.io``: dynamic axes are named exactly 'N', 'H', 'W' on inputs; an image
output ``scale`` x the input (super-resolution) names its axes ``H*s`` / ``W*s`` (``axis_name``), so one symbol
never stands for two sizes. H and W are exported as multiples of the generator's declared size rule
(``GeneratorIO.size_multiple``: ``torch.export.Dim`` ``H = k * H_k``), so the graph accepts exactly the sizes
the generator is declared for.
"""

from __future__ import annotations

import contextlib
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
from gandeploy.export.onnx_rewrite import space_to_depth
from gandeploy.models.io import BATCH, HEIGHT, WIDTH, GeneratorIO, example_inputs
from gandeploy.utils.interrupts import sigint_seen
from gandeploy.utils.logging import get_logger

log = get_logger("export.onnx")

DYNAMO_MIN_OPSET = 18  # the dynamo exporter emits opset >= 18; older opsets go to TorchScript directly
MAX_DIM = 1 << 14  # upper bound given to torch.export for dynamic sizes (ONNX itself keeps them open)
EXPORTERS = ("auto", "dynamo", "torchscript")


@dataclass(frozen=True)
class OnnxExport:
    """What ``export_onnx`` wrote and how."""

    path: Path
    exporter: str  # "dynamo" | "torchscript"
    opset: int
    seconds: float
    fallback_reason: str | None = None
    space_to_depth: int = 0  # pixel-unshuffles rewritten to SpaceToDepth (onnx_rewrite.py)


def export_onnx(generator: nn.Module, io_spec: GeneratorIO, path: Path, *, num_classes: int = 0,
                example_hw: tuple[int, int] | None = None, opset: int | None = None,
                metadata: Mapping[str, str] | None = None, exporter: str = "auto") -> OnnxExport:
    """Export ``generator`` to ``path`` atomically with ``exporter``; check it (full checker + shape inference)
    and tag it."""
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter '{exporter}' (choose from {', '.join(EXPORTERS)})")
    generator = generator.eval()
    # batch 2 and (for images) an example size: torch.export specialises dims of size 0 and 1, so H and W are
    # at least two of the size rule's steps
    feeds = example_inputs(io_spec, 2, image_hw=example_size(io_spec, example_hw))
    args = tuple(torch.from_numpy(feeds[name]) for name in io_spec.input_names)
    start = time.perf_counter()
    failures: list[str] = []
    model: onnx.ModelProto | None = None
    chosen = ("dynamo", "torchscript") if exporter == "auto" else (exporter,)
    used, rewrites = "", 0
    with sigint_seen() as interrupted:
        for used in chosen:
            if used == "dynamo" and opset is not None and opset < DYNAMO_MIN_OPSET:
                failures.append(f"dynamo: exports opset >= {DYNAMO_MIN_OPSET} only, --opset {opset} was requested")
                continue
            try:
                model, rewrites = _export_with(used, generator, io_spec, args, opset, metadata, path)
                break
            except Exception as exc:  # noqa: BLE001 - reported below; a fallback only under 'auto'
                if interrupted():  # the exporter turned Ctrl-C into another error: still Ctrl-C
                    raise KeyboardInterrupt from None
                text = str(exc).strip()
                failures.append(f"{used}: {type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}")
                if used != chosen[-1]:
                    log.warning("the dynamo exporter failed (%s); falling back to the TorchScript exporter "
                                "(recorded in the manifest; --exporter dynamo fails instead)", failures[-1])
        if interrupted():  # an exporter swallowed Ctrl-C entirely
            raise KeyboardInterrupt
    if model is None:
        hint = "Try another --opset." if exporter == "auto" else "Try --exporter auto or another --opset."
        raise ExportError(f"ONNX export failed ({'; '.join(failures)}). {hint}")
    fallback = "; ".join(failures) if failures else None
    save_model(model, path)
    opset_used = _opset(model)
    seconds = time.perf_counter() - start
    log.info("exported %s with the %s exporter (opset %d) in %.1f s", path.name, used, opset_used, seconds)
    return OnnxExport(path, used, int(opset_used), seconds, fallback, rewrites)


def _export_with(exporter: str, generator: nn.Module, io_spec: GeneratorIO, args: tuple[torch.Tensor, ...],
                 opset: int | None, metadata: Mapping[str, str] | None,
                 path: Path) -> tuple[onnx.ModelProto, int]:
    """One exporter's graph, named, rewritten, tagged and checked; with the number of SpaceToDepth rewrites."""
    model = (_export_dynamo if exporter == "dynamo" else _export_torchscript)(generator, io_spec, args, opset)
    produced = _opset(model)
    if opset is not None and produced != opset:
        raise ExportError(f"produced opset {produced} instead of the requested {opset}")
    name_dynamic_axes(model, io_spec)
    rewrites = space_to_depth(model)  # pixel-unshuffle: 6-D reshape/transpose → SpaceToDepth
    model.producer_name, model.producer_version = "gandeploy", torch.__version__
    set_metadata(model, {**(metadata or {}), "gandeploy.exporter": exporter})
    check_model(model, path.name)
    return model, rewrites


def example_size(io_spec: GeneratorIO, hw: tuple[int, int] | None) -> tuple[int, int] | None:
    """``hw`` (default 8x8) rounded up to the declared size rule, at least 2 steps of it per side."""
    if io_spec.image_input is None:
        return None
    k = io_spec.size_multiple
    h, w = hw or (8, 8)
    return max(2 * k, -(-h // k) * k), max(2 * k, -(-w // k) * k)


def _opset(model: onnx.ModelProto) -> int:
    return int(next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0))


def _dynamic_shapes(io_spec: GeneratorIO) -> dict[str, dict[int, object]]:
    """torch.export dims: N free; H and W multiples of the declared size rule k (H = k * H_k)."""
    k = io_spec.size_multiple
    batch = torch.export.Dim("N", min=1, max=MAX_DIM)
    if k == 1:
        sides = {HEIGHT: torch.export.Dim("H", min=1, max=MAX_DIM), WIDTH: torch.export.Dim("W", min=1, max=MAX_DIM)}
    else:
        sides = {d: k * torch.export.Dim(f"{d}_k", min=1, max=MAX_DIM // k) for d in (HEIGHT, WIDTH)}
    shapes: dict[str, dict[int, object]] = {}
    for spec in io_spec.inputs:
        shapes[spec.name] = {axis: batch if dim == BATCH else sides[dim] for axis, dim in spec.dynamic_axes.items()}
    return shapes


def axis_name(dim: str, scale: int = 1) -> str:
    """The ONNX name of a dynamic axis: 'N', 'H', 'W', or 'H*4' / 'W*4' on an output 4x the input."""
    return dim if dim == BATCH or scale == 1 else f"{dim}*{scale}"


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
    """Rename the graph's symbolic IO dims ('s0', '4*H_k', ...) to the contract's 'N' / 'H' / 'W' ('H*s' on an
    output ``scale`` s times the input)."""
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
                dim.dim_param = axis_name(spec.dynamic_axes[axis], spec.scale)
            elif dim.dim_param:  # the contract fixes this axis: pin it
                dim.Clear()
                dim.dim_value = int(spec.shape[axis])
    # intermediate shapes still speak of the exporter's private symbols ('4*H_q + 6'): drop them; every
    # consumer (checker, ORT, TensorRT, the FP16 converter) re-infers shapes from the named IO
    del model.graph.value_info[:]
