"""The goals of the "speed where it is still lost" issue, judged from one ``make bench`` run.

| goal | judged on |
|---|---|
| served sampling, DCGAN ngf16, c=8 ≥ 2,300/s | perf_analyzer gRPC, the best knob setting |
| served sampling, DCGAN ngf64, c=8 ≥ 85 % of in-process ORT | served c=8 rate / ORT at the mean batch formed |
| served batch-1 latency ≤ 0.5 ms over in-process ORT batch-1 (ngf16) | perf_analyzer c=1 p50 − ORT batch-1 p50 |
| CycleGAN 256x256 served PNG → PNG ≥ 90 % of the SGEMM roofline | (``goals.check_goals``) |
| DCGAN training ≥ 1.3x the pytorch/examples loop | images/s ratio, the best of eager / ``--compile`` |
| CycleGAN 256x256 batch-1 GPU step ≤ 0.08 s | seconds per step on CUDA (n/a without a GPU) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gandeploy.evaluation.bench.knobs import KnobRow, best
from gandeploy.evaluation.bench.goals import Goal
from gandeploy.evaluation.bench.train_bench import TrainSpeed
from gandeploy.utils.logging import get_logger

log = get_logger("bench.goals")

SERVED_NGF16_RATE = 2300.0
SERVED_SHARE_OF_ORT = 85.0
LATENCY_OVER_MS = 0.5
TRAIN_RATIO = 1.3
GPU_STEP_S = 0.08


@dataclass
class SpeedFigures:
    """What the speed goals are judged on (None: not measured, with reasons in ``notes``)."""

    knobs16: list[KnobRow] = field(default_factory=list)
    knobs64: list[KnobRow] = field(default_factory=list)
    model_analyzer: dict[str, Any] | None = None  # model_analyzer.AnalyzerResult.to_json(): the ngf16 grid
    ort16_b1_ms: float | None = None  # in-process ONNX Runtime batch-1 p50, ngf16
    ort64: dict[int, float] = field(default_factory=dict)  # in-process ORT items/s by batch size, ngf64
    training: TrainSpeed | None = None
    gpu_step_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"knobs_dcgan64_ngf16": [r.to_json() for r in self.knobs16],
                "knobs_dcgan64": [r.to_json() for r in self.knobs64], "ort_ngf16_batch1_p50_ms": self.ort16_b1_ms,
                "ort_dcgan64_items_s": {str(k): v for k, v in self.ort64.items()},
                "training": self.training.to_json() if self.training else None, "gpu_cyclegan_step_s": self.gpu_step_s,
                "model_analyzer": self.model_analyzer, "notes": self.notes}


def ort_rate(export_dir: str | os.PathLike[str], batch: int, threads: int, reps: int = 10) -> tuple[float, float]:
    """In-process ONNX Runtime on ``export_dir`` at ``batch``: (items/s, p50 ms)."""
    from gandeploy.evaluation.bench.bench import run_bench

    report = run_bench(Path(export_dir), ["onnxruntime"], batch_sizes=(batch,), threads=threads, warmup=3, reps=reps,
                       roofline=False)
    point = report.point("onnxruntime", batch)
    if point is None:
        raise RuntimeError(f"ONNX Runtime did not run on {export_dir}: {report.skipped}")
    return point.throughput, point.p50_ms


def speed_goals(f: SpeedFigures) -> list[Goal]:
    """The issue's rows (the CycleGAN roofline row is ``goals.check_goals``'s)."""
    goals = []
    top = best(f.knobs16, 8)
    if top is not None:
        rate = top.points[8]["throughput"]
        goals.append(Goal("served sampling, DCGAN ngf16, concurrency 8 (perf_analyzer gRPC)", ">= 2300/s",
                          f"{rate:.0f}/s = {rate / SERVED_NGF16_RATE:.2f}x the goal", rate >= SERVED_NGF16_RATE,
                          f"best setting {top.knobs.label()}; mean batch {top.points[8]['mean_batch']:.1f}"))
    else:
        goals.append(Goal("served sampling, DCGAN ngf16, concurrency 8", ">= 2300/s", "not measured", None,
                          _why(f.knobs16)))
    top64 = best(f.knobs64, 8)
    if top64 is not None and f.ort64:
        formed = top64.points[8]["mean_batch"]
        b = min(f.ort64, key=lambda k: abs(k - formed))
        share = 100.0 * top64.points[8]["throughput"] / f.ort64[b]
        goals.append(Goal("served sampling, DCGAN ngf64, concurrency 8, % of in-process ONNX Runtime",
                          f">= {SERVED_SHARE_OF_ORT:.0f} %", f"{share:.1f} %", share >= SERVED_SHARE_OF_ORT,
                          f"{top64.points[8]['throughput']:.0f}/s served ({top64.knobs.label()}, mean batch "
                          f"{formed:.1f}) vs ORT {f.ort64[b]:.0f}/s at batch {b}"))
    else:
        goals.append(Goal("served sampling, DCGAN ngf64, concurrency 8, % of in-process ONNX Runtime",
                          f">= {SERVED_SHARE_OF_ORT:.0f} %", "not measured", None, _why(f.knobs64)))
    fast = best(f.knobs16, 1, by="p50_ms")
    if fast is not None and f.ort16_b1_ms is not None:
        over = fast.points[1]["p50_ms"] - f.ort16_b1_ms
        goals.append(Goal("served batch-1 latency over in-process ONNX Runtime batch-1 (DCGAN ngf16)",
                          f"<= {LATENCY_OVER_MS} ms over", f"{over:.2f} ms over", over <= LATENCY_OVER_MS,
                          f"served p50 {fast.points[1]['p50_ms']:.2f} ms ({fast.knobs.label()}) vs ORT "
                          f"{f.ort16_b1_ms:.2f} ms"))
    else:
        goals.append(Goal("served batch-1 latency over in-process ONNX Runtime", f"<= {LATENCY_OVER_MS} ms over",
                          "not measured", None, _why(f.knobs16)))
    t = f.training
    if t is not None:
        runs = {"eager": t.gandeploy, **({"--compile": t.gandeploy_compile} if t.gandeploy_compile else {})}
        how, rate = max(runs.items(), key=lambda kv: kv[1])
        ratio = rate / t.examples
        detail = (f"gandeploy {how} {rate:.1f} img/s vs pytorch/examples loop {t.examples:.1f} img/s; "
                  + ", ".join(f"{k} {v / t.examples:.2f}x" for k, v in runs.items())
                  + (f"; compile warm-up {t.compile_s:.0f} s" if t.compile_s else "")
                  + "".join(f"; {n}" for n in t.notes))
        goals.append(Goal(f"DCGAN 64x64 training, batch {t.batch}, {t.threads} threads, vs the pytorch/examples loop",
                          f">= {TRAIN_RATIO}x", f"{ratio:.2f}x", ratio >= TRAIN_RATIO, detail))
    else:
        goals.append(Goal("DCGAN training vs the pytorch/examples loop", f">= {TRAIN_RATIO}x", "not measured", None,
                          "--no-train"))
    if f.gpu_step_s is not None:
        goals.append(Goal("CycleGAN 256x256 batch-1 GPU training step", f"<= {GPU_STEP_S} s", f"{f.gpu_step_s:.3f} s",
                          f.gpu_step_s <= GPU_STEP_S, f"{f.gpu_step_s / GPU_STEP_S:.2f}x the goal"))
    else:
        goals.append(Goal("CycleGAN 256x256 batch-1 GPU training step", f"<= {GPU_STEP_S} s", "not measured", None,
                          next((n for n in f.notes if "GPU" in n), "no CUDA device here")))
    return goals


def _why(rows: list[KnobRow]) -> str:
    return next((r.skipped for r in rows if r.skipped), "no server or perf_analyzer (--no-serve / --no-perf-analyzer)")
