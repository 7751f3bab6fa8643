"""Helpers shared by gandeploy's Triton python-backend models. SELF-CONTAINED: numpy, PIL and the stdlib only.

``gandeploy repo`` copies this file beside every ``<model>/1/model.py``; the NGC container runs it without
gandeploy installed, so nothing here may import gandeploy. ``latent_from_seed`` (with truncation), ``to_uint8``
and ``from_uint8`` are copies of ``gandeploy.models.io``, and ``check_served`` / ``step_feeds`` apply the rules
of ``gandeploy.contract`` to the contract JSON; ``tests/serving/test_serving_backends.py`` proves they agree. Keep the syntax Python 3.8-compatible (the NGC container's interpreter may be older).
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

SEED_MAX = 2**63 - 1
SIZE_MULTIPLE = 4
DEFAULT_MAX_PIXELS = 4096 * 4096
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


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


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] float [N, C, H, W] → uint8 [N, H, W, C]: ``rint((x + 1) * 127.5)``, clipped."""
    hwc = np.transpose(np.asarray(images, dtype=np.float32), (0, 2, 3, 1))
    return np.clip(np.rint((hwc + 1.0) * 127.5), 0, 255).astype(np.uint8)


def from_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, C] → float32 [N, C, H, W] in [-1, 1]: ``x / 127.5 - 1``."""
    chw = np.transpose(np.asarray(images), (0, 3, 1, 2)).astype(np.float32)
    return chw / 127.5 - 1.0


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


# --- image bytes -------------------------------------------------------------------------------------------------


def decode_image(data: bytes, channels: int, max_pixels: int) -> np.ndarray:
    """PNG/JPEG bytes → uint8 [H, W, C] (C = ``channels``), after checking the header's size against
    ``max_pixels`` *before* decoding (no decompression bombs). Bad bytes raise ``RequestError``."""
    from PIL import Image, ImageOps

    if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
        raise RequestError("input 'image_bytes' is empty: send the bytes of a PNG or JPEG file")
    data = from_base64(bytes(data))
    kind = "PNG" if data.startswith(PNG_MAGIC) else "JPEG" if data.startswith(JPEG_MAGIC) else None
    header = png_size(data)
    if header and header[0] * header[1] > max_pixels:
        raise _too_large(header[0], header[1], max_pixels)
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise RequestError(f"input 'image_bytes' is too large: above the limit of {max_pixels} pixels "
                           "(gandeploy repo --max-pixels)") from None
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, ...
        if kind:
            raise RequestError(f"input 'image_bytes' is a corrupt or truncated {kind} ({exc})") from None
        raise RequestError(f"input 'image_bytes' is not a PNG or JPEG image ({type(exc).__name__})") from None
    if img.format not in ("PNG", "JPEG"):
        raise RequestError(f"input 'image_bytes' must be PNG or JPEG, got {img.format}")
    width, height = img.size
    if width < 1 or height < 1:
        raise RequestError(f"input 'image_bytes' has an empty size {width}x{height}")
    if width * height > max_pixels:
        raise _too_large(width, height, max_pixels)
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
        img = img.convert("RGB" if channels == 3 else "L")
    except Exception as exc:
        raise RequestError(f"input 'image_bytes' is a corrupt or truncated {img.format} ({exc})") from None
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr  # [H, W, C]


def from_base64(data: bytes) -> bytes:
    """``data`` itself when it is binary; the decoded bytes when it is base64 text of a PNG or JPEG (JSON
    bodies over HTTP, optionally as a ``data:image/...;base64,`` URL)."""
    import base64
    import binascii

    if data.startswith(PNG_MAGIC) or data.startswith(JPEG_MAGIC):
        return data
    text = data.strip()
    if text.startswith(b"data:") and b"," in text[:100]:
        text = text.split(b",", 1)[1]
    try:
        decoded = base64.b64decode(b"".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return data
    return decoded if decoded.startswith(PNG_MAGIC) or decoded.startswith(JPEG_MAGIC) else data


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, read without decoding; None for anything else."""
    if len(data) < 24 or not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _too_large(width: int, height: int, max_pixels: int) -> RequestError:
    return RequestError(f"input 'image_bytes' is too large: {width}x{height} = {width * height} pixels, above "
                        f"the limit of {max_pixels} pixels (gandeploy repo --max-pixels; decompression-bomb guard)")


def encode_png(image: np.ndarray) -> bytes:
    """uint8 [H, W, C] (C = 1 or 3) → PNG bytes."""
    from PIL import Image

    arr = image[:, :, 0] if image.shape[2] == 1 else image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def fit_size(height: int, width: int, min_side: int, max_side: int | None, *,
             min_hw: tuple[int, int] | None = None, max_hw: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """Where an HxW image runs through a multiple-of-4 generator.

    Returns (resized_h, resized_w, padded_h, padded_w): the image is scaled down only when a side exceeds its
    limit (aspect kept), then padded on the right/bottom up to multiples of 4 and at least the minimum.
    ``max_side`` / ``min_side`` bound both axes; ``max_hw`` / ``min_hw`` bound H and W separately (the
    TensorRT profile of a non-square export), so the padded size always lies inside them.
    """
    lim_h = min([v for v in (max_side, max_hw[0] if max_hw else 0) if v] or [0])
    lim_w = min([v for v in (max_side, max_hw[1] if max_hw else 0) if v] or [0])
    scale = min(1.0, lim_h / float(height) if lim_h else 1.0, lim_w / float(width) if lim_w else 1.0)
    rh, rw = max(1, int(round(height * scale))), max(1, int(round(width * scale)))
    if lim_h:  # the padded size must stay within the limit too
        rh = min(rh, lim_h - lim_h % SIZE_MULTIPLE)
    if lim_w:
        rw = min(rw, lim_w - lim_w % SIZE_MULTIPLE)
    lo_h, lo_w = min_hw if min_hw else (min_side, min_side)
    ph = max(_round_up(rh, SIZE_MULTIPLE), _round_up(lo_h, SIZE_MULTIPLE))
    pw = max(_round_up(rw, SIZE_MULTIPLE), _round_up(lo_w, SIZE_MULTIPLE))
    return rh, rw, ph, pw


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def prepare_image(image: np.ndarray, size: tuple[int, int, int, int]) -> np.ndarray:
    """uint8 [H, W, C] → float32 [C, PH, PW] in [-1, 1]: resize to (RH, RW) if needed, edge-pad to (PH, PW)."""
    rh, rw, ph, pw = size
    if image.shape[:2] != (rh, rw):
        image = resize(image, rh, rw)
    padded = np.pad(image, ((0, ph - rh), (0, pw - rw), (0, 0)), mode="edge")  # [PH, PW, C]
    return from_uint8(padded[None])[0]  # [C, PH, PW]


def finish_image(output: np.ndarray, size: tuple[int, int, int, int], height: int, width: int) -> np.ndarray:
    """Generator output float [C, PH, PW] → uint8 [H, W, C]: crop the padding, resize back to HxW."""
    rh, rw, _, _ = size
    image = to_uint8(output[None])[0][:rh, :rw]  # [RH, RW, C]
    if (rh, rw) != (height, width):
        image = resize(image, height, width)
    return image


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize of uint8 [H, W, C] to [height, width, C]."""
    from PIL import Image

    if image.shape[2] == 1:
        out = np.asarray(Image.fromarray(image[:, :, 0]).resize((width, height), Image.BICUBIC))[:, :, None]
    else:
        out = np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))
    return np.ascontiguousarray(out, dtype=np.uint8)


def group_indices(keys: list[Any]) -> dict[Any, list[int]]:
    """Positions of ``keys`` grouped by equal key (only equal shapes can share one generator batch)."""
    groups: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups
