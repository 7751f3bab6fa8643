"""A measured compute roofline: the best SGEMM rate this machine reaches on the benchmark's thread count.

A generator is dense convolutions, i.e. GEMMs; the fastest FP32 GEMM the CPU sustains is a fair ceiling for
it. ``% of roofline = (GFLOP per image × images/s) / SGEMM GFLOP/s``. FLOPs are counted by
``torch.utils.flop_counter.FlopCounterMode`` on the generator, one multiply-add = 2 FLOPs (its convention).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from gandeploy.utils.logging import get_logger

log = get_logger("roofline")

SGEMM_SIZES = (1024, 2048)  # large enough for the BLAS to reach its peak, ~1 s in all


@dataclass(frozen=True)
class Roofline:
    """The measured ceiling: best SGEMM GFLOP/s over ``sizes`` with ``threads`` threads."""

    gflops: float
    threads: int
    sizes: tuple[int, ...]
    per_size: dict[str, float]

    def percent(self, achieved_gflops: float) -> float:
        return 100.0 * achieved_gflops / self.gflops if self.gflops > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(threads)`` (None: leave as is), then restore."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def measure_sgemm(threads: int | None = None, sizes: tuple[int, ...] = SGEMM_SIZES, reps: int = 3,
                  min_seconds: float = 0.1) -> Roofline:
    """Best ``torch.mm`` float32 rate (2·n³ FLOPs per n×n×n product) over ``sizes``; a warm-up run per size."""
    per_size: dict[str, float] = {}
    with torch_threads(threads), torch.inference_mode():
        used = torch.get_num_threads()
        gen = torch.Generator().manual_seed(0)
        for n in sizes:
            a = torch.randn(n, n, generator=gen)  # [n, n]
            b = torch.randn(n, n, generator=gen)  # [n, n]
            out = torch.empty(n, n)
            torch.mm(a, b, out=out)  # warm-up: packing buffers, thread pool
            best = 0.0
            for _ in range(reps):
                count, start = 0, time.perf_counter()
                while True:
                    torch.mm(a, b, out=out)
                    count += 1
                    elapsed = time.perf_counter() - start
                    if elapsed >= min_seconds:
                        break
                best = max(best, 2.0 * n**3 * count / elapsed / 1e9)
            per_size[str(n)] = round(best, 2)
    gflops = max(per_size.values())
    log.debug("SGEMM roofline %.1f GFLOP/s on %d threads (%s)", gflops, used, per_size)
    return Roofline(gflops=gflops, threads=used, sizes=tuple(sizes), per_size=per_size)


def count_flops(module: nn.Module, feeds: Mapping[str, np.ndarray]) -> int:
    """FLOPs of one forward pass of ``module`` on ``feeds`` (multiply-add = 2), by FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    tensors = [torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()]
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module(*tensors)
    return int(counter.get_total_flops())


def flops_per_image(module: nn.Module, feeds: Mapping[str, np.ndarray]) -> float:
    """FLOPs per item: ``count_flops`` on a batch divided by its batch size (first dim of the first input)."""
    batch = int(next(iter(feeds.values())).shape[0])
    return count_flops(module, feeds) / max(batch, 1)
