"""Triton: an export served by a running Triton server (``gandeploy serve``), called through tritonclient.

Two keys (``gandeploy.formats``):

- ``triton``: the raw ``<name>_generator`` with the ONNX file's tensors (``z`` [+ ``label``] or ``image`` →
  ``output`` float32), so parity compares it with every other runtime;
- ``triton-ensemble``: the user-facing ``<name>``: ``seed`` int64 [N] (+ ``label`` int64 [N]) → ``image``
  uint8 [N, H, W, C] (2D points: ``sample`` float32 [N, D]); translation: ``image_bytes`` (PNG/JPEG bytes,
  an object array [N]) → ``image_bytes`` (PNG bytes, object array [N]).

Options: ``url`` (default 127.0.0.1:8001 for grpc, :8000 for http), ``protocol`` ("grpc" | "http"), ``name``
(the served name; default: the export manifest's name). Batches above the export's max batch are split.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.errors import ExportError, UserInputError
from gandeploy.models.io import BATCH, TensorSpec
from gandeploy.runtimes.base import Runtime, check_inputs, read_manifest_io


def _manifest(export_dir: Path) -> dict[str, Any]:
    path = Path(export_dir) / "manifest.json"
    if not path.is_file():
        raise UserInputError(f"'{export_dir}' has no manifest.json: pass an export dir made by 'gandeploy export'.")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path} is damaged ({exc}); re-run 'gandeploy export'.") from None


class TritonRuntime(Runtime):
    """Calls one served model per ``run``; the server must already be running."""

    def __init__(self, key: str, export_dir: Path, *, url: str | None = None, protocol: str = "grpc",
                 name: str | None = None, timeout: float = 120.0) -> None:
        from gandeploy.serving.client import TritonClient

        super().__init__(key)
        manifest = _manifest(export_dir)
        io = read_manifest_io(export_dir)
        assert io is not None  # noqa: S101 - _manifest guarantees the file
        self.raw_inputs, self.raw_outputs = io
        self.task = str(manifest.get("task", "sampling"))
        self.max_batch = int(manifest.get("max_batch") or 64)
        self.served_name = name or str(manifest.get("name") or Path(export_dir).name)
        self.model = f"{self.served_name}_generator" if key == "triton" else self.served_name
        self.client = TritonClient(url, protocol, timeout=timeout)
        self.inputs, self.outputs = (io if key == "triton" else self._ensemble_io())

    def _ensemble_io(self) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        if self.task == "translation":
            return (TensorSpec("image_bytes", "bytes", (BATCH,)),), (TensorSpec("image_bytes", "bytes", (BATCH,)),)
        inputs = [TensorSpec("seed", "int64", (BATCH,))]
        if any(t.name == "label" for t in self.raw_inputs):
            inputs.append(TensorSpec("label", "int64", (BATCH,)))
        out = self.raw_outputs[0].shape
        if len(out) == 2:
            return tuple(inputs), (TensorSpec("sample", "float32", out),)
        return tuple(inputs), (TensorSpec("image", "uint8", (BATCH, out[2], out[3], out[1])),)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = check_inputs(self.inputs, inputs) if self.key == "triton" else self._ensemble_feeds(inputs)
        # [N] int64 tensors travel as [N, 1] (Triton dims [1], reshaped to [] for the graph)
        feeds = {k: (v[:, None] if v.ndim == 1 else v) for k, v in feeds.items()}
        n = next(iter(feeds.values())).shape[0]
        parts: dict[str, list[np.ndarray]] = {t.name: [] for t in self.outputs}
        for start in range(0, n, self.max_batch):
            chunk = {k: v[start:start + self.max_batch] for k, v in feeds.items()}
            result = self.client.infer(self.model, chunk, list(parts))
            for name, value in result.items():
                parts[name].append(value)
        out = {name: np.concatenate(values) for name, values in parts.items()}
        if self.task == "translation" and self.key != "triton":
            out = {k: np.array([bytes(b) for b in v.reshape(-1)], dtype=np.object_) for k, v in out.items()}
        if self.key == "triton":
            out = {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}
        return out

    def _ensemble_feeds(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        want = [t.name for t in self.inputs]
        if sorted(inputs) != sorted(want):
            raise UserInputError(f"inputs of '{self.model}' must be named {want}, got {sorted(inputs)}.")
        feeds: dict[str, np.ndarray] = {}
        for name in want:
            arr = np.asarray(inputs[name])
            if name == "image_bytes":
                arr = np.array([bytes(b) for b in arr.reshape(-1)], dtype=np.object_)
            else:
                if not np.issubdtype(arr.dtype, np.integer):
                    raise UserInputError(f"input '{name}' must hold integers, got {arr.dtype}.")
                arr = arr.astype(np.int64).reshape(-1)
            feeds[name] = arr
        sizes = {v.shape[0] for v in feeds.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise UserInputError(f"inputs of '{self.model}' need one shared, non-zero batch size; got "
                                 f"{ {k: v.shape[0] for k, v in feeds.items()} }.")
        return feeds

    def close(self) -> None:
        self.client.close()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model, "url": self.client.url, "protocol": self.client.protocol}


def open_runtime(key: str, export_dir: Path, *, url: str | None = None, protocol: str = "grpc",
                 name: str | None = None, **_: Any) -> TritonRuntime:
    """The served export of ``export_dir`` (``triton``: raw generator; ``triton-ensemble``: user-facing)."""
    return TritonRuntime(key, Path(export_dir), url=url, protocol=protocol, name=name)
