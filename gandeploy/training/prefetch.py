"""Batches prepared ahead on CUDA: one background thread computes the next draws and pins them.

``BatchSampler.batch(draw)`` is a pure function of ``draw`` (counter-based randomness), so computing it early
on another thread gives exactly the batch the step would have drawn itself: exact resume is untouched. One
worker keeps the sampler's per-epoch permutation cache on a single thread. Pinned host memory lets the step's
``.to(device, non_blocking=True)`` copy overlap the GPU's work instead of waiting for its queue to drain. On
the CPU the step already uses every core, so batches are drawn in line (``Prefetcher(depth=0)``).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch


def pin(batch: Any) -> Any:
    """Tensors of a batch (tuples / lists / dicts of them, None kept) in pinned host memory."""
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    if isinstance(batch, (tuple, list)):
        return type(batch)(pin(b) for b in batch)
    if isinstance(batch, dict):
        return {k: pin(v) for k, v in batch.items()}
    return batch


class Prefetcher:
    """``get(draw)`` returns ``make(draw)``; with ``depth`` > 0 the next ``depth`` draws are already on their way."""

    def __init__(self, make: Callable[[int], Any], depth: int = 0, last: int | None = None) -> None:
        self.make, self.depth, self.last = make, depth, last  # last: the final draw of the run (no prefetch past it)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches") if depth > 0 else None
        self._pending: dict[int, Future[Any]] = {}

    def _job(self, draw: int) -> Any:
        batch = self.make(draw)
        return pin(batch) if torch.cuda.is_available() else batch  # pinning needs a CUDA runtime

    def get(self, draw: int) -> Any:
        if self._pool is None:
            return self.make(draw)
        for d in range(draw, draw + self.depth + 1):
            if d not in self._pending and (self.last is None or d <= self.last):
                self._pending[d] = self._pool.submit(self._job, d)
        for stale in [d for d in self._pending if d < draw]:  # a jump (resume): drop what is not needed
            self._pending.pop(stale).cancel()
        return self._pending.pop(draw).result()

    def close(self) -> None:
        """Cancel what is queued and join the worker thread (a batch being made is finished first)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            self._pending.clear()
