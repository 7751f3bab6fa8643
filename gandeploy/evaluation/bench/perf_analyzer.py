"""Served throughput and latency from NVIDIA's ``perf_analyzer`` (shipped in the ``tritonclient`` wheel).

The binary needs Debian's ``libb64-0d`` and ``libcudart.so.12`` (pip ``nvidia-cuda-runtime-cu12``, whose lib
dir goes on ``LD_LIBRARY_PATH``) even on CPU. ``find_perf_analyzer`` says what is missing as a skip reason.
A sweep runs one ``perf_analyzer`` per concurrency level, reads its ``-f`` CSV, and the dynamic-batching gain
is throughput at concurrency N divided by throughput at concurrency 1.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gandeploy.contract import ServedContract, raw_model
from gandeploy.errors import BackendUnavailable
from gandeploy.utils.logging import get_logger

if TYPE_CHECKING:
    from gandeploy.manifest import Manifest

log = get_logger("perf_analyzer")

_TRITON_DTYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64", np.dtype(np.uint8): "UINT8"}


@dataclass(frozen=True)
class PerfAnalyzer:
    """A runnable ``perf_analyzer``: its path and the environment it needs."""

    path: Path
    env: dict[str, str]


@dataclass(frozen=True)
class SweepPoint:
    """One concurrency level: served items per second and client-side latency percentiles (ms)."""

    concurrency: int
    throughput: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _cuda_runtime_lib() -> Path | None:
    try:
        spec = importlib.util.find_spec("nvidia.cuda_runtime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        lib = Path(location) / "lib"
        if (lib / "libcudart.so.12").exists():
            return lib
    return None


def _missing_libraries(binary: Path, env: Mapping[str, str]) -> list[str]:
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    out = subprocess.run([ldd, str(binary)], capture_output=True, text=True, env=dict(env), timeout=30)
    return [line.split("=>")[0].strip() for line in out.stdout.splitlines() if "not found" in line]


_HINTS = {
    "libb64.so.0d": "apt-get install libb64-0d",
    "libcudart.so.12": "pip install nvidia-cuda-runtime-cu12 (its nvidia/cuda_runtime/lib goes on LD_LIBRARY_PATH)",
}


def find_perf_analyzer() -> PerfAnalyzer:
    """The ``perf_analyzer`` beside this Python with its environment; ``BackendUnavailable`` says what's missing."""
    candidates = [Path(sys.executable).parent / "perf_analyzer"]
    found = shutil.which("perf_analyzer")
    if found:
        candidates.append(Path(found))
    binary = next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)
    if binary is None:
        raise BackendUnavailable("perf_analyzer is not installed (it ships in the tritonclient==2.51 wheel as "
                                 "bin/perf_analyzer; run 'make bench' or pip install 'tritonclient[all]==2.51.*')")
    env = dict(os.environ)
    cudart = _cuda_runtime_lib()
    if cudart is not None:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(cudart), env.get("LD_LIBRARY_PATH", "")) if p)
    missing = _missing_libraries(binary, env)
    if missing:
        fixes = "; ".join(f"{lib}: {_HINTS.get(lib, 'install the library that provides it')}" for lib in missing)
        raise BackendUnavailable(f"perf_analyzer cannot start, missing shared libraries ({fixes})")
    return PerfAnalyzer(path=binary, env=env)


def bytes_tensor_b64(items: Sequence[bytes]) -> str:
    """A Triton BYTES tensor as perf_analyzer's ``b64`` content: each item 4-byte little-endian length + bytes."""
    raw = b"".join(struct.pack("<I", len(item)) + item for item in items)
    return base64.b64encode(raw).decode("ascii")


def input_data_json(samples: Sequence[Mapping[str, np.ndarray | bytes]]) -> dict[str, Any]:
    """perf_analyzer ``--input-data`` JSON: one entry per sample, shapes without the batch dimension.

    Arrays go as flat ``content`` lists; ``bytes`` values become a one-element BYTES tensor in ``b64``.
    """
    data = []
    for sample in samples:
        entry: dict[str, Any] = {}
        for name, value in sample.items():
            if isinstance(value, bytes):
                entry[name] = {"b64": bytes_tensor_b64([value]), "shape": [1]}
            else:
                arr = np.asarray(value)
                entry[name] = {"content": arr.reshape(-1).tolist(), "shape": list(arr.shape)}
        data.append(entry)
    return {"data": data}


def parse_csv(path: str | os.PathLike[str]) -> list[SweepPoint]:
    """Rows of a ``perf_analyzer -f`` CSV: concurrency, inferences/second, client latency percentiles (µs)."""
    points = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            points.append(SweepPoint(
                concurrency=int(float(row["Concurrency"])),
                throughput=float(row["Inferences/Second"]),
                p50_ms=float(row["p50 latency"]) / 1000.0,
                p90_ms=float(row["p90 latency"]) / 1000.0,
                p95_ms=float(row["p95 latency"]) / 1000.0,
                p99_ms=float(row["p99 latency"]) / 1000.0,
            ))
    return sorted(points, key=lambda p: p.concurrency)


def run_sweep(model: str, url: str, samples: Sequence[Mapping[str, np.ndarray | bytes]], *,
              concurrency: Sequence[int] = (1, 2, 4, 8), protocol: str = "http", batch_size: int = 1,
              measurement_ms: int = 3000, request_count: int | None = None, max_trials: int = 6,
              stability: int = 25, timeout_s: float = 600.0, pa: PerfAnalyzer | None = None,
              data_file: Path | None = None) -> list[SweepPoint]:
    """Run perf_analyzer on served ``model`` at each concurrency level (one process each); return the points.

    ``data_file``: the ``--input-data`` JSON of ``samples`` already written (``write_input_data``), else a
    temporary one.

    ``url`` is host:port of the protocol's endpoint (HTTP 8000-style or gRPC 8001-style). Windows last
    ``measurement_ms``, or hold at least ``request_count`` requests when given (slow models: seconds each).
    """
    pa = pa or find_perf_analyzer()
    points: list[SweepPoint] = []
    with tempfile.TemporaryDirectory(prefix="gandeploy-pa-") as tmp:
        if data_file is None:
            data_file = Path(tmp) / "input.json"
            data_file.write_text(json.dumps(input_data_json(samples)))
        shapes = shape_flags(samples[0])
        for level in concurrency:
            csv_file = Path(tmp) / f"c{level}.csv"
            base = [str(pa.path), "-m", model, "-u", url, "-i", protocol, "-b", str(batch_size),
                    "--input-data", str(data_file), *shapes, "--concurrency-range", f"{level}:{level}",
                    "--max-trials", str(max_trials), "-f", str(csv_file)]
            # a busy machine may never settle within `stability` %: retry once with a longer window, any spread
            for scale, spread in ((1, stability), (2, 100)):
                if request_count:
                    window = ["--measurement-mode", "count_windows", "--measurement-request-count",
                              str(scale * max(request_count, level))]
                else:
                    window = ["--measurement-interval", str(scale * measurement_ms)]
                cmd = [*base, *window, "-s", str(spread)]
                log.info("perf_analyzer %s concurrency %d", model, level)
                log.debug("%s", " ".join(cmd))
                done = subprocess.run(cmd, capture_output=True, text=True, env=pa.env, timeout=timeout_s)
                if done.returncode == 0 and csv_file.exists():
                    break
                if "stable measurement" not in (done.stdout + done.stderr):
                    break
                log.info("perf_analyzer: no stable measurement at concurrency %d; retrying with longer windows",
                         level)
            if done.returncode != 0 or not csv_file.exists():
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                message = (f"perf_analyzer failed on '{model}' at concurrency {level} (exit {done.returncode}): "
                           f"{' | '.join(tail)[:400]}")
                if not points:
                    raise BackendUnavailable(message)
                log.warning("%s; keeping the levels measured so far", message)
                break
            points += parse_csv(csv_file)
    return points


def shape_flags(sample: Mapping[str, np.ndarray | bytes]) -> list[str]:
    """perf_analyzer ``--shape NAME:d1,d2`` flags for a sample's array inputs (BYTES carry their shape)."""
    flags = []
    for name, value in sample.items():
        if not isinstance(value, bytes):
            flags += ["--shape", f"{name}:" + ",".join(str(d) for d in np.asarray(value).shape)]
    return flags


def write_input_data(name: str, contract: ServedContract, hw: tuple[int, int] | None,
                     out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``<model>.input-data.json`` for ``NAME_generator`` and ``NAME`` into ``out_dir``: perf_analyzer's
    ``--input-data`` built from the served contract's declared inputs (seeds for a user-facing sampling model,
    which refuses perf_analyzer's random data; test PNGs for a picture input). Returns model -> path."""
    from gandeploy.utils.io import atomic_write_text

    count = 2 if contract.translation else 8  # float pictures as JSON lists: ~4 MB each at 3x256x256
    return {model: atomic_write_text(Path(out_dir) / f"{model}.input-data.json", json.dumps(input_data_json(samples)))
            for model, samples in export_samples(name, contract, hw, count=count).items()}


def perf_analyzer_command(model: str, data_file: str | os.PathLike[str], url: str, protocol: str,
                          sample: Mapping[str, np.ndarray | bytes], concurrency: str = "1:8:1") -> str:
    """The perf_analyzer command line a user runs against a served model with ``data_file``."""
    return " ".join(["perf_analyzer", "-m", model, "-u", url, "-i", protocol, "--input-data", str(data_file),
                     *shape_flags(sample), "--concurrency-range", concurrency])


def batching_gain(points: Sequence[SweepPoint]) -> dict[str, float]:
    """Throughput at each concurrency N over throughput at concurrency 1 (the dynamic-batching gain)."""
    base = next((p.throughput for p in points if p.concurrency == 1), None)
    if not base:
        return {}
    return {str(p.concurrency): round(p.throughput / base, 3) for p in points}


def perf_inputs(contract: ServedContract, seeds: Sequence[int], images: np.ndarray | None = None,
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``--input-data`` bodies, one per seed (no batch axis): (``NAME_generator``, ``NAME``), from the parity
    cases (``gandeploy.evaluation.cases.case_io``)."""
    from gandeploy.evaluation.cases import case_io

    by_name = {g.name: g for g in contract.generator_inputs}
    raw, served = [], []
    for i, s in enumerate(seeds):
        feeds, request = case_io(contract, [s], None if images is None else images[i:i + 1])
        raw.append({k: v.reshape(by_name[k].dims) if by_name[k].reshape is not None else v[0]
                    for k, v in feeds.items()})
        served.append({k: bytes(v.reshape(-1)[0]) if v.dtype == np.object_ else v[0] for k, v in request.items()})
    return raw, served


def export_samples(name: str, contract: ServedContract, hw: tuple[int, int] | None, count: int = 8,
                   ) -> dict[str, list[dict[str, np.ndarray | bytes]]]:
    """Batch-1 request bodies (no batch axis) for ``<name>_generator`` and ``<name>``: the served contract's
    case inputs of seeds 0..count-1 (``perf_inputs``), or test PNGs at ``hw``."""
    from gandeploy.evaluation.cases import test_image

    images = None
    if contract.translation:
        images = np.stack([test_image(i, hw or (256, 256), contract.in_channels) for i in range(count)])
    raw, served = perf_inputs(contract, list(range(count)), images)
    return {raw_model(name): raw, name: served}


def sweep_export(manifest: Manifest, url: str, *, protocol: str = "http", hw: tuple[int, int] | None = None,
                 concurrency: Sequence[int] = (1, 2, 4, 8), measurement_ms: int = 3000,
                 expected_ms: float | None = None, data_files: Mapping[str, Path] | None = None) -> dict[str, Any]:
    """perf_analyzer sweeps on the raw generator and the user-facing model of one served export.

    ``data_files``: model -> its ``--input-data`` JSON from ``write_input_data`` (the sweep uses those files).

    ``expected_ms``: a single request's latency if known; slow models (over a tenth of the window) are
    measured in windows of a request count instead of a duration.

    Returns ``{model: {"tool", "points": [...], "gain": {N: x}}}`` (or ``{model: {"skipped": reason}}``);
    ``{"skipped": reason}`` alone when perf_analyzer cannot run here.
    """
    try:
        pa = find_perf_analyzer()
    except BackendUnavailable as exc:
        return {"skipped": str(exc)}
    out: dict[str, Any] = {}
    count = 6 if expected_ms and expected_ms * 10 > measurement_ms else None
    for model, samples in export_samples(manifest.name, manifest.contract, hw).items():
        try:
            points = run_sweep(model, url, samples, concurrency=concurrency, protocol=protocol,
                               measurement_ms=measurement_ms, request_count=count, pa=pa,
                               data_file=(data_files or {}).get(model))
        except (BackendUnavailable, subprocess.TimeoutExpired) as exc:
            out[model] = {"skipped": str(exc)}
            continue
        out[model] = {"tool": "perf_analyzer", "points": [p.to_json() for p in points], "gain": batching_gain(points)}
    return out


def python_sweep(export_dir: str | os.PathLike[str], url: str, *, protocol: str = "http",
                 hw: tuple[int, int] | None = None, concurrency: Sequence[int] = (1, 2, 4, 8),
                 seconds: float = 4.0) -> dict[str, Any]:
    """The same sweep with a closed-loop Python client (N threads, one request in flight each).

    A stand-in where perf_analyzer cannot run; client overhead is included, so it under-reports the server.
    """
    from gandeploy.manifest import load_manifest

    manifest = load_manifest(export_dir)
    name, contract = manifest.name, manifest.contract
    samples = export_samples(name, contract, hw)
    out: dict[str, Any] = {}
    for key, model in (("triton", raw_model(name)), ("triton-ensemble", name)):
        scalars = {t.name for t in contract.generator_inputs if t.reshape is not None} if key == "triton" else set()
        bodies = [_as_request(s, scalars) for s in samples[model]]
        points = []
        for level in concurrency:
            point = _closed_loop(Path(export_dir), key, url, protocol, bodies, level, seconds)
            if isinstance(point, str):
                out[model] = {"skipped": f"python client failed at concurrency {level}: {point}"}
                break
            points.append(point)
        else:
            out[model] = {"tool": "python client", "points": [p.to_json() for p in points],
                          "gain": batching_gain(points)}
    return out


def _closed_loop(export_dir: Path, key: str, url: str, protocol: str, bodies: Sequence[dict[str, np.ndarray]],
                 level: int, seconds: float) -> SweepPoint | str:
    """``level`` client threads, each sending the next request as soon as the last one is answered."""
    import threading
    import time

    from gandeploy.runtimes.base import open_runtime

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(level + 1)
    go = threading.Event()
    deadline = [0.0]

    def client(offset: int) -> None:
        try:
            with open_runtime(key, export_dir, url=url, protocol=protocol) as runtime:
                runtime.run(bodies[offset % len(bodies)])  # warm-up, untimed
                barrier.wait()
                go.wait()
                i = offset
                while time.perf_counter() < deadline[0]:
                    start = time.perf_counter()
                    runtime.run(bodies[i % len(bodies)])
                    with lock:
                        latencies.append(time.perf_counter() - start)
                    i += 1
        except Exception as exc:  # noqa: BLE001 - reported to the caller, the sweep goes on
            errors.append(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.abort()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(level)]
    for t in threads:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    begin = time.perf_counter()
    deadline[0] = begin + seconds
    go.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    if errors or not latencies:
        return errors[0] if errors else "no request completed"
    ms = np.asarray(latencies) * 1000.0
    return SweepPoint(level, len(latencies) / elapsed, *(float(np.percentile(ms, q)) for q in (50, 90, 95, 99)))


def _as_request(sample: Mapping[str, np.ndarray | bytes], scalars: set[str]) -> dict[str, np.ndarray]:
    """A perf_analyzer sample (no batch axis) as a batch-1 runtime request; ``scalars``: [N] inputs."""
    out: dict[str, np.ndarray] = {}
    for name, value in sample.items():
        if isinstance(value, bytes):
            out[name] = np.array([value], dtype=np.object_)
        elif name in scalars:
            out[name] = np.asarray(value).reshape(1)
        else:
            out[name] = np.asarray(value)[None]
    return out
