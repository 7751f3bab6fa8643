"""A small Python client over the tritonclient SDK (HTTP and gRPC) for gandeploy's served models.

    from gandeploy.serving.client import sample, translate
    images = sample("cgan-digits", seeds=range(16), labels=3)          # uint8 [16, H, W, C]
    pngs = translate("cyclegan-horse2zebra", [open("horse.jpg", "rb").read()])

Every server-side error becomes ``ServingError`` (``RequestRejected`` for a request the server refused, with
its status and message); an unreachable server names the URL and the command to start one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from gandeploy.errors import ServingError, UserInputError

PROTOCOLS = ("grpc", "http")
DEFAULT_URLS = {"http": "127.0.0.1:8000", "grpc": "127.0.0.1:8001"}
NP_TO_TRITON = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64", np.dtype(np.uint8): "UINT8",
                np.dtype(np.int32): "INT32", np.dtype(np.float16): "FP16", np.dtype(np.object_): "BYTES"}


class RequestRejected(ServingError):
    """The server answered a request with an error (bad input, unknown model, model failure)."""

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status or ""

    @property
    def invalid_argument(self) -> bool:
        """True for Triton's INVALID_ARG class: HTTP 400 or gRPC INVALID_ARGUMENT."""
        return self.status in ("400", "StatusCode.INVALID_ARGUMENT")


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
            raise ServingError(f"tritonclient is not installed ({exc}); pip install 'tritonclient[all]'.") from None
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
        """'; served: a, b. ...' from the repository index (what an unknown-model error should list)."""
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


class _Pool:
    """Thread pool whose threads each own a TritonClient (tritonclient's HTTP client is not thread-safe)."""

    def __init__(self, url: str | None, protocol: str, workers: int) -> None:
        self.url, self.protocol = url, protocol
        self.local = threading.local()
        self.clients: list[TritonClient] = []
        self.executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="triton-client")

    def client(self) -> TritonClient:
        if not hasattr(self.local, "client"):
            self.local.client = TritonClient(self.url, self.protocol)
            self.clients.append(self.local.client)
        return self.local.client

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.executor.shutdown(wait=True)
        for c in self.clients:
            c.close()


# --- the user-facing calls ------------------------------------------------------------------------------------


def model_metadata(name: str, *, url: str | None = None, protocol: str = "grpc") -> dict[str, Any]:
    """Inputs, outputs and platform of a served model, plus its max batch size (``max_batch_size``)."""
    with TritonClient(url, protocol) as client:
        meta = client.metadata(name)
        meta["max_batch_size"] = int(client.config(name).get("max_batch_size", 0))
    return meta


def sample(name: str, seeds: Iterable[int], labels: int | Iterable[int] | None = None, *, url: str | None = None,
           protocol: str = "grpc", batch_size: int | None = None, concurrency: int = 2) -> np.ndarray:
    """Pictures for ``seeds`` from the sampling model ``name``: uint8 [N, H, W, C] (2D-point models: float32
    [N, D]). ``labels`` (one int or one per seed) is required for conditional models. The seeds go out as one
    batched request, or as several concurrent ones of at most ``batch_size`` (default: the model's max)."""
    seed_arr = np.asarray(list(seeds), dtype=np.int64).reshape(-1)
    if seed_arr.size == 0:
        raise UserInputError("give at least one seed (--n must be >= 1).")
    if (seed_arr < 0).any():
        raise UserInputError(f"seeds must be in [0, 2**63 - 1] (--seed), got {int(seed_arr.min())}.")
    meta = model_metadata(name, url=url, protocol=protocol)
    in_names = [t["name"] for t in meta.get("inputs", [])]
    if "seed" not in in_names:
        raise UserInputError(f"model '{name}' is not a sampling model (its inputs are {in_names}); use "
                             "'gandeploy translate' for image-to-image models.")
    feeds = {"seed": seed_arr[:, None]}  # [N, 1]
    if "label" in in_names:
        if labels is None:
            raise UserInputError(f"model '{name}' is conditional: pass --label (a class index).")
        label_arr = np.broadcast_to(np.asarray(labels, dtype=np.int64).reshape(-1), seed_arr.shape).copy()
        feeds["label"] = label_arr[:, None]
    elif labels is not None:
        raise UserInputError(f"model '{name}' is not conditional: drop --label.")
    output = meta["outputs"][0]["name"]
    max_batch = int(meta.get("max_batch_size") or seed_arr.size)
    step = max(1, min(batch_size or max_batch, max_batch))
    chunks = [{k: v[i:i + step] for k, v in feeds.items()} for i in range(0, seed_arr.size, step)]
    if len(chunks) == 1:
        with TritonClient(url, protocol) as client:
            return client.infer(name, chunks[0], [output])[output]
    with _Pool(url, protocol, min(concurrency, len(chunks))) as pool:
        parts = list(pool.executor.map(lambda c: pool.client().infer(name, c, [output])[output], chunks))
    return np.concatenate(parts)


def translate_many(name: str, images: Sequence[bytes], *, url: str | None = None, protocol: str = "grpc",
                   concurrency: int = 4, on_done: Callable[[int], None] | None = None) -> list[bytes | ServingError]:
    """Translate each PNG/JPEG in ``images`` (one concurrent request each); a failed picture's slot holds its
    ``ServingError`` instead of PNG bytes. ``on_done(i)`` is called as each one finishes."""
    if not images:
        return []
    with TritonClient(url, protocol) as client:
        in_names = [t["name"] for t in client.metadata(name).get("inputs", [])]
    if in_names != ["image_bytes"]:
        raise UserInputError(f"model '{name}' is not an image-to-image model (its inputs are {in_names}); use "
                             "'gandeploy sample' for sampling models.")

    def one(i: int, pool: _Pool) -> bytes | ServingError:
        try:
            out = pool.client().infer(name, {"image_bytes": np.array([[bytes(images[i])]], dtype=np.object_)},
                                      ["image_bytes"])["image_bytes"]
            return bytes(out.reshape(-1)[0])
        except ServingError as exc:
            return exc
        finally:
            if on_done is not None:
                on_done(i)

    with _Pool(url, protocol, min(concurrency, len(images))) as pool:
        results = list(pool.executor.map(lambda i: one(i, pool), range(len(images))))
    unreachable = [r for r in results if isinstance(r, ServingError) and not isinstance(r, RequestRejected)]
    if unreachable:
        raise unreachable[0]
    return results


def translate(name: str, images: Sequence[bytes], *, url: str | None = None, protocol: str = "grpc",
              concurrency: int = 4) -> list[bytes]:
    """PNG bytes of each translated picture (same size as its input); the first failure raises."""
    results = translate_many(name, images, url=url, protocol=protocol, concurrency=concurrency)
    for i, result in enumerate(results):
        if isinstance(result, ServingError):
            raise type(result)(f"picture {i}: {result}", getattr(result, "status", None)) \
                if isinstance(result, RequestRejected) else result
    return [r for r in results if isinstance(r, bytes)]


def served_models(client: TritonClient) -> list[dict[str, Any]]:
    """Every model in the repository index: name, state, task, whether it is user-facing (its config's
    ``gandeploy_export`` parameter names itself), and its inputs/outputs from the model metadata."""
    rows = []
    for entry in sorted(client.repository_index(), key=lambda m: m["name"]):
        row: dict[str, Any] = {**entry, "inputs": [], "outputs": [], "task": "", "user_facing": False}
        if entry["state"] == "READY":
            meta = client.metadata(entry["name"])
            params = client.config(entry["name"]).get("parameters", {})
            row.update(inputs=meta.get("inputs", []), outputs=meta.get("outputs", []),
                       task=params.get("gandeploy_task", {}).get("string_value", ""),
                       user_facing=params.get("gandeploy_export", {}).get("string_value") == entry["name"])
        rows.append(row)
    return rows
