"""Benchmark: throughput and p50/p99 latency per backend × batch size, against a measured SGEMM roofline.

Each point runs ``warmup`` untimed calls, then ``reps`` timed calls of one batch. Throughput is
``batch / p50``; achieved GFLOP/s is ``GFLOP per item × throughput``; % of roofline divides that by the
attainable rate min(best ``torch.mm`` FP32 rate, intensity × triad bandwidth) on the same thread count
(``roofline.measure_roofline``; each point records its ``intensity`` and which roof binds, ``bound``); ``vs torch`` divides by PyTorch
eager's throughput at the same batch size. Served backends (``triton``, ``triton-ensemble``) are timed from
this client, one request per batch; ``perf_analyzer`` sweeps concurrency on top (``perf_analyzer.py``).

Exports with a picture input also get **megapixels per second** (``image_rows``): one picture per call at each
input size (default 256x256 and 1024x1024), MP/s of the input and of the ``scale`` x output, against the same
roofline; in-process ONNX Runtime and PyTorch by default, other runners (served, tiled) through ``openers``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gandeploy.contract import ServedContract
from gandeploy.errors import BackendUnavailable, GanDeployError, UserInputError
from gandeploy.evaluation.cases import case_io
from gandeploy.evaluation.parity import SERVED, test_image
from gandeploy.evaluation.roofline import Roofline, flops_per_image, intensity, measure_roofline, torch_threads
from gandeploy.formats import FORMATS, get_format
from gandeploy.models.io import HW, from_uint8
from gandeploy.runtimes.base import Runtime, open_runtime
from gandeploy.utils.logging import get_logger

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


def machine_info() -> dict[str, Any]:
    """CPU model, cores visible to this process, and library versions that shape the figures."""
    import onnxruntime
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version()}


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
    if key == "tensorrt" and not manifest.tensorrt.get("built"):
        raise BackendUnavailable(f"not built at export: {manifest.tensorrt.get('reason', 'no plan')}")
    if fmt.file and not (export_dir / fmt.file).is_file():
        hint = {"fp16": " (re-export with --fp16)", "int8": " (re-export with --int8, or INT8 was refused: see "
                "manifest.json 'int8')"}.get(fmt.precision, "")
        raise BackendUnavailable(f"{fmt.file} is not in the export{hint}")
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


# --- megapixels per second for exports with a picture input (super-resolution and other image-to-image) ------

IMAGE_SIZES: tuple[HW, ...] = ((256, 256), (1024, 1024))
IN_PROCESS = ("onnxruntime", "torch")  # the default backends of the megapixel rows
FLOP_PROBE = 64  # FLOPs are counted at this side and scaled by area (convolutional generators: ∝ pixels)

# The hook for other ways to run a picture: a backend is ``label → opener``; ``opener(export_dir)`` returns a
# context manager yielding ``run(picture uint8 [H, W, C]) -> anything``, timed per call. The in-process rows
# use ``in_process_opener``; served rows (through Triton, tiling on or off) plug in the same way, with their
# tiling described in the label.
PictureRun = Callable[[np.ndarray], Any]
Opener = Callable[[Path], "contextlib.AbstractContextManager[PictureRun]"]


@dataclass
class ImageRow:
    """One backend at one input size: one picture per call; megapixels of the input and of the (scale x) output."""

    backend: str
    hw: HW
    scale: int
    latencies_ms: list[float]
    gflop: float | None = None  # per picture at this size
    roofline_gflops: float | None = None

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 50))

    @property
    def input_mp_s(self) -> float:
        return self.hw[0] * self.hw[1] / 1e6 / (self.p50_ms / 1000.0) if self.p50_ms > 0 else 0.0

    @property
    def output_mp_s(self) -> float:
        return self.input_mp_s * self.scale**2

    @property
    def pct_roofline(self) -> float | None:
        if not self.gflop or not self.roofline_gflops or self.p50_ms <= 0:
            return None
        return 100.0 * self.gflop / (self.p50_ms / 1000.0) / self.roofline_gflops

    def to_json(self) -> dict[str, Any]:
        pct = self.pct_roofline
        return {"backend": self.backend, "hw": list(self.hw), "scale": self.scale, "reps": len(self.latencies_ms),
                "p50_ms": round(self.p50_ms, 3), "input_mp_s": round(self.input_mp_s, 4),
                "output_mp_s": round(self.output_mp_s, 4), "gflop": None if self.gflop is None else round(self.gflop, 3),
                "pct_roofline": None if pct is None else round(pct, 1),
                "latencies_ms": [round(v, 3) for v in self.latencies_ms]}


def in_process_opener(key: str, threads: int) -> Opener:
    """An opener for runtime ``key``: the picture mapped into the input's declared range, batch 1."""
    @contextlib.contextmanager
    def opener(export_dir: Path) -> Iterator[PictureRun]:
        from gandeploy.manifest import load_manifest

        contract = load_manifest(export_dir).contract
        image = contract.image_input
        runtime = _open(key, export_dir, load_manifest(export_dir), threads, None, "http")
        with runtime, torch_threads(threads if key == "torch" else None):
            yield lambda picture: runtime.run({image.name: from_uint8(picture[None], image.value_range)})  # type: ignore[union-attr]
    return opener


def image_rows(export_dir: str | os.PathLike[str], sizes: Sequence[HW] = IMAGE_SIZES,
               backends: Sequence[str] = IN_PROCESS, *, threads: int | None = None, warmup: int = 1, reps: int = 3,
               roofline: Roofline | bool = True, openers: Mapping[str, Opener] | None = None,
               ) -> tuple[list[ImageRow], dict[str, str], Roofline | None]:
    """Megapixels per second of one picture at each input size, per backend: (rows, skipped backends, roofline).

    Decided by the export's declared IO: it must take a picture; sizes must follow its size rule; the output is
    ``scale`` x the input. ``openers`` adds backends beyond ``backends`` (the hook above)."""
    from gandeploy.config import load_run_config
    from gandeploy.manifest import load_manifest
    from gandeploy.registry import get_model

    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir)
    io_spec = manifest.io
    image = io_spec.image_input
    if image is None:
        raise UserInputError(f"--image-sizes applies to exports with a picture input; '{manifest.name}' samples "
                             "from seeds.")
    k = io_spec.size_multiple
    bad = [f"{h}x{w}" for h, w in sizes if h % k or w % k or min(h, w) < 1]
    if bad:
        raise UserInputError(f"--image-sizes must be multiples of {k} (the size rule of '{manifest.name}'), got "
                             f"{', '.join(bad)}.")
    threads = int(threads or default_threads())
    run = load_run_config(export_dir)
    module = get_model(run.model).build_generator(run.arch).eval()
    side = -(-FLOP_PROBE // k) * k
    probe = {image.name: np.zeros((1, int(image.shape[1]), side, side), np.float32)}
    with torch_threads(threads):
        gflop_per_pixel = flops_per_image(module, probe) / 1e9 / (side * side)
    roof = roofline if isinstance(roofline, Roofline) else (measure_roofline(threads) if roofline else None)
    all_openers: dict[str, Opener] = {key: in_process_opener(key, threads) for key in backends}
    all_openers.update(openers or {})
    rows: list[ImageRow] = []
    skipped: dict[str, str] = {}
    for label, opener in all_openers.items():
        try:
            with opener(export_dir) as run_picture:
                for hw in sizes:
                    picture = test_image(0, hw, int(image.shape[1]))  # uint8 [H, W, C]
                    lat = time_calls(lambda: run_picture(picture), warmup=warmup, reps=reps)
                    row = ImageRow(label, hw, io_spec.scale, lat, gflop_per_pixel * hw[0] * hw[1],
                                   roof.gflops if roof else None)
                    rows.append(row)
                    log.info("%-17s %5dx%-5d p50 %9.1f ms  %7.3f MP/s in  %7.3f MP/s out%s", label, hw[0], hw[1],
                             row.p50_ms, row.input_mp_s, row.output_mp_s,
                             f"  {row.pct_roofline:5.1f} % roofline" if row.pct_roofline else "")
        except (BackendUnavailable, GanDeployError) as exc:
            skipped[label] = str(exc)
            log.info("%-17s skipped: %s", label, exc)
    return rows, skipped, roof


def image_rows_text(rows: Sequence[ImageRow], skipped: Mapping[str, str], roof: Roofline | None) -> str:
    """The megapixel rows as a plain table."""
    w = max([22, *(len(r.backend) for r in rows), *(len(k) for k in skipped)])
    lines = [f"{'backend':<{w}} {'input':>11} {'p50 ms':>10} {'MP/s in':>9} {'MP/s out':>9} {'% roofline':>10}"]
    for r in rows:
        pct = f"{r.pct_roofline:.1f}" if r.pct_roofline is not None else "-"
        lines.append(f"{r.backend:<{w}} {r.hw[0]:>5}x{r.hw[1]:<5} {r.p50_ms:>10.1f} {r.input_mp_s:>9.3f} "
                     f"{r.output_mp_s:>9.3f} {pct:>10}")
    lines += [f"{key:<{w}} skipped: {why}" for key, why in skipped.items()]
    if roof:
        lines.append(f"roofline: SGEMM {roof.gflops:.1f} GFLOP/s on {roof.threads} thread(s)")
    return "\n".join(lines)
