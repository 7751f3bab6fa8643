"""Triton model configs built as ``ModelConfig`` protobufs, validated, and written with ``text_format``.

No pbtxt string is ever assembled by hand: every config is a ``tritonclient.grpc.model_config_pb2.ModelConfig``
message, checked by ``validate_configs`` (per model and across an ensemble's steps), and written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gandeploy.contract import ServedTensor
from gandeploy.errors import ServingError, missing_extra
from gandeploy.utils.io import atomic_write_text

CONFIG_FILE = "config.pbtxt"

# contract dtype -> Triton DataType name (resolved on the protobuf module at use)
TRITON_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64", "int32": "TYPE_INT32",
                 "uint8": "TYPE_UINT8", "bytes": "TYPE_STRING"}


def pb() -> Any:
    """The ``model_config_pb2`` module (tritonclient is imported only where configs are built)."""
    try:
        import tritonclient.grpc.model_config_pb2 as model_config_pb2
    except ImportError as exc:
        raise missing_extra("writing Triton model configs", "serve", exc) from None
    return model_config_pb2


Tensor = ServedTensor  # one model input/output: name, dtype, dims without the batch axis, reshape, optional


@dataclass(frozen=True)
class Batching:
    """Dynamic batching and instance settings shared by every batchable model of a repository."""

    max_batch: int
    preferred_batch_sizes: tuple[int, ...]
    max_queue_delay_us: int
    instances: int = 1

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ServingError(f"max batch must be >= 1, got {self.max_batch}.")
        if self.instances < 1:
            raise ServingError(f"--instances must be >= 1, got {self.instances}.")
        if self.max_queue_delay_us < 0:
            raise ServingError(f"--max-queue-delay-us must be >= 0, got {self.max_queue_delay_us}.")
        bad = [b for b in self.preferred_batch_sizes if b < 1 or b > self.max_batch]
        if bad:
            raise ServingError(f"--preferred-batch-sizes {bad} must lie in 1..{self.max_batch} (the export's "
                               "max batch).")


def default_preferred(max_batch: int) -> tuple[int, ...]:
    """Preferred batch sizes when none are given: 8, 16, 32, 64 up to the max batch (or the max itself)."""
    sizes = tuple(b for b in (8, 16, 32, 64) if b <= max_batch)
    return sizes or (max_batch,)


def _add_tensors(field: Any, tensors: Iterable[Tensor]) -> None:
    m = pb()
    for t in tensors:
        entry = field.add(name=t.name, data_type=getattr(m, TRITON_DTYPES[t.dtype]), dims=list(t.dims))
        if t.reshape is not None:
            entry.reshape.shape.extend(list(t.reshape))
        if t.optional:  # inputs only: an absent optional input reaches a python model as None
            entry.optional = True


def _set_params(cfg: Any, params: Mapping[str, Any]) -> None:
    for key, value in params.items():
        cfg.parameters[key].string_value = str(value)


def _set_batching(cfg: Any, batching: Batching, kind: str | None) -> None:
    m = pb()
    cfg.max_batch_size = batching.max_batch
    cfg.dynamic_batching.preferred_batch_size.extend(list(batching.preferred_batch_sizes))
    cfg.dynamic_batching.max_queue_delay_microseconds = batching.max_queue_delay_us
    group = cfg.instance_group.add(count=batching.instances)
    if kind is not None:
        group.kind = getattr(m.ModelInstanceGroup, kind)


def python_model(name: str, inputs: Sequence[Tensor], outputs: Sequence[Tensor], batching: Batching,
                 params: Mapping[str, Any]) -> Any:
    """A python-backend model on CPU instances with dynamic batching."""
    cfg = pb().ModelConfig(name=name, backend="python")
    _add_tensors(cfg.input, inputs)
    _add_tensors(cfg.output, outputs)
    _set_batching(cfg, batching, "KIND_CPU")
    _set_params(cfg, params)
    return cfg


def native_model(name: str, platform: str, filename: str, inputs: Sequence[Tensor], outputs: Sequence[Tensor],
                 batching: Batching, params: Mapping[str, Any]) -> Any:
    """An ``onnxruntime_onnx`` or ``tensorrt_plan`` model (NGC container); instances on the GPU when present."""
    if platform not in ("onnxruntime_onnx", "tensorrt_plan"):
        raise ServingError(f"unsupported platform '{platform}'.")
    cfg = pb().ModelConfig(name=name, platform=platform, default_model_filename=filename)
    _add_tensors(cfg.input, inputs)
    _add_tensors(cfg.output, outputs)
    _set_batching(cfg, batching, None)  # KIND_AUTO: GPU when the container sees one, else CPU
    _set_params(cfg, params)
    return cfg


@dataclass(frozen=True)
class Step:
    """One ensemble step: model name, its input name → ensemble tensor, its output name → ensemble tensor."""

    model: str
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]


def ensemble_model(name: str, inputs: Sequence[Tensor], outputs: Sequence[Tensor], max_batch: int,
                   steps: Sequence[Step], params: Mapping[str, Any]) -> Any:
    """A ``platform: "ensemble"`` model chaining ``steps`` (ensembles take no dynamic batching of their own)."""
    cfg = pb().ModelConfig(name=name, platform="ensemble", max_batch_size=max_batch)
    _add_tensors(cfg.input, inputs)
    _add_tensors(cfg.output, outputs)
    for step in steps:
        entry = cfg.ensemble_scheduling.step.add(model_name=step.model, model_version=-1)
        for key, value in step.inputs.items():
            entry.input_map[key] = value
        for key, value in step.outputs.items():
            entry.output_map[key] = value
    _set_params(cfg, params)
    return cfg


# --- validation ----------------------------------------------------------------------------------------------


def validate_config(cfg: Any) -> None:
    """Per-model checks Triton would otherwise report only at load time (or, for some, never)."""
    m = pb()
    where = f"model config '{cfg.name}'"
    if not cfg.name:
        raise ServingError("a model config has no name.")
    if bool(cfg.backend) == bool(cfg.platform):
        raise ServingError(f"{where}: set exactly one of backend / platform.")
    names = [t.name for t in cfg.input] + [t.name for t in cfg.output]
    if not cfg.input or not cfg.output:
        raise ServingError(f"{where}: needs at least one input and one output.")
    if len(set(t.name for t in cfg.input)) != len(cfg.input) or len(set(t.name for t in cfg.output)) != len(cfg.output):
        raise ServingError(f"{where}: duplicate tensor names in {names}.")
    for t in list(cfg.input) + list(cfg.output):
        if t.data_type == m.TYPE_INVALID or not t.dims or any(d == 0 or d < -1 for d in t.dims):
            raise ServingError(f"{where}: tensor '{t.name}' needs a data type and dims of positive sizes or -1.")
    if cfg.max_batch_size < 0:
        raise ServingError(f"{where}: max_batch_size must be >= 0.")
    if cfg.HasField("dynamic_batching"):
        if cfg.platform == "ensemble":
            raise ServingError(f"{where}: ensembles cannot take dynamic_batching.")
        if any(b > cfg.max_batch_size for b in cfg.dynamic_batching.preferred_batch_size):
            raise ServingError(f"{where}: preferred batch sizes exceed max_batch_size {cfg.max_batch_size}.")
    if cfg.platform == "ensemble":
        _validate_ensemble_graph(cfg)


def _validate_ensemble_graph(cfg: Any) -> None:
    where = f"ensemble '{cfg.name}'"
    inputs = {t.name for t in cfg.input}
    outputs = {t.name for t in cfg.output}
    clash = inputs & outputs
    if clash:  # Triton 2.51 loads such an ensemble and then never answers a request
        raise ServingError(f"{where}: tensor name(s) {sorted(clash)} are both input and output.")
    available, produced = set(inputs), set()
    for step in cfg.ensemble_scheduling.step:
        missing = sorted(set(step.input_map.values()) - available)
        if missing:
            raise ServingError(f"{where}: step '{step.model_name}' reads {missing} before any step produces them.")
        for tensor in step.output_map.values():
            if tensor in produced or tensor in inputs:
                raise ServingError(f"{where}: tensor '{tensor}' is produced twice.")
            produced.add(tensor)
        available |= set(step.output_map.values())
    if outputs - produced:
        raise ServingError(f"{where}: no step produces output(s) {sorted(outputs - produced)}.")


def validate_configs(configs: Mapping[str, Any]) -> None:
    """Validate every config, then each ensemble step against the configs of the models it calls."""
    for cfg in configs.values():
        validate_config(cfg)
    for cfg in configs.values():
        if cfg.platform != "ensemble":
            continue
        for step in cfg.ensemble_scheduling.step:
            target = configs.get(step.model_name)
            if target is None:
                raise ServingError(f"ensemble '{cfg.name}' calls unknown model '{step.model_name}'.")
            unknown_in = set(step.input_map) - {t.name for t in target.input}
            unknown_out = set(step.output_map) - {t.name for t in target.output}
            if unknown_in or unknown_out:
                raise ServingError(f"ensemble '{cfg.name}': model '{target.name}' has no tensor(s) "
                                   f"{sorted(unknown_in | unknown_out)}.")
            if target.max_batch_size < cfg.max_batch_size:
                raise ServingError(f"ensemble '{cfg.name}': step '{target.name}' batches at most "
                                   f"{target.max_batch_size} < {cfg.max_batch_size}.")


# --- files ---------------------------------------------------------------------------------------------------


def config_text(cfg: Any) -> str:
    """The pbtxt text of ``cfg``; parsing it back must give the same message."""
    from google.protobuf import text_format

    text = text_format.MessageToString(cfg)
    if text_format.Parse(text, pb().ModelConfig()) != cfg:
        raise ServingError(f"model config '{cfg.name}' does not survive a text round trip.")
    return text


def write_config(model_dir: str | os.PathLike[str], cfg: Any) -> Path:
    """Write ``model_dir/config.pbtxt`` atomically (after validation)."""
    validate_config(cfg)
    return atomic_write_text(Path(model_dir) / CONFIG_FILE, config_text(cfg))


def read_config(model_dir: str | os.PathLike[str]) -> Any:
    """Parse ``model_dir/config.pbtxt``; an unknown field or bad syntax is a ``ServingError`` naming the file."""
    from google.protobuf import text_format

    path = Path(model_dir) / CONFIG_FILE
    try:
        return text_format.Parse(path.read_text(), pb().ModelConfig())
    except (OSError, text_format.ParseError) as exc:
        raise ServingError(f"cannot read Triton config '{path}': {exc}") from None
