"""Mode coverage on the 2D mixtures (the VEEGAN / PacGAN protocol).

Each generated point belongs to its nearest mode centre. It is *high quality* when it lies within
``n_sigma`` (3) standard deviations of that centre; a mode is *covered* when it has at least ``min_count``
high-quality points (PacGAN: 20 of 2,500 samples). ``reverse_kl`` is KL(p̂_g ‖ uniform) of the
high-quality points' mode histogram (PacGAN's "reverse KL"): 0 when every mode holds the same share, log K
when all of them sit on one mode; modes with no points add nothing, so it punishes lopsided weights, and the
mode count punishes dropped modes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

MIN_COUNT_PER_2500 = 20
N_SAMPLES = 2500


@dataclass(frozen=True)
class ModeStats:
    """Modes covered out of ``n_modes``, the fraction of high-quality samples, and points per mode."""

    modes_covered: int
    n_modes: int
    high_quality: float  # fraction in [0, 1]
    counts: tuple[int, ...]  # high-quality points per mode

    @property
    def reverse_kl(self) -> float:
        """KL(p̂_g ‖ uniform) in nats over the high-quality points' modes (inf when there are none)."""
        total = float(sum(self.counts))
        if total == 0:
            return float("inf")
        p = np.asarray(self.counts, dtype=np.float64) / total
        p = p[p > 0]
        return float((p * np.log(p * self.n_modes)).sum())

    def to_json(self) -> dict[str, float | int | list[int]]:
        kl = self.reverse_kl  # None in JSON when no point is high quality (strict JSON has no infinity)
        return {"modes": self.modes_covered, "n_modes": self.n_modes, "high_quality": self.high_quality,
                "reverse_kl": kl if np.isfinite(kl) else None, "counts": list(self.counts)}

    def __str__(self) -> str:
        return (f"{self.modes_covered}/{self.n_modes} modes, {100 * self.high_quality:.1f} % high-quality, "
                f"reverse KL {self.reverse_kl:.3f}")


def mode_stats(samples: torch.Tensor | np.ndarray, centres: torch.Tensor | np.ndarray, std: float,
               n_sigma: float = 3.0, min_count: int | None = None) -> ModeStats:
    """Coverage of ``centres`` [K, 2] by ``samples`` [N, 2] drawn from a generator."""
    x = torch.as_tensor(np.asarray(samples), dtype=torch.float64)  # [N, 2]
    c = torch.as_tensor(np.asarray(centres), dtype=torch.float64)  # [K, 2]
    dist = torch.cdist(x, c)  # [N, K]
    nearest_d, nearest = dist.min(dim=1)  # [N], [N]
    good = nearest_d <= n_sigma * std  # [N]
    counts = torch.bincount(nearest[good], minlength=c.shape[0])  # [K]
    if min_count is None:
        min_count = max(1, round(MIN_COUNT_PER_2500 * x.shape[0] / 2500))
    return ModeStats(
        modes_covered=int((counts >= min_count).sum()),
        n_modes=int(c.shape[0]),
        high_quality=float(good.double().mean()) if x.shape[0] else 0.0,
        counts=tuple(int(v) for v in counts),
    )
