"""What the user-facing model costs over its raw generator, served side by side from ONE tritonserver.

``python -m gandeploy.evaluation.bench.served_overhead EXPORT_DIR --out FILE.json`` serves the export with the
default ``gandeploy repo`` settings and runs perf_analyzer (gRPC, batch-1 requests, the served contract's
seeds-only ``--input-data``) at one concurrency level on ``NAME_generator`` (latents in, float pictures out)
and on ``NAME`` (seeds in, uint8 pictures out), alternating the two for a few rounds so machine load hits
both alike. The ratio NAME / NAME_generator per round and its median go into the JSON, and the server's CPU
time per served item of each (tritonserver + backend stubs, from /proc): on a shared machine the items/s ratio
swings with other load, the CPU cost per item much less.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from gandeploy.utils.logging import get_logger

log = get_logger("bench.served_overhead")

FORMAT = "gandeploy.served-overhead/1"


def measure(export_dir: str | os.PathLike[str], *, concurrency: int = 8, rounds: int = 3,
            measurement_ms: int = 3000, threads: int = 0) -> dict[str, Any]:
    """Alternate perf_analyzer on the raw generator and the user-facing model; the figures as JSON."""
    from gandeploy.contract import raw_model
    from gandeploy.evaluation.bench.perf_analyzer import export_samples, find_perf_analyzer, run_sweep
    from gandeploy.evaluation.served import local_server
    from gandeploy.manifest import load_manifest
    from gandeploy.runtimes.triton_client import TritonClient

    manifest = load_manifest(export_dir)
    name = manifest.name
    pa = find_perf_analyzer()
    samples = export_samples(name, manifest.contract, None)
    models = [raw_model(name), name]
    rates: dict[str, list[float]] = {m: [] for m in models}
    p50: dict[str, list[float]] = {m: [] for m in models}
    cpu_ms: dict[str, list[float]] = {m: [] for m in models}
    load = [os.getloadavg()[0]]
    with local_server([export_dir], threads=threads) as server, TritonClient(server.url("grpc"), "grpc") as client:
        url = server.url("grpc")
        root = server.process.pid if server.process else os.getpid()
        for _ in range(rounds):
            for model in models:
                before, cpu0 = client.statistics(model)["inference_count"], tree_cpu_seconds(root)
                (point,) = run_sweep(model, url, samples[model], concurrency=[concurrency], protocol="grpc",
                                     measurement_ms=measurement_ms, pa=pa)
                items = client.statistics(model)["inference_count"] - before
                cpu_ms[model].append(1000.0 * (tree_cpu_seconds(root) - cpu0) / max(items, 1))
                rates[model].append(point.throughput)
                p50[model].append(point.p50_ms)
                log.info("%s c=%d: %.0f/s, %.3f server CPU ms per item", model, concurrency, point.throughput,
                         cpu_ms[model][-1])
        load.append(os.getloadavg()[0])
    ratios = [u / r for r, u in zip(rates[models[0]], rates[models[1]])]  # noqa: B905 - equal lengths
    cpu_ratio = statistics.median(cpu_ms[models[0]]) / statistics.median(cpu_ms[models[1]])
    return {"format": FORMAT, "export": str(export_dir), "concurrency": concurrency, "rounds": rounds,
            "measurement_ms": measurement_ms, "tool": "perf_analyzer gRPC, batch-1 requests, --input-data from the "
            "served contract (seeds only for NAME)", "repo_settings": "gandeploy repo defaults"
            + (f", --threads {threads}" if threads else ""),
            "items_per_s": rates, "p50_ms": p50, "ratio_per_round": [round(r, 3) for r in ratios],
            "ratio_median": round(statistics.median(ratios), 3),
            # CPU seconds the whole server (tritonserver + backend stubs) spent per served item: what a CPU-bound
            # server's throughput is the inverse of, and far less sensitive to other load than items/s
            "server_cpu_ms_per_item": cpu_ms, "cpu_cost_ratio_raw_over_user_facing": round(cpu_ratio, 3),
            "machine": {"cpus": os.cpu_count(), "load_average_1min_before_after": load, "python": platform.python_version(),
                        "shared": "2 cores shared with other work; ratios of alternating rounds, not absolute rates"},
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "when": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                        time.gmtime())}


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all its descendants (Linux /proc), children reaped included."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier += children
    return sum(times.get(p, 0.0) for p in tree)


def main(argv: list[str] | None = None) -> None:
    from gandeploy.utils.io import atomic_write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measurement-ms", type=int, default=3000)
    args = parser.parse_args(argv)
    data = measure(args.export_dir, concurrency=args.concurrency, rounds=args.rounds,
                   measurement_ms=args.measurement_ms)
    data["command"] = ("python -m gandeploy.evaluation.bench.served_overhead " + " ".join(argv or [])).strip()
    atomic_write_json(args.out, data)
    log.info("ratio NAME / NAME_generator (median of %d rounds): %.3f -> %s", args.rounds, data["ratio_median"],
             args.out)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
