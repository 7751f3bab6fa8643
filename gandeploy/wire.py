"""The rules on the wire, in ONE file that gandeploy and its Triton python backends both import.

What a seed means, how pixels map, which served requests are valid and how a PNG is written must be the same
in-process and on the server, bit for bit. So this file is both ``gandeploy.wire`` (the package: ``models.io``,
``models.latent_stream``, ``contract_tensors`` and the picture paths import it) and ``gd_wire`` in a model
repository: ``gandeploy repo`` copies this very file beside every python-backend ``<model>/1/model.py``, where the
local tritonserver and the NGC container import it (``tests/serving/test_serving_repository.py`` checks the copy
is byte-identical). Hence: numpy and the standard library only (PIL inside ``encode_png``), no gandeploy import,
Python 3.8 syntax (the NGC container's interpreter may be older).

- **Seed → latent**: ``latent_from_seed(seed, nz, truncation)``, NumPy PCG64; the golden draws
  (``GOLDEN_LATENTS``) every place that draws latents checks before it starts (``latent_stream_problem``).
- **Pixels**: ``to_uint8`` / ``from_uint8`` by a tensor's declared value range; ``encode_png`` writes every PNG.
- **Served requests**: ``check_served`` (one input, by its declaration in the contract JSON), ``check_batch``
  (every request of one dynamic batch, bad ones failing alone), ``step_feeds`` (served values → generator
  inputs). A ``RequestError`` message is the INVALID_ARG the server answers.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

SEED_MAX = 2**63 - 1
TRUNCATION_MIN = 0.02  # smallest accepted truncation: P(|z| <= t) ~ 0.016 per draw, ~700 rounds at most seen
TRUNCATION_ROUNDS = 4096  # hard cap on redraw rounds; at TRUNCATION_MIN a component outlives it with p ~ e**-66
LATENT_ROLE, SEED_ROLE, TRUNCATION_ROLE = "latent", "seed", "truncation"  # a latent is served as seed + truncation
CONTRACT_PARAMETER = "gandeploy_contract"  # every served model's config parameter holding the contract JSON
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class RequestError(ValueError):
    """A problem with one request's content; the model answers it with INVALID_ARG and serves the rest."""


# --- seed -> latent -------------------------------------------------------------------------------------------


def latent_from_seed(seed: int, nz: int, truncation: Optional[float] = None) -> np.ndarray:
    """The latent vector for ``seed``: ``nz`` standard normals from NumPy's PCG64 (``default_rng(seed)``).

    float64 draws cast to float32, shape [nz]. Seeds are integers in [0, 2**63 - 1]. This is the documented
    source of randomness: the Triton models, the client and the parity suite all call it, so one seed gives one
    picture on every backend.

    ``truncation`` t (the truncation trick), finite and >= ``TRUNCATION_MIN`` (0.02): every component with
    |z| > t is redrawn from the *same* generator, in index order, round after round, until all lie within
    [-t, t]. Components already inside are never changed, so without truncation (None) the latent is exactly
    the untruncated one. **Bounded**: at most ``TRUNCATION_ROUNDS`` (4096) rounds of at most ``nz`` draws; a
    component still outside after the last round is clipped to +-t (deterministic, so the map stays a function
    of the seed; at t = 0.02 this happens with probability ~e**-66 per component, so in practice never).
    Smaller t raises ValueError: the redraw loop would take ~1/t rounds.
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


# NumPy does not promise to keep ``Generator.standard_normal``'s stream across versions (NEP 19 keeps only the
# bit generators): these are latent_from_seed(seed, 6) computed with NumPy 1.26.4 and committed.
GOLDEN_NZ = 6
GOLDEN_NUMPY = "1.26.4"  # the NumPy that computed GOLDEN_LATENTS
GOLDEN_LATENTS: Dict[int, Tuple[float, ...]] = {
    0: (0.12573022, -0.13210486, 0.64042264, 0.104900114, -0.5356694, 0.36159506),
    1: (0.34558418, 0.82161814, 0.33043706, -1.3031572, 0.9053559, 0.44637457),
    12345: (-1.423825, 1.2637285, -0.87066174, -0.25917324, -0.0753433, -0.74088466),
    2**63 - 1: (-0.27767184, -1.1454483, 0.9544642, -0.19227232, 1.7535728, -0.7307733),
}


def latent_stream_problem(recorded_numpy: Optional[str] = None, where: str = "in this environment") -> Optional[str]:
    """None when this NumPy draws the golden latents bit for bit; else a one-line explanation ending in the fix
    (install the NumPy that drew them ``where``)."""
    for seed, want in GOLDEN_LATENTS.items():
        got = latent_from_seed(seed, GOLDEN_NZ)
        if not np.array_equal(got, np.asarray(want, dtype=np.float32)):
            was = recorded_numpy or GOLDEN_NUMPY
            return (f"NumPy {np.__version__} draws different latents from seeds than NumPy {was} (seed {seed}: "
                    f"{got[:3].tolist()} instead of {list(want[:3])}): every seed would give a different picture "
                    f"than the export was checked with. Install numpy=={was} {where}.")
    return None


# --- pixels ---------------------------------------------------------------------------------------------------


def to_uint8(images: np.ndarray, value_range: Tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Generator output in ``value_range`` (lo, hi), [N, C, H, W] float → uint8 [N, H, W, C], C-contiguous:
    ``rint((x - lo) * 255 / (hi - lo))``, clipped; for [-1, 1] that is ``rint((x + 1) * 127.5)``.

    One uint8 level is 1/127.5 ≈ 0.0078 in tanh space (1/255 in [0, 1]). Served images use exactly this map.
    The served hot path: a transposed view would be copied to contiguous memory by ``pb_utils.Tensor`` once per
    response, by numpy's slow strided uint8 copy; here the float32 arithmetic runs in place on one contiguous
    copy and the layout change on the uint8 result, one channel at a time.
    """
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


def from_uint8(images: np.ndarray, value_range: Tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """uint8 [N, H, W, C] → float32 [N, C, H, W] in ``value_range``: ``x / (255 / (hi - lo)) + lo``, i.e.
    ``x / 127.5 - 1`` for [-1, 1] (inverse of ``to_uint8``)."""
    lo, hi = float(value_range[0]), float(value_range[1])
    chw = np.transpose(np.asarray(images), (0, 3, 1, 2)).astype(np.float32)
    return chw / np.float32(255.0 / (hi - lo)) + np.float32(lo)


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8 or uint16 [H, W] or [H, W, K] → PNG bytes of that depth; K = 1 grey, 2 grey + alpha, 3 RGB,
    4 RGBA. The one PNG encoder of gandeploy (served answers, client requests, files)."""
    arr = np.asarray(pixels)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"a PNG is written from uint8 or uint16 [H, W, 1..4], got {arr.dtype} {list(arr.shape)}")
    if arr.dtype == np.uint16:
        return _png16(arr)
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)).save(buf, format="PNG")
    return buf.getvalue()


def _png16(pixels: np.ndarray) -> bytes:
    """A 16-bit PNG (colour type 0, 4, 2 or 6 for 1..4 channels), every row unfiltered (PIL writes 16-bit
    greyscale only)."""
    h, w, k = pixels.shape
    rows = np.ascontiguousarray(pixels, dtype=">u2").reshape(h, w * k).view(np.uint8)  # [H, 2WK] big-endian
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter byte 0 per row

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[k], 0, 0, 0)
    return PNG_MAGIC + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


# --- served requests ------------------------------------------------------------------------------------------


def load_contract(params: Dict[str, str]) -> Dict[str, Any]:
    """The served contract JSON from a model's config parameters (a ValueError when it is missing)."""
    text = params.get(CONTRACT_PARAMETER, "")
    if not text.strip():
        raise ValueError(f"config parameter '{CONTRACT_PARAMETER}' is missing: rebuild with 'gandeploy repo'")
    return json.loads(text)


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


def check_served(arr: np.ndarray, spec: Dict[str, Any]) -> np.ndarray:
    """One served input of one request, [B, *dims], checked by its declaration (``ServedTensor.to_json``): the
    shape [B, *dims]; seeds in [0, 2**63 - 1]; indices in [0, classes); floats finite; truncation >=
    TRUNCATION_MIN. Returns it [B, *dims]."""
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


def step_feeds(contract: Dict[str, Any], values: Dict[str, Any]) -> Dict[str, np.ndarray]:
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
            seeds = np.asarray(values[mine[SEED_ROLE]["name"]]).reshape(-1)
            trunc_spec = mine.get(TRUNCATION_ROLE)
            trunc = values.get(trunc_spec["name"]) if trunc_spec else None
            # NaN marks a row whose request left the optional truncation out (check_batch); never a user value
            ts = [None] * seeds.size if trunc is None else [None if t != t else float(t)
                                                            for t in np.asarray(trunc).reshape(-1)]
            nz = int(target["shape"][1])
            out[step["name"]] = np.stack([latent_from_seed(int(s), nz, t)
                                          for s, t in zip(seeds, ts)]).astype(np.float32)  # noqa: B905 - 3.8
        else:
            spec = mine[target.get("role")]
            out[step["name"]] = np.ascontiguousarray(values[spec["name"]])
    return out


def check_batch(specs: List[Dict[str, Any]], raw: List[Dict[str, Any]],
                ) -> Tuple[Dict[str, Optional[np.ndarray]], List[int], List[int], Dict[int, str]]:
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


def _check_together(specs: List[Dict[str, Any]], raw: List[Dict[str, Any]],
                    ) -> Tuple[Dict[str, Optional[np.ndarray]], List[int]]:
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
    values: Dict[str, Optional[np.ndarray]] = {}
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


def _concat(arrays: List[np.ndarray], spec: Dict[str, Any]) -> np.ndarray:
    try:
        return np.concatenate(arrays)
    except ValueError:  # shapes that differ past the batch axis: check_served names the bad one
        for arr in arrays:
            check_served(arr, spec)
        raise RequestError(f"input '{spec['name']}' has mismatched shapes across requests") from None
