"""One connection to a Triton server through the official ``tritonclient`` SDK (HTTP or gRPC).

``TritonClient`` takes and returns named NumPy arrays and turns every SDK failure into a ``ServingError``:
``RequestRejected`` (with Triton's status) for a request the server refused, a message naming the URL and the
command to start a server when it cannot be reached. The Triton runtime and the user-facing client
(``gandeploy.serving.client``) both use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gandeploy.errors import RequestRejected, ServingError, UserInputError, missing_extra

PROTOCOLS = ("grpc", "http")
DEFAULT_URLS = {"http": "127.0.0.1:8000", "grpc": "127.0.0.1:8001"}
NP_TO_TRITON = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64", np.dtype(np.uint8): "UINT8",
                np.dtype(np.int32): "INT32", np.dtype(np.float16): "FP16", np.dtype(np.object_): "BYTES"}


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise UserInputError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got '{protocol}'.")
    return protocol


class TritonClient:
    """One connection to a Triton server; ``infer`` takes and returns named NumPy arrays."""

    def __init__(self, url: str | None = None, protocol: str = "grpc", timeout: float = 120.0) -> None:
        self.protocol = check_protocol(protocol)
        self.url = _strip_scheme(url or DEFAULT_URLS[protocol])
        self.timeout = timeout
        try:
            if protocol == "http":
                import tritonclient.http as module

                self._client = module.InferenceServerClient(self.url, connection_timeout=timeout,
                                                            network_timeout=timeout)
            else:
                import tritonclient.grpc as module  # type: ignore[no-redef]

                self._client = module.InferenceServerClient(self.url)
        except ImportError as exc:
            raise missing_extra("talking to Triton", "serve", exc) from None
        except Exception as exc:  # noqa: BLE001 - a malformed URL surfaces here
            raise UserInputError(f"--url '{url}' is not a usable {protocol} address ({exc}).") from None
        self._module = module

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - tritonclient, gevent and grpc raise many types
            raise self._error(what, exc) from None

    def _error(self, what: str, exc: Exception) -> ServingError:
        from tritonclient.utils import InferenceServerException

        if isinstance(exc, InferenceServerException):
            message = exc.message() or str(exc)
            status = str(exc.status() or "")
            if _unreachable(message):
                return self._unreachable_error()
            if "unknown model" in message.lower():
                message += self._served_hint()
            return RequestRejected(f"{what}: {message}", status)
        if isinstance(exc, (ConnectionError, OSError, TimeoutError)) or _unreachable(str(exc)):
            return self._unreachable_error(str(exc))
        return ServingError(f"{what}: {type(exc).__name__}: {exc}")

    def _served_hint(self) -> str:
        """'; served here: a, b. ...' from the repository index (what an unknown-model error should list)."""
        try:
            ready = sorted(m["name"] for m in self.repository_index() if m.get("state") == "READY")
        except ServingError:  # the hint is best effort
            return ""
        return (f"; served here: {', '.join(ready) or 'none'}. A model that 'gandeploy repo' just added loads "
                "within seconds ('gandeploy models' lists them).")

    def _unreachable_error(self, detail: str = "") -> ServingError:
        more = f" ({detail})" if detail else ""
        return ServingError(f"cannot reach Triton at {self.url} over {self.protocol}{more}: start it with "
                            "'gandeploy serve' or pass --url / --protocol.")

    # --- server and model information ---
    def server_ready(self) -> bool:
        try:
            return bool(self._client.is_server_ready())
        except Exception:  # noqa: BLE001 - "not reachable" means "not ready" here
            return False

    def model_ready(self, name: str) -> bool:
        return bool(self._call(f"model '{name}'", lambda: self._client.is_model_ready(name)))

    def repository_index(self) -> list[dict[str, str]]:
        """``[{"name", "version", "state"}]`` of every model in the served repository."""
        raw = self._call("repository index", self._client.get_model_repository_index)
        models = raw if isinstance(raw, list) else _as_dict(raw).get("models", [])
        return [{"name": str(m.get("name", "")), "version": str(m.get("version", "")),
                 "state": str(m.get("state", ""))} for m in models]

    def model_names(self) -> list[str]:
        """Names of the models the server lists as READY (its repository index)."""
        return sorted(m["name"] for m in self.repository_index() if m["state"] == "READY")

    def metadata(self, name: str) -> dict[str, Any]:
        """``{"name", "versions", "platform", "inputs": [{"name", "datatype", "shape"}], "outputs": [...]}``."""
        meta = _as_dict(self._call(f"model '{name}'", lambda: self._client.get_model_metadata(name)))
        for key in ("inputs", "outputs"):  # gRPC gives int64 dims as strings
            meta[key] = [{**t, "shape": [int(d) for d in t.get("shape", [])]} for t in meta.get(key, [])]
        return meta

    def config(self, name: str) -> dict[str, Any]:
        raw = self._call(f"model '{name}'", lambda: self._client.get_model_config(name))
        data = _as_dict(raw)
        return data.get("config", data)

    def statistics(self, name: str) -> dict[str, int]:
        """``inference_count`` (samples) and ``execution_count`` (batches run) of a model's latest version."""
        raw = _as_dict(self._call(f"model '{name}'", lambda: self._client.get_inference_statistics(name)))
        stats = raw.get("model_stats", [])
        return {"inference_count": sum(int(s.get("inference_count", 0)) for s in stats),
                "execution_count": sum(int(s.get("execution_count", 0)) for s in stats)}

    def infer(self, name: str, inputs: dict[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """One request: named arrays (batch axis first) in, the requested outputs out."""
        m = self._module
        tensors = []
        for key, value in inputs.items():
            arr = np.asarray(value)
            dtype = NP_TO_TRITON.get(arr.dtype) or ("BYTES" if arr.dtype.kind in "SO" else None)
            if dtype is None:
                raise UserInputError(f"input '{key}' has unsupported dtype {arr.dtype}.")
            tensor = m.InferInput(key, list(arr.shape), dtype)
            tensor.set_data_from_numpy(arr.astype(np.object_) if dtype == "BYTES" else arr)
            tensors.append(tensor)
        requested = [m.InferRequestedOutput(o) for o in outputs]
        kwargs: dict[str, Any] = {"client_timeout": self.timeout} if self.protocol == "grpc" else {}
        result = self._call(f"model '{name}'", lambda: self._client.infer(name, tensors, outputs=requested, **kwargs))
        return {o: result.as_numpy(o) for o in outputs}

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing twice or after a failure is harmless
            self._client.close()

    def __enter__(self) -> TritonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _strip_scheme(url: str) -> str:
    for prefix in ("http://", "https://", "grpc://"):
        if url.startswith(prefix):
            return url[len(prefix):].rstrip("/")
    return url.rstrip("/")


def _unreachable(message: str) -> bool:
    text = message.lower()
    return any(s in text for s in ("connection refused", "failed to connect", "connect failed",
                                   "name or service not known", "no route to host"))


def _as_dict(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(raw, preserving_proto_field_name=True)
