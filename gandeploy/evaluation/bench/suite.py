"""``make bench``: default-size DCGAN 64x64 and CycleGAN 256x256 exports, benchmarked locally and served, plus
the serving knob sweep (``knobs.py``, a DCGAN ngf16 export), the training loops (``train_bench.py``) and the
goals of both speed issues (``goals.py``, ``speed_goals.py``).

Random-init weights: speed does not depend on weight values (same shapes, same kernels). The init is scaled
(``lively_init``) so activations have realistic magnitudes rather than DCGAN-init's near-zero outputs.
The speed goals of the issue are checked at the end and printed as PASS / MISS (never an error).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gandeploy.errors import BackendUnavailable
from gandeploy.evaluation.bench.bench import BenchReport, default_threads, run_bench
from gandeploy.evaluation.bench.goals import Goal, check_goals
from gandeploy.evaluation.bench.speed_goals import SpeedFigures, ort_rate, speed_goals
from gandeploy.formats import FORMATS
from gandeploy.utils.logging import get_logger

log = get_logger("bench.suite")

INT8_ROWS = ("dcgan64", "cyclegan256")  # exported with --int8 too: INT8 vs FP32 ONNX Runtime rows
WEIGHTS_NOTE = ("weights are random (seeded): speed does not depend on weight values, only on shapes, so these "
                "figures hold for trained generators of the same architecture")


def lively_init(module: nn.Module, seed: int = 0) -> nn.Module:
    """He-style init (std sqrt(2 / fan-in)) + non-trivial norm statistics: outputs of realistic magnitude.

    DCGAN's N(0, 0.02) init shrinks activations layer after layer, so an untrained DCGAN outputs ~1e-10:
    useless for parity (every error looks tiny) and unlike a trained model. Deterministic for ``seed``.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                if isinstance(m, nn.ConvTranspose2d):  # each output sees in·k²/stride² weights
                    fan = m.in_channels * m.kernel_size[0] * m.kernel_size[1] / (m.stride[0] * m.stride[1])
                else:
                    fan = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(2.0 / fan))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.BatchNorm2d) and m.running_mean is not None and m.running_var is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            elif isinstance(m, nn.Embedding):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
    return module


def make_run(run_dir: str | os.PathLike[str], model: str, arch: Any, *, seed: int = 0,
             every_generator: bool = False) -> Path:
    """A run dir (config.json + checkpoints/latest.pt) holding a ``lively_init`` generator of ``arch`` (the
    family's first generator key; ``every_generator``: one per key, seeds ``seed``, ``seed + 1``, ...)."""
    from gandeploy.config import RunConfig, save_run_config
    from gandeploy.registry import get_model
    from gandeploy.training.checkpoint import save_checkpoint

    spec = get_model(model)
    run_dir = Path(run_dir)
    keys = spec.generator_keys if every_generator else spec.generator_keys[:1]
    models = {key: lively_init(spec.build_generator(arch), seed + i).state_dict() for i, key in enumerate(keys)}
    save_run_config(run_dir, RunConfig(model=spec.name, arch=arch, source="imported:random-init"))
    save_checkpoint(run_dir / "checkpoints" / "latest.pt",
                    {"step": 0, "epoch": 0, "models": models, "optimizers": {}})
    return run_dir


@dataclass
class SuiteResult:
    reports: list[BenchReport]
    goals: list[Goal]
    serve_ready_s: float | None
    notes: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)  # markdown: the knob sweeps
    speed: SpeedFigures | None = None


@contextlib.contextmanager
def _maybe_server(exports: list[Path], threads: int, log_file: Path) -> Iterator[Any]:
    from gandeploy.evaluation.served import local_server

    try:
        with local_server(exports, threads=threads, keep_log=log_file) as server:
            yield server
    except BackendUnavailable as exc:
        log.warning("served benchmarks skipped: %s", exc)
        yield None


def run_suite(work_dir: str | os.PathLike[str] = "reports/bench-suite", *, threads: int | None = None,
              reps: int = 10, serve: bool = True, perf_analyzer: bool = True,
              knob_instances: tuple[int, ...] = (1, 2), knob_threads: tuple[int, ...] = (1, 2),
              knob_delays: tuple[int, ...] = (0, 500), train: bool = True, train_steps: int = 8) -> SuiteResult:
    """Export the default-size models into ``work_dir``, benchmark them (local and served), sweep the serving
    knobs, time the training loops, and check the goals."""
    from gandeploy.evaluation.parity.int8_verdict import judge_for_run
    from gandeploy.export.pipeline import export_run
    from gandeploy.models.cyclegan import CycleGANConfig
    from gandeploy.models.dcgan import DCGANConfig

    work = Path(work_dir)
    threads = int(threads or default_threads())
    plan = {"dcgan64": ("dcgan", DCGANConfig(nz=100, ngf=64, image_size=64), 64, {}),
            "dcgan64-ngf16": ("dcgan", DCGANConfig(nz=100, ngf=16, ndf=16, image_size=64), 64, {}),
            "cyclegan256": ("cyclegan", CycleGANConfig(ngf=64, n_blocks=9, image_size=256), 8,
                            {"min_size": (64, 64), "opt_size": (256, 256), "max_size": (256, 256)})}
    exports: dict[str, Path] = {}
    for name, (model, arch, max_batch, sizes) in plan.items():
        out = work / "export" / name
        int8 = name in INT8_ROWS  # INT8 vs FP32 rows: accepted (or refused, with the reason) by the export's verdict
        if _reusable(out, int8):
            log.info("reusing %s", out)
        else:
            run = make_run(work / "runs" / name, model, arch)
            log.info("exporting %s (%s, random init%s) ...", name, model, ", with INT8" if int8 else "")
            export_run(run, out, fp16=True, max_batch=max_batch, int8=int8, int8_judge=judge_for_run if int8 else None,
                       force=True, **sizes)  # type: ignore[arg-type]
        exports[name] = out
    local = tuple(k for k, f in FORMATS.items() if f.device != "server")  # every in-process format of the table
    served_keys = ("triton", "triton-ensemble")
    reports: dict[str, BenchReport] = {}
    serve_ready: float | None = None
    main = {k: v for k, v in exports.items() if k != "dcgan64-ngf16"}  # the knob sweep serves ngf16 itself
    with (_maybe_server(list(main.values()), threads, work / "tritonserver.log") if serve
          else contextlib.nullcontext()) as server:
        url = server.url("http") if server is not None else None  # type: ignore[attr-defined]
        if server is not None:
            serve_ready = server.ready_seconds  # type: ignore[attr-defined]
        for name, export in main.items():
            translation = plan[name][0] == "cyclegan"
            keys = local + (served_keys if url else ())
            report = run_bench(export, keys, batch_sizes=(1,) if translation else (1, 8, 64), url=url,
                               protocol="http", threads=threads, warmup=1 if translation else 2,
                               reps=max(3, reps // 2) if translation else reps, roofline=True)  # SGEMM measured now
            report.notes.append(WEIGHTS_NOTE)
            if url and perf_analyzer:
                report.served = _sweeps(report, export, url, translation)
            elif not url:
                report.served = {"skipped": "no server (tritonserver unavailable or --no-serve)"}
            reports[name] = report
    goals = check_goals(reports.get("dcgan64"), reports.get("cyclegan256"), serve_ready)
    speed, tables = _speed_figures(exports, work, threads, reps, serve and perf_analyzer,
                                   (knob_instances, knob_threads, knob_delays), train, train_steps)
    return SuiteResult(list(reports.values()), goals + speed_goals(speed), serve_ready, [WEIGHTS_NOTE, *speed.notes],
                       tables, speed)


def _reusable(out: Path, int8: bool) -> bool:
    """An earlier suite's export in ``out`` holds what this one needs (FP16, and the INT8 step when asked)."""
    if not ((out / "manifest.json").is_file() and (out / "model.fp16.onnx").is_file()):
        return False
    step = json.loads((out / "manifest.json").read_text()).get("int8", {})
    return not int8 or bool(step) and not str(step.get("reason", "")).startswith("not requested")


def _speed_figures(exports: dict[str, Path], work: Path, threads: int, reps: int, served: bool,
                   knob_grid: tuple[tuple[int, ...], ...], train: bool, train_steps: int) -> tuple[Any, list[str]]:
    """The figures of the speed issue's goals: knob sweeps (ngf16: the grid; ngf64: the default and ngf16's
    best setting), in-process ONNX Runtime references, the training loops, the GPU CycleGAN step."""
    from gandeploy.evaluation.bench import knobs as K
    from gandeploy.evaluation.bench.train_bench import cyclegan_gpu_step, training_speed

    f, tables = SpeedFigures(), []
    if served:
        f.knobs16 = _ngf16_knobs(exports["dcgan64-ngf16"], K.grid(*knob_grid), work, f, tables)
        settings = [K.Knobs(1, threads, 0)]
        top = K.best(f.knobs16, 8)
        if top is not None and top.knobs not in settings:
            settings.append(top.knobs)
        f.knobs64 = K.sweep_knobs(exports["dcgan64"], settings, log_dir=work)
        tables.append(K.knobs_table("DCGAN 64x64 ngf64", f.knobs64))
        f.ort16_b1_ms = ort_rate(exports["dcgan64-ngf16"], 1, threads, reps=max(reps, 50))[1]
        formed = {max(1, round(r.points[8]["mean_batch"])) for r in f.knobs64 if 8 in r.points}
        f.ort64 = {b: ort_rate(exports["dcgan64"], b, threads, reps)[0] for b in sorted(formed | {8})}
    if train:
        f.training = training_speed(steps=train_steps, threads=threads)
    import torch

    if torch.cuda.is_available():
        try:
            f.gpu_step_s = cyclegan_gpu_step()
        except Exception as exc:  # noqa: BLE001 - reported as the row's reason
            f.notes.append(f"GPU CycleGAN step failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    else:
        f.notes.append("GPU CycleGAN step: no CUDA device here")
    return f, tables


def _ngf16_knobs(export: Path, settings: list[Any], work: Path, f: Any, tables: list[str]) -> list[Any]:
    """The ngf16 knob grid by Triton Model Analyzer; gandeploy's own sweep then re-measures Model Analyzer's
    best settings (c=8 throughput, c=1 avg latency) for what it does not report: the batch the dynamic
    batcher formed and p50. Where Model Analyzer cannot run, its exact error is kept and the own sweep does
    the whole grid."""
    from gandeploy.evaluation.bench import knobs as K
    from gandeploy.evaluation.bench.model_analyzer import analyzer_table, run_model_analyzer

    analyzed = run_model_analyzer(export, settings, work)
    f.model_analyzer = analyzed.to_json()
    tables.append(analyzer_table("DCGAN 64x64 ngf16", analyzed))
    if analyzed.error or not analyzed.rows:
        f.notes.append(f"Model Analyzer did not run ({analyzed.error}); gandeploy's own sweep measured the grid")
        rows = K.sweep_knobs(export, settings, log_dir=work)
        tables.append(K.knobs_table("DCGAN 64x64 ngf16 (gandeploy's sweep)", rows))
        return rows
    chosen = [r.knobs for r in (K.best(analyzed.rows, 8), K.best(analyzed.rows, 1, by="avg_ms")) if r is not None]
    rows = K.sweep_knobs(export, list(dict.fromkeys(chosen)), log_dir=work)
    tables.append(K.knobs_table("DCGAN 64x64 ngf16, Model Analyzer's best settings re-measured for the batch "
                                "formed and p50", rows))
    return rows


def _sweeps(report: BenchReport, export: Path, url: str, translation: bool) -> dict[str, Any]:
    """perf_analyzer sweeps; when perf_analyzer cannot run, a Python closed-loop client stands in."""
    from gandeploy.evaluation.bench.perf_analyzer import python_sweep, sweep_export
    from gandeploy.manifest import load_manifest

    manifest = load_manifest(export)
    levels = (1, 2) if translation else (1, 2, 4, 8)
    start = time.perf_counter()
    single = report.point("triton-ensemble", 1) or report.point("triton", 1)
    result = sweep_export(manifest, url, protocol="http", hw=report.hw, concurrency=levels,
                          expected_ms=single.p50_ms if single else None)
    missing = isinstance(result.get("skipped"), str) or any("points" not in v for v in result.values())
    if missing:
        reason = result.get("skipped") or "; ".join(f"{k}: {v.get('skipped')}" for k, v in result.items()
                                                    if "points" not in v)
        log.warning("perf_analyzer did not measure everything (%s); the Python client fills in", reason)
        fallback = python_sweep(export, url, protocol="http", hw=report.hw, concurrency=levels,
                                seconds=8.0 if translation else 4.0)
        merged = {k: v for k, v in result.items() if isinstance(v, dict) and "points" in v}
        result = {**fallback, **merged, "perf_analyzer": reason}
    log.info("served sweeps of %s took %.0f s", report.name, time.perf_counter() - start)
    return result
