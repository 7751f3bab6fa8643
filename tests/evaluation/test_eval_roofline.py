"""The measured roofline and FLOP counting (sanity, never speed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gandeploy.evaluation.bench.roofline import count_flops, flops_per_image, measure_sgemm, torch_threads
from gandeploy.models import cyclegan, dcgan


def test_sgemm_measurement_is_sane() -> None:
    before = torch.get_num_threads()
    threads = 2 if before != 2 else 1  # measure with a count other than the current one
    roof = measure_sgemm(threads=threads, sizes=(64, 128), reps=1, min_seconds=0.01)
    assert roof.threads == threads and set(roof.per_size) == {"64", "128"}
    assert roof.gflops == max(roof.per_size.values()) > 0
    # gflops is measured, so x / 2 / x * 100 may round to 50.00000000000001 (it did at 163.92 in CI)
    assert roof.percent(roof.gflops / 2) == pytest.approx(50.0, rel=1e-12)
    assert torch.get_num_threads() == before  # restored


def test_torch_threads_restores() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_multiply_add_counts_two() -> None:
    lin = nn.Linear(10, 7, bias=False)
    assert count_flops(lin, {"x": np.zeros((3, 10), np.float32)}) == 2 * 3 * 10 * 7
    conv = nn.Conv2d(4, 5, 3, padding=1, bias=False)
    assert count_flops(conv, {"x": np.zeros((1, 4, 6, 6), np.float32)}) == 2 * 4 * 5 * 9 * 36


def test_generator_flops_match_hand_counts() -> None:
    """DCGAN 64x64 (ngf 64, nz 100): 0.209 GFLOP per image; per-image figures do not depend on the batch."""
    g = dcgan.build_generator(dcgan.DCGANConfig()).eval()
    one = flops_per_image(g, {"z": np.zeros((1, 100), np.float32)})
    assert abs(one / 1e9 - 0.2093) < 0.001
    assert flops_per_image(g, {"z": np.zeros((4, 100), np.float32)}) == one
    # CycleGAN scales with pixels: 2x the width = 2x the FLOPs
    c = cyclegan.build_generator(cyclegan.CycleGANConfig(ngf=4, n_blocks=1)).eval()
    small = flops_per_image(c, {"image": np.zeros((1, 3, 16, 16), np.float32)})
    wide = flops_per_image(c, {"image": np.zeros((1, 3, 16, 32), np.float32)})
    assert wide == 2 * small


def test_triad_bandwidth_is_sane_and_windows_are_long() -> None:
    import time

    from gandeploy.evaluation.bench.roofline import measure_triad

    start = time.perf_counter()
    best, median = measure_triad(threads=1, elements=1 << 20, reps=3, min_seconds=0.15)
    assert time.perf_counter() - start >= 3 * 0.15  # every window lasts at least min_seconds
    assert best >= median > 0.1  # GB/s: any machine moves more than 100 MB/s


def test_attainable_is_the_lower_roof() -> None:
    from gandeploy.evaluation.bench.roofline import Roofline

    roof = Roofline(gflops=100.0, threads=1, sizes=(64,), per_size={"64": 100.0}, bandwidth_gbs=10.0)
    assert roof.ridge == 10.0
    assert roof.attainable(2.0) == 20.0 and roof.bound(2.0) == "memory"  # 2 FLOPs/byte x 10 GB/s
    assert roof.attainable(50.0) == 100.0 and roof.bound(50.0) == "compute"
    assert Roofline(100.0, 1, (64,), {"64": 100.0}).attainable(2.0) == 100.0  # no memory roof measured


def test_intensity_hand_count() -> None:
    """A bias-free Linear 10 -> 7 at batch 3: 2·3·10·7 FLOPs over (70 weights + 30 inputs + 21 outputs) x 4 bytes."""
    from gandeploy.evaluation.bench.roofline import bytes_per_item, intensity

    lin = nn.Linear(10, 7, bias=False)
    feeds = {"x": np.zeros((3, 10), np.float32)}
    assert bytes_per_item(lin, feeds) == (70 + 30 + 21) * 4 / 3
    assert intensity(lin, feeds) == 2 * 3 * 10 * 7 / ((70 + 30 + 21) * 4)
