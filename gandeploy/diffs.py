"""Differences between a reference output (PyTorch FP32) and a candidate backend's output.

Float outputs are measured in tanh-space units [-1, 1] (data range 2 for PSNR); images are also compared after
the one float → uint8 map (``gandeploy.models.io.to_uint8``) of their declared ``value_range``, in uint8 levels,
because that is what users receive. An image declared in another range (lo, hi) — (0, 1) for Real-ESRGAN-style
models — has its float errors scaled by ``2 / (hi - lo)`` (``range_scale``), so the one tolerance table means
the same share of the picture's range, and one uint8 level is still 1/127.5 of those units.

Vector outputs ([N, D] points, e.g. the 2D mixtures) are not bounded to [-1, 1]: grid25's points reach ±4.2.
Their errors are measured relative to the reference's extent, divided by ``max(1, max |reference|)``, so the
one tolerance table (tolerances.py, written for range [-1, 1]) means the same share of the data's range.
FP16 rounds relative to magnitude, so an absolute bound would fail a correct export of wide-range data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gandeploy.models.io import DEFAULT_RANGE, from_uint8, to_uint8

DATA_RANGE = 2.0  # tanh outputs span [-1, 1]


@dataclass(frozen=True)
class Diff:
    """Error of one candidate against its reference. ``uint8_*`` are in levels (None for non-image outputs)."""

    max_abs: float
    mean_abs: float
    psnr: float  # dB over data range 2; inf when identical
    uint8_max: int | None
    uint8_mean: float | None
    numel: int

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["psnr"] = None if math.isinf(self.psnr) else round(self.psnr, 2)  # JSON has no inf
        return data


def psnr(reference: np.ndarray, candidate: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` when the arrays are equal."""
    mse = float(np.mean((reference.astype(np.float64) - candidate.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def level_diff(reference_u8: np.ndarray, candidate_u8: np.ndarray) -> tuple[int, float]:
    """Max and mean absolute difference between two uint8 arrays, in levels."""
    diff = np.abs(reference_u8.astype(np.int16) - candidate_u8.astype(np.int16))
    return int(diff.max(initial=0)), float(diff.mean()) if diff.size else 0.0


def _check_shapes(reference: np.ndarray, candidate: np.ndarray) -> None:
    if reference.shape != candidate.shape:
        raise ValueError(f"shape mismatch: reference {reference.shape} vs candidate {candidate.shape}")


def range_scale(value_range: tuple[float, float] = DEFAULT_RANGE) -> float:
    """Factor from an image's declared range to tanh-space units: ``2 / (hi - lo)`` (1 for [-1, 1])."""
    return 2.0 / (float(value_range[1]) - float(value_range[0]))


def compare_float(reference: np.ndarray, candidate: np.ndarray,
                  value_range: tuple[float, float] = DEFAULT_RANGE) -> Diff:
    """Compare two float outputs; images ([N, C, H, W], in ``value_range``) also in uint8 levels after
    ``to_uint8``, float figures in tanh-space units; vectors ([N, D]) relative to the reference's extent
    (module docstring)."""
    reference = np.asarray(reference, dtype=np.float32)
    candidate = np.asarray(candidate, dtype=np.float32)
    _check_shapes(reference, candidate)
    abs_diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    if reference.ndim == 2:  # vectors: relative to the data's extent
        abs_diff /= max(1.0, float(np.abs(reference).max(initial=0.0)))
    elif reference.ndim == 4:  # images: in tanh-space units of their declared range
        abs_diff *= range_scale(value_range)
    finite = bool(np.isfinite(candidate).all())
    max_abs = float(abs_diff.max(initial=0.0)) if finite else math.inf
    mean_abs = float(abs_diff.mean()) if finite and abs_diff.size else (0.0 if finite else math.inf)
    u8_max: int | None = None
    u8_mean: float | None = None
    if reference.ndim == 4:
        worst = float(value_range[1]) + 1.0  # NaN pixels count as far off
        u8_max, u8_mean = level_diff(to_uint8(reference, value_range),
                                     to_uint8(np.nan_to_num(candidate, nan=worst), value_range))
    if reference.ndim == 4 and finite:
        unit = range_scale(value_range)
        value = psnr(reference * unit, candidate * unit)
    else:
        value = psnr(reference, candidate) if finite else 0.0
    return Diff(max_abs, mean_abs, value, u8_max, u8_mean, int(reference.size))


def compare_uint8(reference_u8: np.ndarray, candidate_u8: np.ndarray) -> Diff:
    """Compare two uint8 images [N, H, W, C]; float figures are in tanh space (``from_uint8``)."""
    reference_u8 = np.asarray(reference_u8)
    candidate_u8 = np.asarray(candidate_u8)
    _check_shapes(reference_u8, candidate_u8)
    if reference_u8.dtype != np.uint8 or candidate_u8.dtype != np.uint8:
        raise ValueError(f"expected uint8 arrays, got {reference_u8.dtype} and {candidate_u8.dtype}")
    u8_max, u8_mean = level_diff(reference_u8, candidate_u8)
    ref_f, cand_f = from_uint8(reference_u8), from_uint8(candidate_u8)
    abs_diff = np.abs(ref_f - cand_f)
    return Diff(float(abs_diff.max(initial=0.0)), float(abs_diff.mean()) if abs_diff.size else 0.0,
                psnr(ref_f, cand_f), u8_max, u8_mean, int(reference_u8.size))
