"""2D Gaussian-mixture benchmarks for mode collapse (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018).

* ``ring8``: 8 Gaussians evenly spaced on a circle of radius 2, std 0.02.
* ``grid25``: 25 Gaussians centred on {-4, -2, 0, 2, 4}², std 0.05.
* ``mix1d``: two Gaussians on the line at -2 and +2, std 0.5 — p_r in closed form for the D* check
  (``gandeploy diagnose``; evaluation/studies/diagnose.py).

Points are drawn fresh for every batch (item ``i`` comes from mode ``i mod K``, its noise from the step's
generator), so an "epoch" is a nominal ``EPOCH_SIZE`` points. Evaluation: metrics/mixtures.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from gandeploy.data import KIND_POINTS

RING8_RADIUS, RING8_STD = 2.0, 0.02
GRID25_STEP, GRID25_STD = 2.0, 0.05
MIX1D_CENTRES, MIX1D_STD = (-2.0, 2.0), 0.5
EPOCH_SIZE = 51_200
TEST_SEED = 12_345


def ring8_centres() -> torch.Tensor:
    """[8, 2]: radius 2, angles 2πk/8."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return (RING8_RADIUS * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid25_centres() -> torch.Tensor:
    """[25, 2]: the grid {-4, -2, 0, 2, 4}²."""
    axis = torch.arange(-2, 3, dtype=torch.float32) * GRID25_STEP  # [5]
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1)


class MixtureDataset:
    """An equal-weight mixture of isotropic Gaussians with centres [K, D] (D = 1 or 2 here)."""

    kind = KIND_POINTS
    class_names = None

    def __init__(self, name: str, centres: torch.Tensor, std: float, size: int = EPOCH_SIZE) -> None:
        self.name, self.centres, self.std, self.size = name, centres, float(std), int(size)
        self.data_dim = int(centres.shape[1])

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """p_r(x) for points ``x`` [N, D], in closed form: mean over modes of N(x; c_k, std² I). [N] float64."""
        x64, c = x.double(), self.centres.double()
        sq = torch.cdist(x64, c) ** 2  # [N, K]
        norm = (2 * math.pi * self.std**2) ** (self.data_dim / 2)
        return torch.exp(-sq / (2 * self.std**2)).mean(dim=1) / norm

    def __len__(self) -> int:
        return self.size

    def get_batch(self, indices: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, None]:
        """points [B, D]: mode ``index mod K`` plus N(0, std²) noise from ``gen``."""
        modes = indices % self.centres.shape[0]  # [B]
        noise = torch.randn(indices.shape[0], self.data_dim, generator=gen)  # [B, D]
        return self.centres[modes] + self.std * noise, None

    def sample(self, n: int, seed: int = TEST_SEED) -> torch.Tensor:
        """``n`` points [n, D] drawn with a fixed seed."""
        gen = torch.Generator().manual_seed(seed)
        modes = torch.randint(0, self.centres.shape[0], (n,), generator=gen)
        return self.centres[modes] + self.std * torch.randn(n, self.data_dim, generator=gen)

    def test_batch(self, n: int) -> tuple[torch.Tensor, None]:
        return self.sample(n), None


def open_ring8(name: str = "ring8", *, image_size: Any = None, channels: Any = None, split: str = "train",
               data_root: Path | None = None, augment: Any = None) -> MixtureDataset:
    return MixtureDataset("ring8", ring8_centres(), RING8_STD)


def open_grid25(name: str = "grid25", *, image_size: Any = None, channels: Any = None, split: str = "train",
                data_root: Path | None = None, augment: Any = None) -> MixtureDataset:
    return MixtureDataset("grid25", grid25_centres(), GRID25_STD)


def open_mix1d(name: str = "mix1d", *, image_size: Any = None, channels: Any = None, split: str = "train",
               data_root: Path | None = None, augment: Any = None) -> MixtureDataset:
    return MixtureDataset("mix1d", torch.tensor(MIX1D_CENTRES).reshape(-1, 1), MIX1D_STD)
