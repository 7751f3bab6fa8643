"""A measured roofline with both roofs: the best SGEMM rate (compute) and a STREAM-like triad bandwidth (memory).

A generator is dense convolutions, i.e. GEMMs; the fastest FP32 GEMM the CPU sustains is the compute roof. The
memory roof is the triad ``a = b + s·c`` over arrays far larger than the caches (3 x 4 bytes moved per element,
STREAM's count; written with ``torch.add(b, c, alpha=s, out=a)``, one pass, on the same threads). A model of
arithmetic intensity ``I`` (FLOPs per byte of weights + activations touched, ``intensity``) can reach at most
``attainable = min(peak, I × bandwidth)``; ``% of roofline = achieved GFLOP/s / attainable`` and ``bound`` says
which roof binds. FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on the generator, one
multiply-add = 2 FLOPs (its convention). Every rate is the best (and the median) of ``reps`` windows of at least
``min_seconds`` each.
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
TRIAD_ELEMENTS = 1 << 25  # 32 Mi floats per array: 3 x 128 MiB, far beyond any last-level cache
WINDOW_S = 0.25  # each timing window lasts at least this long


@dataclass(frozen=True)
class Roofline:
    """The measured ceiling: best SGEMM GFLOP/s over ``sizes`` with ``threads`` threads."""

    gflops: float
    threads: int
    sizes: tuple[int, ...]
    per_size: dict[str, float]
    median_gflops: float | None = None
    bandwidth_gbs: float | None = None  # triad GB/s (best window); None: not measured
    median_bandwidth_gbs: float | None = None

    def percent(self, achieved_gflops: float) -> float:
        return 100.0 * achieved_gflops / self.gflops if self.gflops > 0 else 0.0

    def attainable(self, intensity: float | None) -> float:
        """GFLOP/s a model of ``intensity`` FLOPs/byte can reach: min(peak, intensity × bandwidth)."""
        if intensity is None or not self.bandwidth_gbs:
            return self.gflops
        return min(self.gflops, intensity * self.bandwidth_gbs)

    def bound(self, intensity: float | None) -> str:
        """'memory' when intensity × bandwidth is below the compute peak, else 'compute'."""
        return "memory" if self.attainable(intensity) < self.gflops else "compute"

    @property
    def ridge(self) -> float | None:
        """The intensity (FLOPs/byte) where the roofs meet."""
        return self.gflops / self.bandwidth_gbs if self.bandwidth_gbs else None

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


def _windows(fn: Any, work: float, reps: int, min_seconds: float) -> list[float]:
    """Rates (work per second) of ``reps`` windows, each calling ``fn`` until ``min_seconds`` have passed."""
    rates = []
    for _ in range(reps):
        count, start = 0, time.perf_counter()
        while True:
            fn()
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        rates.append(work * count / elapsed)
    return rates


def measure_triad(threads: int | None = None, elements: int = TRIAD_ELEMENTS, reps: int = 5,
                  min_seconds: float = WINDOW_S) -> tuple[float, float]:
    """(best, median) GB/s of the STREAM triad ``a = b + 3·c`` over float32 arrays of ``elements``."""
    with torch_threads(threads), torch.inference_mode():
        b, c, a = torch.ones(elements), torch.full((elements,), 2.0), torch.empty(elements)
        torch.add(b, c, alpha=3.0, out=a)  # warm-up: pages touched, thread pool up
        rates = _windows(lambda: torch.add(b, c, alpha=3.0, out=a), 3 * 4 * elements / 1e9, reps, min_seconds)
    return max(rates), float(np.median(rates))


def measure_roofline(threads: int | None = None, reps: int = 5, min_seconds: float = WINDOW_S) -> Roofline:
    """Both roofs on ``threads`` threads: SGEMM peak and triad bandwidth (best and median of ``reps``)."""
    compute = measure_sgemm(threads, reps=reps, min_seconds=min_seconds)
    best, median = measure_triad(threads, reps=reps, min_seconds=min_seconds)
    log.debug("memory roof %.1f GB/s (median %.1f) on %d threads", best, median, compute.threads)
    return Roofline(compute.gflops, compute.threads, compute.sizes, compute.per_size, compute.median_gflops,
                    round(best, 2), round(median, 2))


def measure_sgemm(threads: int | None = None, sizes: tuple[int, ...] = SGEMM_SIZES, reps: int = 3,
                  min_seconds: float = WINDOW_S) -> Roofline:
    """Best ``torch.mm`` float32 rate (2·n³ FLOPs per n×n×n product) over ``sizes``; a warm-up run per size."""
    per_size: dict[str, float] = {}
    medians: dict[str, float] = {}
    with torch_threads(threads), torch.inference_mode():
        used = torch.get_num_threads()
        gen = torch.Generator().manual_seed(0)
        for n in sizes:
            a = torch.randn(n, n, generator=gen)  # [n, n]
            b = torch.randn(n, n, generator=gen)  # [n, n]
            out = torch.empty(n, n)
            torch.mm(a, b, out=out)  # warm-up: packing buffers, thread pool
            rates = _windows(lambda a=a, b=b, out=out: torch.mm(a, b, out=out), 2.0 * n**3 / 1e9, reps,
                             min_seconds)
            per_size[str(n)] = round(max(rates), 2)
            medians[str(n)] = round(float(np.median(rates)), 2)
    gflops = max(per_size.values())
    log.debug("SGEMM roofline %.1f GFLOP/s on %d threads (%s)", gflops, used, per_size)
    return Roofline(gflops=gflops, threads=used, sizes=tuple(sizes), per_size=per_size,
                    median_gflops=max(medians.values()))


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


def bytes_per_item(module: nn.Module, feeds: Mapping[str, np.ndarray]) -> float:
    """Bytes one forward pass touches per item: the weights once per batch plus the activations (the inputs and
    each weighted layer's output — conv, transposed conv, linear; the norms and activations after them are fused
    into it by ONNX Runtime and move no extra bytes), divided by the batch size."""
    batch = int(next(iter(feeds.values())).shape[0])
    weights = sum(p.numel() * p.element_size() for p in module.parameters())
    weights += sum(b.numel() * b.element_size() for b in module.buffers())
    acts = [sum(np.asarray(v).nbytes for v in feeds.values())]

    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            acts.append(out.numel() * out.element_size())

    leaves = [m for m in module.modules() if not list(m.children())
              and getattr(getattr(m, "weight", None), "dim", lambda: 0)() >= 2]  # conv / linear layers
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.inference_mode():
            module(*[torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()])
    finally:
        for h in handles:
            h.remove()
    return (weights + sum(acts)) / max(batch, 1)


def intensity(module: nn.Module, feeds: Mapping[str, np.ndarray]) -> float:
    """Arithmetic intensity: FLOPs per byte of weights + activations, at the batch of ``feeds``."""
    return count_flops(module, feeds) / max(bytes_per_item(module, feeds) * int(next(iter(feeds.values())).shape[0]),
                                            1.0)
