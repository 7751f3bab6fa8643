"""A small Python client over the tritonclient SDK (HTTP and gRPC) for gandeploy's served models.

    from gandeploy.serving.client import sample, translate
    images = sample("cgan-digits", seeds=range(16), label=3)           # uint8 [16, H, W, C]
    codes = sample("infogan-digits", range(8), code=3, continuous=[0.5, -1], truncation=0.7)
    pngs = translate("cyclegan-horse2zebra", [open("horse.jpg", "rb").read()])

Requests are built and checked from the served model's own contract (its config parameter
``gandeploy_contract``, see ``gandeploy/contract.py``). Every server-side error becomes ``ServingError``
(``RequestRejected`` for a request the server refused, with its status and message); an unreachable server
names the URL and the command to start one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from gandeploy.contract import CONFIG_PARAMETER, ServedContract
from gandeploy.errors import ExportError, RequestRejected, ServingError, UserInputError
from gandeploy.runtimes.triton_client import TritonClient, check_protocol  # noqa: F401 - part of this API

__all__ = ["RequestRejected", "TritonClient", "check_protocol", "model_metadata", "sample", "served_contract",
           "translate", "translate_many"]


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


def served_contract(name: str, *, url: str | None = None, protocol: str = "grpc",
                    client: TritonClient | None = None) -> ServedContract:
    """The served contract of model ``name``, read from its config (parameter ``gandeploy_contract``)."""
    if client is None:
        with TritonClient(url, protocol) as own:
            return served_contract(name, client=own)
    params = client.config(name).get("parameters", {})
    text = (params.get(CONFIG_PARAMETER) or {}).get("string_value", "")
    if not text:
        raise ServingError(f"model '{name}' carries no served contract (config parameter {CONFIG_PARAMETER}): "
                           "it was built by an older gandeploy; rebuild it with 'gandeploy repo EXPORT_DIR'.")
    try:
        return ServedContract.from_json(text, f"the served contract of model '{name}'")
    except ExportError as exc:
        raise ServingError(f"{exc} Then rebuild the repository with 'gandeploy repo'.") from None


def sample(name: str, seeds: Iterable[int], labels: int | Iterable[int] | None = None, *,
           label: int | Iterable[int] | None = None, code: int | Iterable[int] | None = None,
           continuous: Sequence[float] | np.ndarray | None = None, truncation: float | Iterable[float] | None = None,
           url: str | None = None, protocol: str = "grpc", batch_size: int | None = None,
           concurrency: int = 2) -> np.ndarray:
    """Pictures for ``seeds`` from the sampling model ``name``: uint8 [N, H, W, C] (2D-point models: float32
    [N, D]). ``label`` / ``code`` (one int or one per seed), ``continuous`` (M floats, or [N, M]) and
    ``truncation`` (t >= 0.02) apply where the model takes them; inputs not given get the contract's default
    fill (``seed % classes``, zeros, no truncation). ``labels`` is the older spelling of ``label``. The seeds
    go out as one batched request, or as several concurrent ones of at most ``batch_size`` (default: the
    model's max)."""
    seed_arr = np.asarray(list(seeds), dtype=np.int64).reshape(-1)
    if seed_arr.size == 0:
        raise UserInputError("give at least one seed (--n must be >= 1).")
    if (seed_arr < 0).any():
        raise UserInputError(f"seeds must be in [0, 2**63 - 1] (--seed), got {int(seed_arr.min())}.")
    if labels is not None:
        if label is not None:
            raise UserInputError("pass label= or labels= (the same thing), not both.")
        label = labels
    with TritonClient(url, protocol) as client:
        contract = served_contract(name, client=client)
        max_batch = int(client.config(name).get("max_batch_size") or seed_arr.size)
    if contract.translation:
        raise UserInputError(f"model '{name}' is an image-to-image model (its inputs are "
                             f"{[t.name for t in contract.inputs]}); use 'gandeploy translate'.")
    feeds = contract.request(seed_arr, label=label, code=code, continuous=continuous, truncation=truncation)
    output = contract.output_name
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
    contract = served_contract(name, url=url, protocol=protocol)
    if not contract.translation:
        raise UserInputError(f"model '{name}' is not an image-to-image model (its inputs are "
                             f"{[t.name for t in contract.inputs]}); use 'gandeploy sample' for sampling models.")
    in_name, out_name = contract.inputs[0].name, contract.output_name

    def one(i: int, pool: _Pool) -> bytes | ServingError:
        try:
            out = pool.client().infer(name, {in_name: np.array([[bytes(images[i])]], dtype=np.object_)},
                                      [out_name])[out_name]
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
    ``gandeploy_export`` parameter names itself), and its inputs/outputs from the model metadata (each input
    with ``optional`` from the config: a request may leave it out)."""
    rows = []
    for entry in sorted(client.repository_index(), key=lambda m: m["name"]):
        row: dict[str, Any] = {**entry, "inputs": [], "outputs": [], "task": "", "user_facing": False}
        if entry["state"] == "READY":
            meta = client.metadata(entry["name"])
            config = client.config(entry["name"])
            params = config.get("parameters", {})
            optional = {t.get("name") for t in config.get("input", []) if t.get("optional")}
            inputs = [{**t, "optional": t.get("name") in optional} for t in meta.get("inputs", [])]
            row.update(inputs=inputs, outputs=meta.get("outputs", []),
                       task=params.get("gandeploy_task", {}).get("string_value", ""),
                       user_facing=params.get("gandeploy_export", {}).get("string_value") == entry["name"])
        rows.append(row)
    return rows
