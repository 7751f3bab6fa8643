"""The one tolerance table: how far a backend may stray from the PyTorch FP32 reference.

Keyed by (precision, output kind). ``float`` rows bound the raw generator output in tanh space [-1, 1];
``uint8`` rows bound served images (levels 0..255, one level = 1/127.5 ≈ 0.0078 in tanh space).

Why these figures:

* fp32 / float — max abs 1e-4, mean abs 1e-5 (the export-time bound too). Two FP32 backends differ only in
  accumulation order (MLAS vs oneDNN GEMM blocking, Winograd or im2col, fused BN or not): each dot product of
  K terms carries ~sqrt(K)·2^-24 relative error, a few 1e-7 per layer. Measured worst cases: DCGAN 64x64
  4.1e-6, CycleGAN 256x256 (ngf 64, 9 blocks) 6.7e-6, served generator vs in-process ORT ~1e-5 — so 1e-4
  leaves >10x margin and is 78x below one uint8 level. A wrong or corrupted weight moves outputs by ≥ 1e-2.
  Those figures hold for well-conditioned cases only. Where a layer divides rounding noise by a tiny spread
  (InstanceNorm over a 2x2 bottleneck: a CycleGAN at 8x8), any two correct FP32 implementations differ by far
  more, so an FP32 case is bounded by ``max(table, FLOOR_FACTOR × floor)``, ``floor`` being that case's own
  FP32 noise floor, |PyTorch FP32 − PyTorch float64| (max abs and mean abs, measured in the same units:
  ``noise_floor``, ``floored``). Measured floors: DCGAN 64x64 (ngf 64) 3.3e-6, CycleGAN (ngf 64, 9 blocks,
  untrained) 2.5e-6 at 256x256 but 1.7e-4..7.6e-4 (mean abs 7e-6..9e-6) at batch 64 at 8x8, where ONNX
  Runtime differed from PyTorch by 1.1-1.5x the floor (max abs 2.6e-4..8.3e-4, mean abs up to 1.07e-5).
* fp16 / float — max abs 2e-2, mean abs 2e-3, uint8 ≤ 2 levels. FP16 keeps a 10-bit mantissa (unit
  roundoff 2^-11 ≈ 4.9e-4); activations are rounded at every layer, so errors grow with depth
  (~sqrt(depth)·4.9e-4 relative, times activation magnitude) and tanh compresses them near ±1. Measured:
  DCGAN ~1e-3..3e-3, CycleGAN (InstanceNorm kept in FP32) ~1e-3..5e-3; attention generators (untrained,
  γ = 1, batch 8-16): SAGAN 64x64 1.2e-3, BigGAN 64x64 (ngf 64) 8.7e-3, BigGAN 128x128 (ngf 64) 2.6e-2 —
  above the bound (a deep residual G with conditional BN at 128 px: judge with trained weights). 2e-2
  (about 2.5 levels) is the export-time bound too; the separate 2-level bound on the uint8 picture is what users see.
* fp32 / uint8 — max 1 level, mean 0.05 levels. Rounding ``(x + 1)·127.5`` to the nearest level flips by one
  whenever the reference sits within the FP32 error of a .5 boundary; a few pixels in a thousand do. Any
  2-level move means the served path computes something else (wrong preprocessing, wrong seed → latent map).
* fp16 / uint8 — max 2 levels, mean 0.5 levels: the FP16 float bound above, seen through the same rounding.
* int8 — no per-pixel bound. An 8-bit activation grid moves single pixels by many levels (DCGAN: max abs ~0.3)
  while the distribution is unchanged, and a per-pixel bound tight enough to catch a broken model would refuse
  every good one. INT8 is judged by its distribution instead (gandeploy.evaluation.parity.int8_verdict: KID between
  FP32 and INT8 samples within its std; picture inputs: PSNR vs FP32 >= 30 dB); parity reports the pixel
  figures and takes that verdict as the row's pass/fail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from gandeploy.diffs import Diff, compare_float
from gandeploy.models.io import DEFAULT_RANGE

PRECISIONS = ("fp32", "fp16", "int8")
KINDS = ("float", "uint8")

# An FP32 case may differ from the PyTorch FP32 reference by up to FLOOR_FACTOR × its own FP32 noise floor
# (|FP32 − float64| of the reference). Each correct FP32 implementation errs by about the floor against the
# exact result, so two of them differ by about 2 × floor (triangle inequality); the floor is itself one draw
# of heavy-tailed noise (the max of a few hundred amplified roundings), so 4 leaves 2x room over that.
# Measured ONNX Runtime vs PyTorch, over the floor: CycleGAN (ngf 64, 9 blocks) at 8x8, 3 initialisations,
# 1.1-1.5x (max abs) and 1.2x (mean abs); a tiny CycleGAN with a planted near-constant bottleneck channel,
# 126 cases: max abs median 1.2x, p90 1.7x, worst 2.8x; mean abs median 1.2x, worst 2.3x.
FLOOR_FACTOR = 4.0


@dataclass(frozen=True)
class Tolerance:
    """Upper bounds on a ``Diff``; ``None`` means that figure is not bounded for this kind."""

    max_abs: float | None
    mean_abs: float | None
    uint8_max: int | None
    uint8_mean: float | None

    def breaches(self, diff: Diff) -> list[str]:
        """Human-readable list of bounds ``diff`` exceeds (empty: within tolerance)."""
        out = []
        for field in ("max_abs", "mean_abs", "uint8_max", "uint8_mean"):
            bound = getattr(self, field)
            value = getattr(diff, field)
            if bound is None or value is None:
                continue
            if not value <= bound:  # also catches NaN
                out.append(f"{field} {value:.3g} > {bound:.3g}")
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("fp32", "float"): Tolerance(max_abs=1e-4, mean_abs=1e-5, uint8_max=1, uint8_mean=0.05),
    ("fp16", "float"): Tolerance(max_abs=2e-2, mean_abs=2e-3, uint8_max=2, uint8_mean=0.5),
    ("fp32", "uint8"): Tolerance(max_abs=None, mean_abs=None, uint8_max=1, uint8_mean=0.05),
    ("fp16", "uint8"): Tolerance(max_abs=None, mean_abs=None, uint8_max=2, uint8_mean=0.5),
    ("int8", "float"): Tolerance(max_abs=None, mean_abs=None, uint8_max=None, uint8_mean=None),  # distribution
    ("int8", "uint8"): Tolerance(max_abs=None, mean_abs=None, uint8_max=None, uint8_mean=None),  # distribution
}


def tolerance_for(precision: str, kind: str = "float", floor: Diff | None = None) -> Tolerance:
    """The bound for a backend of ``precision`` ('fp32' | 'fp16') whose output is ``kind`` ('float' | 'uint8');
    ``floor``: the case's FP32 noise floor (``noise_floor``), which widens FP32 float bounds (``floored``)."""
    try:
        table = TOLERANCES[(precision, kind)]
    except KeyError:
        raise ValueError(f"no tolerance for precision '{precision}' and output kind '{kind}'; "
                         f"known: {sorted(TOLERANCES)}") from None
    return floored(table, floor) if (precision, kind) == ("fp32", "float") else table


def above_floor(bound: float | None, floor: float | None) -> float | None:
    """The one rule: ``max(bound, FLOOR_FACTOR × floor)``; ``bound`` unchanged without a floor (or a bound)."""
    return bound if bound is None or floor is None else max(bound, FLOOR_FACTOR * floor)


def floored(tolerance: Tolerance, floor: Diff | None) -> Tolerance:
    """``tolerance`` with its max abs and mean abs bounds raised to ``FLOOR_FACTOR`` × the case's noise floor
    (``above_floor``); uint8 bounds unchanged. ``floor`` None (no float64 reference): the table's bounds."""
    if floor is None:
        return tolerance
    return replace(tolerance, max_abs=above_floor(tolerance.max_abs, floor.max_abs),
                   mean_abs=above_floor(tolerance.mean_abs, floor.mean_abs))


def noise_floor(fp32: np.ndarray, fp64: np.ndarray | None,
                value_range: tuple[float, float] = DEFAULT_RANGE) -> Diff | None:
    """A case's FP32 noise floor: the reference's FP32 output against its float64 output, measured like every
    backend (``compare_float``: tanh-space units of ``value_range``, vectors relative to their extent); None
    when there is no float64 output."""
    return None if fp64 is None else compare_float(fp64, fp32, value_range)
