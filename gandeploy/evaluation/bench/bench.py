"""Benchmark: throughput and p50/p99 latency per backend × batch size, against a measured SGEMM roofline.

Each point runs ``warmup`` untimed calls, then ``reps`` timed calls of one batch. Throughput is
``batch / p50``; achieved GFLOP/s is ``GFLOP per item × throughput``; % of roofline divides that by the
attainable rate min(best ``torch.mm`` FP32 rate, intensity × triad bandwidth) on the same thread count
(``roofline.measure_roofline``; each point records its ``intensity`` and which roof binds, ``bound``); ``vs torch`` divides by PyTorch
eager's throughput at the same batch size. Served backends (``triton``, ``triton-ensemble``) are timed from
this client, one request per batch; ``perf_analyzer`` sweeps concurrency on top (``perf_analyzer.py``).

Exports with a picture input also get megapixels per second: ``megapixels.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gandeploy.contract import ServedContract
from gandeploy.errors import BackendUnavailable, GanDeployError, UserInputError
from gandeploy.evaluation.bench.roofline import Roofline, flops_per_image, intensity, measure_roofline, torch_threads
from gandeploy.evaluation.cases import case_io, test_image
from gandeploy.evaluation.parity.parity import SERVED
from gandeploy.formats import FORMATS, get_format
from gandeploy.manifest import unbuilt_reason
from gandeploy.models.io import HW
from gandeploy.runtimes.base import Runtime, open_runtime
from gandeploy.utils.logging import get_logger
from gandeploy.utils.machine import machine_info

if TYPE_CHECKING:
    from gandeploy.manifest import Manifest

log = get_logger("bench")

DEFAULT_BACKENDS = tuple(FORMATS)
SAMPLING_BATCHES = (1, 8, 64)
TRANSLATION_BATCHES = (1, 4)


@dataclass
class Point:
    """One backend at one batch size. Latencies are per call (one batch), in milliseconds."""

    backend: str
    batch: int
    latencies_ms: list[float]
    gflop_per_item: float | None = None
    roofline_gflops: float | None = None  # attainable: min(SGEMM peak, intensity x triad bandwidth)
    vs_torch: float | None = None
    intensity: float | None = None  # FLOPs per byte of weights + activations at this batch
    bound: str | None = None  # which roof binds: "compute" | "memory"

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 50))

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 99))

    @property
    def throughput(self) -> float:
        """Items per second at the median latency."""
        return self.batch / (self.p50_ms / 1000.0) if self.p50_ms > 0 else 0.0

    @property
    def gflops(self) -> float | None:
        return self.gflop_per_item * self.throughput if self.gflop_per_item else None

    @property
    def pct_roofline(self) -> float | None:
        g = self.gflops
        return 100.0 * g / self.roofline_gflops if g and self.roofline_gflops else None

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None, n: int = 3) -> float | None:
            return None if v is None else round(v, n)

        return {"backend": self.backend, "batch": self.batch, "reps": len(self.latencies_ms),
                "p50_ms": r(self.p50_ms), "p99_ms": r(self.p99_ms), "mean_ms": r(float(np.mean(self.latencies_ms))),
                "min_ms": r(float(np.min(self.latencies_ms))), "throughput": r(self.throughput, 2),
                "gflops": r(self.gflops, 2), "pct_roofline": r(self.pct_roofline, 1), "vs_torch": r(self.vs_torch),
                "intensity": r(self.intensity, 2), "attainable_gflops": r(self.roofline_gflops, 2),
                "bound": self.bound,
                "latencies_ms": [round(v, 3) for v in self.latencies_ms]}


@dataclass
class BenchReport:
    """Every point of one export, the roofline, skipped backends and served sweeps."""

    export_dir: str
    name: str
    model: str
    task: str
    hw: HW | None
    threads: int
    roofline: Roofline | None
    gflop_per_item: float | None
    points: list[Point] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    served: dict[str, Any] = field(default_factory=dict)  # perf_analyzer: model → {"points", "gain"} or skip
    notes: list[str] = field(default_factory=list)

    def point(self, backend: str, batch: int) -> Point | None:
        return next((p for p in self.points if p.backend == backend and p.batch == batch), None)

    def to_json(self) -> dict[str, Any]:
        return {"format": "gandeploy.bench/1", "export_dir": self.export_dir, "name": self.name, "model": self.model,
                "task": self.task, "hw": list(self.hw) if self.hw else None, "threads": self.threads,
                "machine": machine_info(), "roofline": self.roofline.to_json() if self.roofline else None,
                "gflop_per_item": self.gflop_per_item, "points": [p.to_json() for p in self.points],
                "skipped": self.skipped, "served": self.served, "notes": self.notes}


def default_threads() -> int:
    """All cores this process may use (the goals are stated for the machine's 2 threads)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def time_calls(fn: Callable[[], Any], *, warmup: int = 2, reps: int = 10) -> list[float]:
    """Milliseconds per call of ``fn`` over ``reps`` calls after ``warmup`` untimed ones."""
    for _ in range(max(0, warmup)):
        fn()
    out = []
    for _ in range(max(1, reps)):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def bench_inputs(contract: ServedContract, batch: int, hw: HW | None) -> tuple[dict[str, np.ndarray],
                                                                             dict[str, np.ndarray]]:
    """(generator feeds, served request) of one batch: seeds 0..batch-1 with the contract's case values, or
    test pictures at ``hw`` (``cases.case_io``)."""
    seeds = np.arange(batch, dtype=np.int64)
    images = None
    if contract.translation:
        images = np.stack([test_image(i, hw, contract.in_channels) for i in range(batch)])  # type: ignore[arg-type]
    return case_io(contract, seeds, images)


def _open(key: str, export_dir: Path, manifest: Manifest, threads: int, url: str | None,
          protocol: str) -> Runtime:
    fmt = get_format(key)
    unbuilt = unbuilt_reason(manifest.data, key)  # TensorRT engines: the export's recorded reason
    if unbuilt:
        raise BackendUnavailable(f"not built at export: {unbuilt}")
    if fmt.file and not (export_dir / fmt.file).is_file():
        int8 = manifest.data.get("int8") or {}
        refused = int8.get("reason") if fmt.precision == "int8" and "tries" in int8 else None
        hint = {"fp16": " (re-export with --fp16)", "int8": " (re-export with --int8)"}.get(fmt.precision, "")
        raise BackendUnavailable(f"not in the export: {refused}" if refused
                                 else f"{fmt.file} is not in the export{hint}")
    if key in SERVED:
        if not url:
            raise BackendUnavailable("no server: pass --url HOST:PORT of a running 'gandeploy serve'")
        return open_runtime(key, export_dir, url=url, protocol=protocol)
    if fmt.runtime == "onnxruntime":  # every ONNX Runtime format of the table (fp32, fp16, int8)
        return open_runtime(key, export_dir, threads=threads)
    return open_runtime(key, export_dir)


def plan_batches(contract: ServedContract, batch_sizes: Sequence[int] | None) -> list[int]:
    max_batch = contract.max_batch
    batches = list(batch_sizes or (TRANSLATION_BATCHES if contract.translation else SAMPLING_BATCHES))
    if any(b < 1 for b in batches):
        raise UserInputError(f"--batch-sizes must be positive, got {batches}.")
    if batch_sizes is None:
        batches = [b for b in batches if b <= max_batch] or [max_batch]
    elif any(b > max_batch for b in batches):
        raise UserInputError(f"--batch-sizes must not exceed the export's max batch {max_batch}, got {batches}.")
    return sorted(set(batches))


def run_bench(export_dir: str | os.PathLike[str], backends: Sequence[str] | None = None, *,
              batch_sizes: Sequence[int] | None = None, hw: HW | None = None, url: str | None = None,
              protocol: str = "http", threads: int | None = None, warmup: int = 2, reps: int = 10,
              roofline: Roofline | bool = True) -> BenchReport:
    """Time every requested backend at every batch size on ``threads`` threads (see module docstring)."""
    from gandeploy.config import load_run_config
    from gandeploy.manifest import load_manifest
    from gandeploy.registry import get_model

    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir)
    keys = list(dict.fromkeys(backends or DEFAULT_BACKENDS))
    for key in keys:
        get_format(key)
    if warmup < 0 or reps < 1:
        raise UserInputError(f"--warmup must be >= 0 and --reps >= 1, got {warmup} and {reps}.")
    threads = int(threads or default_threads())
    run = load_run_config(export_dir)
    spec = get_model(run.model)
    contract = manifest.contract
    if contract.translation:
        opt = manifest.image_sizes.get("opt") or [run.arch.image_size] * 2
        hw = hw or (int(opt[0]), int(opt[1]))
        k = manifest.io.size_multiple  # the declared size rule
        if hw[0] % k or hw[1] % k:
            raise UserInputError(f"--size must be a multiple of {k} in H and W, got {hw[0]}x{hw[1]}.")
    else:
        hw = None
    batches = plan_batches(contract, batch_sizes)

    # FLOPs do not depend on weights: count them on a freshly built generator of the same architecture.
    module = spec.build_generator(run.arch).eval()
    with torch_threads(threads):
        gflop = flops_per_image(module, bench_inputs(contract, 1, hw)[0]) / 1e9
    roof = roofline if isinstance(roofline, Roofline) else (measure_roofline(threads) if roofline else None)
    intensities: dict[int, float] = {}
    if roof is not None and roof.bandwidth_gbs:
        with torch_threads(threads):
            intensities = {b: intensity(module, bench_inputs(contract, b, hw)[0]) for b in batches}
    report = BenchReport(str(export_dir), manifest.name, run.model, manifest.task, hw, threads, roof, gflop)
    if roof:
        log.info("roofline: SGEMM %.1f GFLOP/s on %d threads; %s: %.3f GFLOP per item", roof.gflops, threads,
                 run.model, gflop)
    for key in keys:
        try:
            runtime = _open(key, export_dir, manifest, threads, url, protocol)
        except BackendUnavailable as exc:
            report.skipped[key] = str(exc)
            log.info("%-17s skipped: %s", key, exc)
            continue
        with runtime:
            for batch in batches:
                feeds, served = bench_inputs(contract, batch, hw)
                request = served if key == "triton-ensemble" else feeds
                def call(runtime: Runtime = runtime, request: dict[str, np.ndarray] = request) -> None:
                    runtime.run(request)

                try:
                    with torch_threads(threads if key == "torch" else None):
                        lat = time_calls(call, warmup=warmup, reps=reps)
                except GanDeployError as exc:
                    report.skipped.setdefault(key, f"failed at batch {batch}: {exc}")
                    log.warning("%-17s batch %d failed: %s", key, batch, exc)
                    break
                ai = intensities.get(batch)
                point = Point(key, batch, lat, gflop, roof.attainable(ai) if roof else None,
                              intensity=ai, bound=roof.bound(ai) if roof and ai else None)
                report.points.append(point)
                log.info("%-17s batch %-4d p50 %9.2f ms  p99 %9.2f ms  %9.1f items/s%s", key, batch, point.p50_ms,
                         point.p99_ms, point.throughput,
                         f"  {point.pct_roofline:5.1f} % roofline" if point.pct_roofline else "")
    for point in report.points:
        base = report.point("torch", point.batch)
        if base is not None and base.throughput > 0:
            point.vs_torch = point.throughput / base.throughput
    return report
