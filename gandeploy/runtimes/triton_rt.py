"""Triton: an export served by a running Triton server (``gandeploy serve``), called through tritonclient.

Two keys (``gandeploy.formats``):

- ``triton``: the raw ``<name>_generator`` with the ONNX file's tensors, so parity compares it with every
  other runtime;
- ``triton-ensemble``: the user-facing ``<name>``, whose tensors (``seed`` [+ ``truncation``, ``label``,
  ``code``, ``continuous``] → ``image`` / ``sample``; ``image_bytes`` → ``image_bytes``) come from the export's
  ``ServedContract`` (``gandeploy/contract.py``); requests are checked by the contract before they are sent.
  Bytes outputs come back as an object array [N].

Options: ``url`` (default 127.0.0.1:8001 for grpc, :8000 for http), ``protocol`` ("grpc" | "http"), ``name``
(the served name; default: the export manifest's name). Batches above the export's max batch are split.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.contract import ServedTensor, raw_model
from gandeploy.manifest import load_manifest
from gandeploy.models.io import BATCH, TensorSpec
from gandeploy.runtimes.base import Runtime, check_inputs


def _spec(t: ServedTensor) -> TensorSpec:
    return TensorSpec(t.name, t.dtype, (BATCH, *t.dims))


class TritonRuntime(Runtime):
    """Calls one served model per ``run``; the server must already be running."""

    def __init__(self, key: str, export_dir: Path, *, url: str | None = None, protocol: str = "grpc",
                 name: str | None = None, timeout: float = 120.0) -> None:
        from gandeploy.runtimes.triton_client import TritonClient

        super().__init__(key)
        manifest = load_manifest(export_dir)
        self.contract = manifest.contract
        self.max_batch = self.contract.max_batch
        self.served_name = name or manifest.name
        self.raw = key == "triton"
        self.model = raw_model(self.served_name) if self.raw else self.served_name
        self.client = TritonClient(url, protocol, timeout=timeout)
        if self.raw:
            self.inputs, self.outputs = self.contract.io.inputs, self.contract.io.outputs
        else:
            self.inputs = tuple(_spec(t) for t in self.contract.inputs)
            self.outputs = tuple(_spec(t) for t in self.contract.outputs)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.raw:
            feeds = check_inputs(self.inputs, inputs)
            # [N] int64 tensors travel as [N, 1] (Triton dims [1], reshaped to [] for the graph)
            feeds = {k: (v[:, None] if v.ndim == 1 else v) for k, v in feeds.items()}
        else:
            feeds = self.contract.check(inputs)  # [N, *dims]; an absent optional input is not sent
        n = next(iter(feeds.values())).shape[0]
        parts: dict[str, list[np.ndarray]] = {t.name: [] for t in self.outputs}
        for start in range(0, n, self.max_batch):
            chunk = {k: v[start:start + self.max_batch] for k, v in feeds.items()}
            result = self.client.infer(self.model, chunk, list(parts))
            for out_name, value in result.items():
                parts[out_name].append(value)
        out = {k: np.concatenate(values) for k, values in parts.items()}
        if self.raw:
            return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}
        return {k: (np.array([bytes(b) for b in v.reshape(-1)], dtype=np.object_) if v.dtype == np.object_ else v)
                for k, v in out.items()}

    def close(self) -> None:
        self.client.close()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model, "url": self.client.url, "protocol": self.client.protocol}


def open_runtime(key: str, export_dir: Path, *, url: str | None = None, protocol: str = "grpc",
                 name: str | None = None, **_: Any) -> TritonRuntime:
    """The served export of ``export_dir`` (``triton``: raw generator; ``triton-ensemble``: user-facing)."""
    return TritonRuntime(key, Path(export_dir), url=url, protocol=protocol, name=name)
