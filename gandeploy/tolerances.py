"""The one tolerance table: how far a backend may stray from the PyTorch FP32 reference.

Keyed by (precision, output kind). ``float`` rows bound the raw generator output in tanh space [-1, 1];
``uint8`` rows bound served images (levels 0..255, one level = 1/127.5 ≈ 0.0078 in tanh space).

Why these figures:

* fp32 / float — max abs 1e-4, mean abs 1e-5 (the export-time bound too). Two FP32 backends differ only in
  accumulation order (MLAS vs oneDNN GEMM blocking, Winograd or im2col, fused BN or not): each dot product of
  K terms carries ~sqrt(K)·2^-24 relative error, a few 1e-7 per layer. Measured worst cases: DCGAN 64x64
  4.1e-6, CycleGAN 256x256 (ngf 64, 9 blocks) 6.7e-6, served generator vs in-process ORT ~1e-5 — so 1e-4
  leaves >10x margin and is 78x below one uint8 level. A wrong or corrupted weight moves outputs by ≥ 1e-2.
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

from dataclasses import asdict, dataclass
from typing import Any

from gandeploy.diffs import Diff

PRECISIONS = ("fp32", "fp16", "int8")
KINDS = ("float", "uint8")


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


def tolerance_for(precision: str, kind: str = "float") -> Tolerance:
    """The bound for a backend of ``precision`` ('fp32' | 'fp16') whose output is ``kind`` ('float' | 'uint8')."""
    try:
        return TOLERANCES[(precision, kind)]
    except KeyError:
        raise ValueError(f"no tolerance for precision '{precision}' and output kind '{kind}'; "
                         f"known: {sorted(TOLERANCES)}") from None
