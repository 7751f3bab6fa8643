"""The generator's effective receptive field, measured: how far a one-pixel input change moves the output.

Tiled serving is seamless only when tiles overlap by at least this radius, so ``export`` measures it and records
``manifest["receptive_field"] = {"radius": R, "threshold_levels": 0.1, "measured_on": ..., "bounded": ...}``
(the serving side reads ``radius`` for its default tile overlap).

Method, on a real picture (``calibration.shipped_photo``) in the input's declared range: a square centre crop of
side S; ``PROBES`` pixels (the centre and one off-centre) are each replaced by the far end of the range (dark
pixels become white, bright ones black), all channels, one copy of the picture per probe, run in one batch with
the unchanged picture. The output footprint of a probe is every output pixel that moved by more than
``threshold_levels`` uint8 levels of the output's declared range in any channel; its radius is the largest
Chebyshev distance, in *input* pixels (output coordinates divided by ``scale``), from the probe. When a
footprint reaches the crop's border the crop was too small: S doubles (from ``START_SIDE``) up to ``max_side``.
A footprint still reaching the border at ``max_side`` means the field is at least that large — global for
models with instance normalisation, whose statistics every pixel moves — and is recorded ``"bounded": false``
with the radius seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gandeploy.models.io import GeneratorIO, from_uint8
from gandeploy.utils.logging import get_logger

log = get_logger("export.receptive_field")

THRESHOLD_LEVELS = 0.1
START_SIDE = 32
MAX_SIDE = 256


def _probes(side: int) -> list[tuple[int, int]]:
    """The centre and a point an eighth of the side up and left of it."""
    c = side // 2
    return [(c, c), (c - side // 8, c - side // 8)]


def probe_once(run: Callable[[np.ndarray], np.ndarray], io_spec: GeneratorIO, crop: np.ndarray,
               threshold: float) -> tuple[int, bool]:
    """(radius in input pixels, bounded) for one crop uint8 [S, S, C] (module docstring)."""
    image = io_spec.image_input
    if image is None:
        raise ValueError("the receptive field is measured for generators with a picture input only")
    lo, hi = image.value_range
    out_lo, out_hi = io_spec.outputs[0].value_range
    scale = io_spec.scale
    side = crop.shape[0]
    x = from_uint8(crop[None], image.value_range)  # [1, C, S, S]
    batch = [x]
    for y, x0 in _probes(side):
        moved = x.copy()
        moved[0, :, y, x0] = np.where(x[0, :, y, x0] < (lo + hi) / 2, hi, lo)
        batch.append(moved)
    out = run(np.concatenate(batch))  # [1 + P, C, sS, sS]
    radius, bounded = 0, True
    for i, (y, x0) in enumerate(_probes(side), start=1):
        levels = np.abs(out[i] - out[0]).max(axis=0) * (255.0 / (out_hi - out_lo))  # [sS, sS]
        ys, xs = np.nonzero(levels > threshold)
        if ys.size == 0:
            continue
        r = int(max(np.abs(ys // scale - y).max(), np.abs(xs // scale - x0).max()))
        radius = max(radius, r)
        room = min(y, x0, side - 1 - y, side - 1 - x0)  # distance from the probe to the crop's border
        bounded = bounded and r < room
    return radius, bounded


def measure_receptive_field(run: Callable[[np.ndarray], np.ndarray], io_spec: GeneratorIO, picture: np.ndarray,
                            *, picture_name: str, threshold: float = THRESHOLD_LEVELS,
                            max_side: int = MAX_SIDE) -> dict[str, Any]:
    """The manifest's ``receptive_field`` entry for a generator ``run`` (float32 [N, C, H, W] → output) with a
    picture input, probed on ``picture`` uint8 [H, W, C] (module docstring)."""
    start = time.perf_counter()
    k = io_spec.size_multiple
    side = max(START_SIDE // k * k, 4 * k)
    limit = max(side, max_side // k * k)
    while True:
        pad = max(0, side - min(picture.shape[:2]))
        source = np.pad(picture, ((pad, pad), (pad, pad), (0, 0)), mode="reflect") if pad else picture
        top, left = (source.shape[0] - side) // 2, (source.shape[1] - side) // 2
        radius, bounded = probe_once(run, io_spec, source[top:top + side, left:left + side], threshold)
        log.debug("receptive field at %dx%d: radius %d (%s)", side, side, radius, "bounded" if bounded else "open")
        if bounded or side >= limit:
            break
        side = min(limit, side * 2)
    entry = {"radius": int(radius), "threshold_levels": threshold, "bounded": bool(bounded),
             "measured_on": f"{picture_name}, centre crop {side}x{side}, {len(_probes(side))} probe pixels",
             "probe_side": side, "seconds": round(time.perf_counter() - start, 2)}
    log.info("receptive field: radius %d input pixels%s (%s)", radius,
             "" if bounded else f" or more (reaches the {side}x{side} crop's border)", entry["measured_on"])
    return entry
