"""Helpers shared by gandeploy's Triton python-backend models. SELF-CONTAINED: numpy, PIL and the stdlib only.

``gandeploy repo`` copies this file beside every ``<model>/1/model.py``; the NGC container runs it without
gandeploy installed, so nothing here may import gandeploy. ``latent_from_seed`` (with truncation), ``to_uint8``
and ``from_uint8`` (with the value range) are copies of ``gandeploy.models.io``, and ``check_served`` / ``step_feeds`` apply the rules
of ``gandeploy.contract`` to the contract JSON; ``tests/serving/test_serving_backends.py`` proves they agree. Pictures (decode, size rule, tiles, encode) live
in ``gd_pictures.py``, copied beside it. Keep the syntax Python 3.8-compatible (the NGC container's interpreter may be older).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

SEED_MAX = 2**63 - 1
DEFAULT_MAX_PIXELS = 4096 * 4096


class RequestError(ValueError):
    """A problem with one request's content; the model answers it with INVALID_ARG and serves the rest."""


# --- copies of gandeploy.models.io ---------------------------------------------------------------------------


TRUNCATION_MIN = 0.02  # copies of gandeploy.models.io: smallest accepted truncation, cap on redraw rounds
TRUNCATION_ROUNDS = 4096


def latent_from_seed(seed: int, nz: int, truncation: float | None = None) -> np.ndarray:
    """``nz`` standard normals from NumPy's PCG64 ``default_rng(seed)``, float64 draws cast to float32.

    ``truncation`` t >= TRUNCATION_MIN: every component with |z| > t is redrawn from the same generator, in
    index order, round after round, until all lie within [-t, t] (components already inside never change), for
    at most TRUNCATION_ROUNDS rounds; a component still outside after them is clipped to +-t.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    rng = np.random.default_rng(int(seed))
    z = rng.standard_normal(int(nz))  # float64 [nz]
    if truncation is not None:
        t = float(truncation)
        if not np.isfinite(t) or t < np.float32(TRUNCATION_MIN):  # 0.02 sent as FP32 passes
            raise ValueError(f"truncation must be a finite number >= {TRUNCATION_MIN}, got {truncation}")
        bad = np.flatnonzero(np.abs(z) > t)
        for _ in range(TRUNCATION_ROUNDS):
            if not bad.size:
                break
            z[bad] = rng.standard_normal(bad.size)
            bad = bad[np.abs(z[bad]) > t]
        np.clip(z, -t, t, out=z)  # no-op unless the cap was reached
    return z.astype(np.float32)


def to_uint8(images: np.ndarray, value_range: tuple = (-1.0, 1.0)) -> np.ndarray:
    """Float [N, C, H, W] in ``value_range`` (lo, hi) → uint8 [N, H, W, C], C-contiguous:
    ``rint((x - lo) * 255 / (hi - lo))``, clipped; values bit for bit those of ``gandeploy.models.io.to_uint8``.

    The served hot path: a transposed view (what ``astype`` of ``np.transpose`` returns) would be copied to
    contiguous memory by ``pb_utils.Tensor`` once per response, by numpy's slow strided uint8 copy. Here the
    float32 arithmetic runs in place on one contiguous copy and the layout change on the uint8 result, one
    channel at a time."""
    lo, hi = float(value_range[0]), float(value_range[1])
    x = np.array(images, dtype=np.float32)  # [N, C, H, W], our own copy
    np.subtract(x, np.float32(lo), out=x)
    np.multiply(x, np.float32(255.0 / (hi - lo)), out=x)
    np.rint(x, out=x)
    np.maximum(x, np.float32(0), out=x)  # np.clip's ufunc is several times slower than these two
    np.minimum(x, np.float32(255), out=x)
    chw = x.astype(np.uint8)
    out = np.empty((chw.shape[0], chw.shape[2], chw.shape[3], chw.shape[1]), dtype=np.uint8)  # [N, H, W, C]
    for c in range(chw.shape[1]):
        out[..., c] = chw[:, c]
    return out


def from_uint8(images: np.ndarray, value_range: tuple = (-1.0, 1.0)) -> np.ndarray:
    """uint8 [N, H, W, C] → float32 [N, C, H, W] in ``value_range``: ``x / (255 / (hi - lo)) + lo``."""
    lo, hi = float(value_range[0]), float(value_range[1])
    chw = np.transpose(np.asarray(images), (0, 3, 1, 2)).astype(np.float32)
    return chw / np.float32(255.0 / (hi - lo)) + np.float32(lo)


# --- config parameters -----------------------------------------------------------------------------------------


def model_parameters(args: dict[str, Any]) -> dict[str, str]:
    """The ``parameters`` of a model's config as plain strings (from the python backend's ``args``)."""
    config = json.loads(args["model_config"])
    return {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}


def onnx_session(args: dict[str, Any], params: dict[str, str]) -> Any:
    """An ONNX Runtime CPU session over the model version's ``onnx_file`` (config parameter, default model.onnx),
    with ``intra_op_threads`` (0: ONNX Runtime's default) and one inter-op thread."""
    import os

    import onnxruntime as ort

    path = os.path.join(args["model_repository"], args["model_version"], params.get("onnx_file", "model.onnx"))
    options = ort.SessionOptions()
    threads = int_param(params, "intra_op_threads", 0)
    if threads > 0:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def int_param(params: dict[str, str], key: str, default: int) -> int:
    value = params.get(key, "")
    return int(value) if value.strip() else default


# --- seeds and labels -------------------------------------------------------------------------------------------


def check_seeds(seeds: np.ndarray) -> np.ndarray:
    """Seeds [B, 1] int64 → [B]; negative seeds are a ``RequestError`` (valid: 0 .. 2**63 - 1)."""
    flat = np.asarray(seeds).reshape(-1)
    if flat.dtype.kind not in "iu":
        raise RequestError(f"input 'seed' must be INT64, got {flat.dtype}")
    bad = flat[flat < 0]
    if bad.size:
        raise RequestError(f"input 'seed' must be in [0, 2**63 - 1], got {int(bad[0])}")
    return flat.astype(np.int64)


def check_index(values: np.ndarray, num_classes: int, name: str) -> np.ndarray:
    """Indices [B, 1] or [B] int64 → [B]; each must lie in [0, num_classes)."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind not in "iu":
        raise RequestError(f"input '{name}' must be INT64, got {flat.dtype}")
    bad = flat[(flat < 0) | (flat >= num_classes)]
    if bad.size:
        raise RequestError(f"input '{name}' must be in [0, {num_classes - 1}] (the model has {num_classes} "
                           f"classes), got {int(bad[0])}")
    return flat.astype(np.int64)


def check_finite(values: np.ndarray, name: str) -> np.ndarray:
    """Float values: NaN or infinity is a ``RequestError`` naming the input."""
    arr = np.asarray(values)
    if arr.dtype.kind != "f":
        raise RequestError(f"input '{name}' must be FP32, got {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise RequestError(f"input '{name}' holds NaN or infinite values")
    return arr.astype(np.float32)


# --- the served contract (gandeploy.contract.ServedContract.to_json, config parameter gandeploy_contract) ------

CONTRACT_PARAMETER = "gandeploy_contract"
SEED_ROLE, TRUNCATION_ROLE, LATENT_ROLE = "seed", "truncation", "latent"


def load_contract(params: dict[str, str]) -> dict[str, Any]:
    """The served contract from a model's config parameters (a ValueError when it is missing)."""
    text = params.get(CONTRACT_PARAMETER, "")
    if not text.strip():
        raise ValueError(f"config parameter '{CONTRACT_PARAMETER}' is missing: rebuild with 'gandeploy repo'")
    return json.loads(text)


def check_served(arr: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """One served input of one request, [B, *dims], checked by its declaration: seeds in [0, 2**63 - 1];
    indices in [0, classes); floats finite; truncation >= TRUNCATION_MIN; the shape [B, *dims]. Returns it
    [B, *dims]."""
    name, dims = spec["name"], [int(d) for d in spec["dims"]]
    arr = np.asarray(arr)
    if arr.ndim != len(dims) + 1 or any(d != -1 and d != g for d, g in zip(dims, arr.shape[1:])):  # noqa: B905
        raise RequestError(f"input '{name}' must have shape [N, {', '.join(map(str, dims))}], got {list(arr.shape)}")
    if spec.get("role") == SEED_ROLE:
        return check_seeds(arr).reshape(-1, 1)
    if spec.get("classes"):
        return check_index(arr, int(spec["classes"]), name).reshape(-1, 1)
    arr = check_finite(arr, name)
    if spec.get("role") == TRUNCATION_ROLE and arr.size and arr.min() < np.float32(TRUNCATION_MIN):
        raise RequestError(f"input '{name}' must be a finite number >= {TRUNCATION_MIN}, "
                           f"got {float(arr.min())}")
    return arr


def step_feeds(contract: dict[str, Any], values: dict[str, Any]) -> dict[str, np.ndarray]:
    """The generator's inputs (``step_outputs`` names) from checked served values (None: an absent optional).

    A latent comes from its ``seed`` input (and its optional ``truncation``) by ``latent_from_seed``; every
    other generator input is the served input that feeds it, as it came."""
    served = contract["inputs"]
    gen = {g["name"]: g for g in contract["generator"]["inputs"]}
    out = {}
    for step in contract["step_outputs"]:
        target = gen[step["feeds"]]
        mine = {s.get("role"): s for s in served if s.get("feeds") == target["name"]}
        if target.get("role") == LATENT_ROLE:
            seeds = values[mine[SEED_ROLE]["name"]].reshape(-1)
            trunc_spec = mine.get(TRUNCATION_ROLE)
            trunc = values.get(trunc_spec["name"]) if trunc_spec else None
            # NaN marks a row whose request left the optional truncation out (check_batch); never a user value
            ts = [None] * seeds.size if trunc is None else [None if t != t else float(t) for t in trunc.reshape(-1)]
            nz = int(target["shape"][1])
            out[step["name"]] = np.stack([latent_from_seed(int(s), nz, t)
                                          for s, t in zip(seeds, ts)]).astype(np.float32)  # noqa: B905 - 3.8
        else:
            spec = mine[target.get("role")]
            out[step["name"]] = np.ascontiguousarray(values[spec["name"]])
    return out


def check_batch(specs: list[dict[str, Any]], raw: list[dict[str, Any]],
                ) -> tuple[dict[str, np.ndarray | None], list[int], list[int], dict[int, str]]:
    """Every request of one ``execute`` checked batch-wide: one ``check_served`` pass per input over all requests.

    ``raw``: per request, served input name → its array (None: absent). Returns ``(values, good, rows, errors)``:
    ``values`` name → [total, *dims] over the good requests in order (an optional input absent from some of them
    has NaN rows there; absent from all: None), ``good`` the indices of good requests, ``rows`` their batch sizes,
    ``errors`` request index → message. A batch with a bad request is re-checked request by request, so each
    bad one fails alone, naming its input, and the rest are served."""
    try:
        values, rows = _check_together(specs, raw)
        return values, list(range(len(raw))), rows, {}
    except RequestError:
        pass
    errors, good = {}, []
    for i, request in enumerate(raw):
        try:
            _check_together(specs, [request])
            good.append(i)
        except RequestError as exc:
            errors[i] = str(exc)
    values, rows = _check_together(specs, [raw[i] for i in good]) if good else ({}, [])
    return values, good, rows, errors


def _check_together(specs: list[dict[str, Any]], raw: list[dict[str, Any]],
                    ) -> tuple[dict[str, np.ndarray | None], list[int]]:
    rows = []
    for request in raw:  # presence and one batch size per request: shapes only, no array work
        sizes = {}
        for spec in specs:
            arr = request.get(spec["name"])
            if arr is None:
                if not spec.get("optional"):
                    raise RequestError(f"missing input '{spec['name']}'")
                continue
            sizes[spec["name"]] = int(arr.shape[0]) if arr.ndim else -1
        if len(set(sizes.values())) > 1:
            raise RequestError(f"inputs must share one batch size, got {sizes}")
        size = next(iter(sizes.values()), 0)
        if size <= 0:
            raise RequestError("a request needs at least one sample")
        rows.append(size)
    values: dict[str, np.ndarray | None] = {}
    for spec in specs:
        arrs = [request.get(spec["name"]) for request in raw]
        present = [a for a in arrs if a is not None]
        if not present:
            values[spec["name"]] = None
            continue
        joined = present[0] if len(present) == 1 else _concat(present, spec)
        checked = check_served(joined, spec)  # [total present, *dims]
        if len(present) < len(arrs):  # an optional input some requests left out: NaN rows for them
            full = np.full((sum(rows), *checked.shape[1:]), np.nan, dtype=checked.dtype)
            start, taken = 0, 0
            for arr, n in zip(arrs, rows):  # noqa: B905 - Python 3.8 in NGC
                if arr is not None:
                    full[start:start + n] = checked[taken:taken + n]
                    taken += n
                start += n
            checked = full
        values[spec["name"]] = checked
    return values, rows


def _concat(arrays: list[np.ndarray], spec: dict[str, Any]) -> np.ndarray:
    try:
        return np.concatenate(arrays)
    except ValueError:  # shapes that differ past the batch axis: check_served names the bad one
        for arr in arrays:
            check_served(arr, spec)
        raise RequestError(f"input '{spec['name']}' has mismatched shapes across requests") from None


# --- batching ----------------------------------------------------------------------------------------------


def group_indices(keys: list[Any]) -> dict[Any, list[int]]:
    """Positions of ``keys`` grouped by equal key (only equal shapes can share one generator batch)."""
    groups: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups
