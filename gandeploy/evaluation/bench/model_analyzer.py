"""The serving-knob sweep by NVIDIA's Triton Model Analyzer (PyPI ``triton-model-analyzer``, extra ``bench``).

Model Analyzer runs in local launch mode: it starts the bundled ``tritonserver`` (nvidia-pytriton's wheel, with
gandeploy's python-backend directory) itself, writes one config variant per setting of a manual brute search
(CPU instance count x ONNX Runtime intra-op threads x dynamic batcher delay, ``model_config_parameters``) and
measures each with ``perf_analyzer`` fed the served contract's own request bodies (``--input-data``: a
user-facing model refuses perf_analyzer's random data). Its ``metrics-model-inference.csv`` becomes
``knobs.KnobRow`` rows.

What it does not measure, gandeploy keeps (``knobs.sweep_knobs``): the batch the dynamic batcher formed (the
server's inference / execution counts) and the p50 latency (Model Analyzer records avg, p90, p95, p99).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gandeploy.errors import BackendUnavailable
from gandeploy.evaluation.bench.knobs import KnobRow, Knobs
from gandeploy.utils.logging import get_logger

log = get_logger("bench.model_analyzer")

FORMAT = "gandeploy.model-analyzer/1"
FIELDS = ["model_name", "batch_size", "concurrency", "model_config_path", "instance_group", "max_batch_size",
          "perf_throughput", "perf_latency_avg", "perf_latency_p90", "perf_latency_p99"]
_COLUMNS = {"Throughput (infer/sec)": "throughput", "Avg Latency (ms)": "avg_ms", "p90 Latency (ms)": "p90_ms",
            "p99 Latency (ms)": "p99_ms"}


@dataclass
class AnalyzerResult:
    """Model Analyzer's rows for one model, or the exact reason it did not run (``error``)."""

    model: str
    command: list[str]
    config_file: str | None = None
    rows: list[KnobRow] = field(default_factory=list)
    error: str | None = None
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "tool": "triton-model-analyzer " + analyzer_version(), "model": self.model,
                "command": " ".join(self.command), "config_file": self.config_file, "error": self.error,
                "seconds": self.seconds, "rows": [r.to_json() for r in self.rows]}


def analyzer_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("triton-model-analyzer")
    except PackageNotFoundError:
        return "(not installed)"


def find_model_analyzer() -> Path:
    """The ``model-analyzer`` script beside this Python (or on PATH); ``BackendUnavailable`` when absent."""
    for candidate in (Path(sys.executable).parent / "model-analyzer", shutil.which("model-analyzer")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise BackendUnavailable("triton-model-analyzer is not installed: pip install 'gandeploy[bench]' "
                             "(or pip install triton-model-analyzer==1.58.*)")


def analyzer_config(repository: Path, model: str, settings: Sequence[Knobs], *, out: Path, input_data: Path,
                    tritonserver: Path, backend_dir: Path, perf_analyzer: Path, ld_library_path: str,
                    ports: Sequence[int], concurrency: Sequence[int], measurement_ms: int) -> dict[str, Any]:
    """Model Analyzer's YAML config (as a dict): local launch of the bundled server, CPU-only, a manual brute
    search over ``settings``' instance counts, ONNX Runtime threads and batcher delays."""
    http, grpc, metrics = ports
    return {
        "model_repository": str(repository),
        "output_model_repository_path": str(out / "models"),
        "export_path": str(out / "export"),
        "checkpoint_directory": str(out / "checkpoints"),
        "override_output_model_repository": True,
        "triton_launch_mode": "local",
        "triton_server_path": str(tritonserver),
        "perf_analyzer_path": str(perf_analyzer),
        "triton_server_flags": {"backend-directory": str(backend_dir), "http-port": http, "grpc-port": grpc,
                                "metrics-port": metrics},
        # Model Analyzer hands this environment to tritonserver and to perf_analyzer alike
        "triton_server_environment": {"LD_LIBRARY_PATH": ld_library_path,
                                      "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                                               os.environ.get("PATH", "/usr/bin:/bin")])},
        "triton_http_endpoint": f"127.0.0.1:{http}",
        "triton_grpc_endpoint": f"127.0.0.1:{grpc}",
        "triton_metrics_url": f"http://127.0.0.1:{metrics}/metrics",
        "triton_output_path": str(out / "tritonserver.log"),
        "client_protocol": "grpc",
        "run_config_search_disable": True,
        "concurrency": list(concurrency),
        "perf_analyzer_flags": {"input-data": str(input_data), "measurement-interval": int(measurement_ms)},
        "inference_output_fields": FIELDS,
        "profile_models": {model: {"cpu_only": True, "model_config_parameters": {
            "instance_group": [{"kind": "KIND_CPU", "count": sorted({k.instances for k in settings})}],
            "dynamic_batching": {"max_queue_delay_microseconds": sorted({k.delay_us for k in settings})},
            "parameters": {"intra_op_threads": {"string_value": [str(t) for t in sorted({k.threads
                                                                                           for k in settings})]}},
        }}},
    }


def config_knobs(config_pbtxt: Path) -> Knobs:
    """The setting a Model Analyzer config variant holds (instance count, intra-op threads, batcher delay)."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    cfg = text_format.Parse(config_pbtxt.read_text(), model_config_pb2.ModelConfig())
    threads = cfg.parameters["intra_op_threads"].string_value if "intra_op_threads" in cfg.parameters else "0"
    return Knobs(instances=sum(g.count for g in cfg.instance_group) or 1, threads=int(threads or 0),
                 delay_us=int(cfg.dynamic_batching.max_queue_delay_microseconds))


def parse_results(csv_file: Path, models_dir: Path) -> list[KnobRow]:
    """``metrics-model-inference.csv`` as one row per config variant (points per concurrency level)."""
    rows: dict[str, KnobRow] = {}
    with open(csv_file, newline="") as fh:
        for line in csv.DictReader(fh):
            name = line["Model Config Path"]
            if name not in rows:
                rows[name] = KnobRow(config_knobs(models_dir / name / "config.pbtxt"))
            point = {key: float(line[col]) for col, key in _COLUMNS.items() if line.get(col) not in (None, "")}
            rows[name].points[int(float(line["Concurrency"]))] = point
    return list(rows.values())


def run_model_analyzer(export_dir: str | os.PathLike[str], settings: Sequence[Knobs], work_dir: str | os.PathLike[str],
                       *, concurrency: Sequence[int] = (1, 8), measurement_ms: int = 2000,
                       timeout_s: float = 3600.0) -> AnalyzerResult:
    """Sweep ``settings`` on the user-facing model of ``export_dir`` with Model Analyzer; never raises for a tool
    that cannot run: the result's ``error`` holds its exact message. Writes ``model_analyzer.json`` in
    ``work_dir`` beside the YAML config, the input-data JSON and Model Analyzer's own output."""
    from gandeploy.evaluation.bench.perf_analyzer import export_samples, find_perf_analyzer, input_data_json
    from gandeploy.manifest import load_manifest
    from gandeploy.serving.ports import free_ports
    from gandeploy.serving.repository import build_repository
    from gandeploy.serving.triton_install import find_tritonserver, prepare_backend_dir
    from gandeploy.utils.io import atomic_write_json, atomic_write_text

    manifest = load_manifest(export_dir)
    name = manifest.name
    work = Path(work_dir)
    out = work / "model-analyzer"
    result = AnalyzerResult(name, ["model-analyzer", "profile", "-f", str(out / "config.yaml")])
    try:
        binary = find_model_analyzer()
        pa = find_perf_analyzer()
        server_root = find_tritonserver()
        backend_dir = prepare_backend_dir(server_root)
    except BackendUnavailable as exc:
        result.error = str(exc)
        atomic_write_json(work / "model_analyzer.json", result.to_json())
        return result
    import yaml

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    repository = out / "model_repository"
    build_repository([export_dir], repository, flavour="local")
    input_data = atomic_write_text(out / "input-data.json",
                                   json.dumps(input_data_json(export_samples(name, manifest.contract, None)[name])))
    libs = server_root.parent.parent / "nvidia_pytriton.libs"
    config = analyzer_config(repository, name, settings, out=out, input_data=input_data,
                             tritonserver=server_root / "bin" / "tritonserver", backend_dir=backend_dir,
                             perf_analyzer=pa.path, ld_library_path=os.pathsep.join([str(libs),
                                                                                     pa.env["LD_LIBRARY_PATH"]]),
                             ports=free_ports(3), concurrency=concurrency, measurement_ms=measurement_ms)
    result.config_file = str(atomic_write_text(out / "config.yaml", yaml.safe_dump(config, sort_keys=False)))
    result.command = [str(binary), "profile", "-f", result.config_file]
    log.info("Model Analyzer: %d settings x concurrency %s on '%s' ...", len(settings), list(concurrency), name)
    start = time.perf_counter()
    try:
        done = subprocess.run(result.command, capture_output=True, text=True, cwd=out, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        result.error = f"model-analyzer did not finish within {timeout_s:.0f} s"
    else:
        (out / "model-analyzer.log").write_text(done.stdout + done.stderr)
        csv_file = out / "export" / "results" / "metrics-model-inference.csv"
        if done.returncode != 0 or not csv_file.is_file():
            lines = [ln for ln in (done.stderr + done.stdout).strip().splitlines() if "has no data" not in ln]
            result.error = f"model-analyzer exit {done.returncode}: " + " | ".join(lines[-4:])[:800]
        else:
            result.rows = parse_results(csv_file, out / "models")
    result.seconds = round(time.perf_counter() - start, 1)
    if result.error:
        log.warning("Model Analyzer did not measure '%s': %s", name, result.error)
    atomic_write_json(work / "model_analyzer.json", result.to_json())
    return result


def analyzer_table(label: str, result: AnalyzerResult, concurrency: Sequence[int] = (1, 8)) -> str:
    """A markdown table of Model Analyzer's rows (items/s, avg and p99 ms per level), or its error."""
    head = [f"Serving knobs, {label}, by Triton Model Analyzer {analyzer_version()} (local launch, CPU instances, "
            f"perf_analyzer gRPC with the contract's --input-data; `{' '.join(result.command)}`):", ""]
    if result.error:
        return "\n".join([*head, f"Model Analyzer did not run: {result.error}"])
    cols = ["instances", "ORT threads", "delay µs"]
    for c in concurrency:
        cols += [f"c={c} /s", f"c={c} avg ms", f"c={c} p99 ms"]
    lines = [*head, "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in result.rows:
        cells = [str(r.knobs.instances), str(r.knobs.threads), str(r.knobs.delay_us)]
        for c in concurrency:
            p = r.points.get(c)
            cells += ([f"{p['throughput']:.0f}", f"{p.get('avg_ms', float('nan')):.2f}",
                       f"{p.get('p99_ms', float('nan')):.2f}"] if p else ["-"] * 3)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
