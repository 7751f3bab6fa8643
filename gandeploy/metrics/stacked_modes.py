"""Mode coverage on ``stacked-digits`` (data/stacked.py), the stacked-MNIST protocol of VEEGAN and PacGAN.

``N_SAMPLES`` (26,000, as in those papers) pictures are generated; each of the three channels is read by the
held-out digits judge (classifier.py, fitted on digits no GAN trains on), which gives every picture one of
10 x 10 x 10 = 1,000 modes. Reported: the modes with at least one sample (the papers' count) and
KL(p̂ ‖ uniform) of the mode histogram in nats (0 when all 1,000 modes hold the same share; log 1000 ≈ 6.91
when every sample falls on one mode). Mode counts use the whole batch: there is no "high quality" filter here
(the judge always names a digit), so ``high_quality`` is None and the tables show a dash.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gandeploy.data.stacked import N_MODES

N_SAMPLES = 26_000


@dataclass(frozen=True)
class StackedStats:
    """Samples per mode (index 100 R + 10 G + B) and the judge's mean confidence per channel."""

    counts: tuple[int, ...]
    confidence: float = float("nan")

    @property
    def modes_covered(self) -> int:
        return int(sum(1 for c in self.counts if c > 0))

    @property
    def kl(self) -> float:
        """KL(p̂ ‖ uniform over the 1,000 modes) in nats; modes without samples add nothing."""
        return kl_to_uniform(np.asarray(self.counts))

    @property
    def channel_kl(self) -> tuple[float, float, float]:
        """KL(p̂ of each channel's digit ‖ uniform over 10) for R, G, B, in nats: the digits drawn unevenly."""
        joint = np.asarray(self.counts).reshape(10, 10, 10)  # [R, G, B]
        return tuple(kl_to_uniform(joint.sum(axis=tuple(a for a in range(3) if a != c))) for c in range(3))

    @property
    def total_correlation(self) -> float:
        """``kl`` − the three ``channel_kl``: the part of the KL from channels that are not drawn independently
        (KL(p̂ ‖ product of its marginals), nats)."""
        return self.kl - sum(self.channel_kl)

    def to_json(self) -> dict[str, object]:
        return {"modes": self.modes_covered, "n_modes": len(self.counts), "reverse_kl": self.kl,
                "channel_kl": list(self.channel_kl), "total_correlation": self.total_correlation,
                "high_quality": None, "n": int(sum(self.counts)),
                "judge_confidence": None if math.isnan(self.confidence) else self.confidence,
                "counts_top": sorted((int(c) for c in self.counts), reverse=True)[:10]}

    def __str__(self) -> str:
        return f"{self.modes_covered}/{len(self.counts)} modes, KL {self.kl:.3f} over {sum(self.counts)} samples"


def kl_to_uniform(counts: np.ndarray) -> float:
    """KL(counts / total ‖ uniform over len(counts) bins), nats."""
    total = float(counts.sum())
    if total == 0:
        return float("inf")
    p = counts[counts > 0].astype(np.float64) / total
    return float((p * np.log(p * len(counts))).sum())


def mode_histogram(digits: torch.Tensor | np.ndarray) -> np.ndarray:
    """digits [N, 3] (the R, G, B readings) → samples per mode [1000]."""
    d = np.asarray(digits, dtype=np.int64)
    return np.bincount(d[:, 0] * 100 + d[:, 1] * 10 + d[:, 2], minlength=N_MODES)


@torch.no_grad()
def read_channels(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(digits [N, 3], confidence [N, 3]): each channel of images [N, 3, S, S] in [-1, 1] read by the judge."""
    from gandeploy.metrics.classifier import classify_digits

    n, c = images.shape[:2]
    pred, conf = classify_digits(images.reshape(n * c, 1, *images.shape[2:]))  # [N * 3]
    return pred.reshape(n, c), conf.reshape(n, c)


def stacked_stats(images: torch.Tensor) -> StackedStats:
    digits, conf = read_channels(images)
    return StackedStats(tuple(int(v) for v in mode_histogram(digits)), float(conf.mean()))


def real_reference(n: int = N_SAMPLES, split: str = "train") -> StackedStats:
    """``n`` real stacks scored like generated ones: the floor a generator's KL can reach (the judge misreads some
    real digits, and 26,000 draws of 1,000 modes are not exactly uniform). ``split``: the digits stacked."""
    from gandeploy.data.stacked import TRIPLE_SEED, StackedDigits

    ds = StackedDigits(split, 32, n, TRIPLE_SEED + 7)  # triples the training set does not use
    return stacked_stats(ds.get_batch(torch.arange(n))[0])


def write_real_reference(path: str | os.PathLike[str], n: int = N_SAMPLES) -> dict[str, object]:
    """``real_reference`` of both splits as JSON at ``path`` (docs/results/modes-stacked/real-reference.json)."""
    from gandeploy.utils.io import atomic_write_json

    out = {split: {**real_reference(n, split).to_json(), "what": f"{n} real stacks of {split}-split digits"}
           for split in ("train", "test")}
    atomic_write_json(Path(path), out)
    return out
