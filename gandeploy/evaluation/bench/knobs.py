"""Serving knobs measured, so defaults come from figures: instance count × ONNX Runtime threads × batcher delay.

For each setting a fresh local repository is built (``gandeploy repo --instances N --threads T
--max-queue-delay-us D``) and served; ``perf_analyzer`` (gRPC, batch-1 requests of the served contract's
case inputs) measures the user-facing model at each concurrency level, and the server's own statistics give
the batch size the dynamic batcher formed (inferences / executions) during that level.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gandeploy.errors import BackendUnavailable, GanDeployError
from gandeploy.utils.logging import get_logger

log = get_logger("bench.knobs")


@dataclass(frozen=True)
class Knobs:
    """One serving setting (``gandeploy repo`` flags)."""

    instances: int = 1
    threads: int = 0  # ONNX Runtime intra-op threads per instance (0: its default, all cores)
    delay_us: int = 0  # dynamic batcher max queue delay

    def label(self) -> str:
        return f"--instances {self.instances} --threads {self.threads} --max-queue-delay-us {self.delay_us}"


@dataclass
class KnobRow:
    """What one setting served: per concurrency level, items/s, p50 ms and the mean batch formed."""

    knobs: Knobs
    points: dict[int, dict[str, float]] = field(default_factory=dict)
    ready_s: float | None = None
    skipped: str | None = None

    def rate(self, level: int) -> float | None:
        p = self.points.get(level)
        return None if p is None else p["throughput"]

    def to_json(self) -> dict[str, Any]:
        return {"knobs": self.knobs.__dict__, "points": {str(k): v for k, v in self.points.items()},
                "ready_s": self.ready_s, "skipped": self.skipped}


def grid(instances: Sequence[int], threads: Sequence[int], delays: Sequence[int]) -> list[Knobs]:
    """Every combination, in a stable order."""
    return [Knobs(i, t, d) for i, t, d in itertools.product(instances, threads, delays)]


def sweep_knobs(export_dir: str | os.PathLike[str], settings: Sequence[Knobs], *,
                concurrency: Sequence[int] = (1, 8), measurement_ms: int = 2000,
                log_dir: str | os.PathLike[str] | None = None) -> list[KnobRow]:
    """Measure the user-facing model of ``export_dir`` under each setting (a server per setting)."""
    from gandeploy.evaluation.bench.perf_analyzer import export_samples, find_perf_analyzer, run_sweep
    from gandeploy.evaluation.served import local_server
    from gandeploy.manifest import load_manifest
    from gandeploy.runtimes.triton_client import TritonClient

    manifest = load_manifest(export_dir)
    name = manifest.name
    try:
        pa = find_perf_analyzer()
    except BackendUnavailable as exc:
        return [KnobRow(k, skipped=str(exc)) for k in settings]
    samples = export_samples(name, manifest.contract, None)[name]
    rows = []
    for i, knobs in enumerate(settings):
        row = KnobRow(knobs)
        log_file = Path(log_dir) / f"tritonserver-{name}-knobs{i}.log" if log_dir else None
        try:
            with local_server([export_dir], threads=knobs.threads, instances=knobs.instances,
                              max_queue_delay_us=knobs.delay_us, keep_log=log_file) as server:
                row.ready_s = server.ready_seconds
                url = server.url("grpc")
                with TritonClient(url, "grpc") as client:
                    for level in concurrency:
                        before = client.statistics(name)
                        (point,) = run_sweep(name, url, samples, concurrency=[level], protocol="grpc",
                                             measurement_ms=measurement_ms, pa=pa)
                        after = client.statistics(name)
                        runs = after["execution_count"] - before["execution_count"]
                        items = after["inference_count"] - before["inference_count"]
                        row.points[level] = {"throughput": point.throughput, "p50_ms": point.p50_ms,
                                             "p99_ms": point.p99_ms, "mean_batch": items / runs if runs else 0.0}
        except (GanDeployError, OSError, ValueError) as exc:
            row.skipped = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            log.warning("knob setting %s not measured: %s", knobs.label(), row.skipped)
        log.info("%s %s: %s", name, knobs.label(), {k: round(v["throughput"]) for k, v in row.points.items()})
        rows.append(row)
    return rows


def best(rows: Sequence[KnobRow], level: int, *, by: str = "throughput") -> KnobRow | None:
    """The measured row with the highest throughput (``by`` a latency such as ``"p50_ms"``: the lowest) at
    ``level``; rows that lack the figure (Model Analyzer's have no p50) are passed over."""
    measured = [r for r in rows if level in r.points and by in r.points[level]]
    if not measured:
        return None
    if by.endswith("_ms"):  # a latency: the lowest wins
        return min(measured, key=lambda r: r.points[level][by])
    return max(measured, key=lambda r: r.points[level][by])


def knobs_table(name: str, rows: Sequence[KnobRow], concurrency: Sequence[int] = (1, 8)) -> str:
    """A markdown table: one row per setting, items/s, p50 and mean batch per concurrency level."""
    head = ["instances", "ORT threads", "delay µs"]
    for c in concurrency:
        head += [f"c={c} /s", f"c={c} p50 ms", f"c={c} batch"]
    lines = [f"Serving knobs, {name} (perf_analyzer gRPC, batch-1 requests):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r.knobs.instances), str(r.knobs.threads), str(r.knobs.delay_us)]
        for c in concurrency:
            p = r.points.get(c)
            cells += [f"{p['throughput']:.0f}", f"{p['p50_ms']:.2f}", f"{p['mean_batch']:.1f}"] if p else ["-"] * 3
        if r.skipped:
            cells[-1] += f" (skipped: {r.skipped[:80]})"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
