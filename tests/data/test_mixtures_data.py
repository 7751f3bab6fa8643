"""ring8 / grid25: the VEEGAN / PacGAN mixtures, and the mode-coverage metric on known samples."""

from __future__ import annotations

import math

import pytest
import torch

from gandeploy.data import open_dataset
from gandeploy.data.mixtures import GRID25_STD, RING8_STD, grid25_centres, ring8_centres
from gandeploy.metrics.mixtures import mode_stats


def test_mixture_geometry() -> None:
    ring = ring8_centres()
    assert ring.shape == (8, 2) and torch.allclose(ring.norm(dim=1), torch.full((8,), 2.0))
    angles = torch.atan2(ring[:, 1], ring[:, 0]).remainder(2 * math.pi).sort().values
    assert torch.allclose(angles.diff(), torch.full((7,), math.pi / 4), atol=1e-6)
    grid = grid25_centres()
    assert grid.shape == (25, 2) and sorted(set(grid[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert (RING8_STD, GRID25_STD) == (0.02, 0.05)


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_batches_are_deterministic_and_on_the_modes(name: str) -> None:
    ds = open_dataset(name, "gan")
    idx = torch.arange(2500)
    a, y = ds.get_batch(idx, torch.Generator().manual_seed(3))
    b, _ = ds.get_batch(idx, torch.Generator().manual_seed(3))
    assert y is None and a.shape == (2500, 2) and torch.equal(a, b)
    stats = mode_stats(a, ds.centres, ds.std)
    assert stats.modes_covered == stats.n_modes and stats.high_quality > 0.98  # 3σ holds 98.9 % in 2D


def test_mode_stats_sees_collapse_and_off_mode_points() -> None:
    ds = open_dataset("ring8", "gan")
    one_mode = ds.centres[2] + ds.std * torch.randn(2500, 2, generator=torch.Generator().manual_seed(0))
    collapsed = mode_stats(one_mode, ds.centres, ds.std)
    assert collapsed.modes_covered == 1 and collapsed.counts[2] > 2400
    blur = mode_stats(torch.randn(2500, 2, generator=torch.Generator().manual_seed(0)), ds.centres, ds.std)
    assert blur.high_quality < 0.05
    two = torch.cat([one_mode[:2490], ds.centres[5].expand(10, 2)])  # 10 points: below PacGAN's 20 / 2500
    assert mode_stats(two, ds.centres, ds.std).modes_covered == 1
    assert mode_stats(two, ds.centres, ds.std, min_count=10).modes_covered == 2


def test_reverse_kl_is_zero_for_even_modes_and_log_k_for_one() -> None:
    ds = open_dataset("ring8", "gan")
    even = mode_stats(ds.centres.repeat(300, 1), ds.centres, ds.std)  # 300 exact centre points per mode
    assert even.reverse_kl == pytest.approx(0.0, abs=1e-12)
    one = mode_stats(ds.centres[2].expand(100, 2), ds.centres, ds.std)
    assert one.reverse_kl == pytest.approx(math.log(8))
    half = mode_stats(ds.centres[:4].repeat(50, 1), ds.centres, ds.std)  # 4 of 8 modes, evenly
    assert half.reverse_kl == pytest.approx(math.log(2)) and half.to_json()["modes"] == 4
    far = mode_stats(torch.full((10, 2), 50.0), ds.centres, ds.std)  # no high-quality point at all
    assert far.reverse_kl == math.inf and far.to_json()["reverse_kl"] is None
