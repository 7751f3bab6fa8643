"""The speed goals ``make bench`` judges from its benchmark reports (DCGAN 64x64 sampling against the roofline
and PyTorch eager, concurrency gain, CycleGAN 256x256 served, serve start), and ``Goal``, the verdict row that
these and ``speed_goals.py`` produce. A goal that could not be measured here is n/a, never a MISS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gandeploy.evaluation.bench.bench import BenchReport


@dataclass(frozen=True)
class Goal:
    """One speed goal of the issue and its measured figure."""

    name: str
    target: str
    measured: str
    passed: bool | None  # None: could not be measured here
    detail: str = ""

    def line(self) -> str:
        verdict = "n/a " if self.passed is None else ("PASS" if self.passed else "MISS")
        detail = f"; {self.detail}" if self.detail else ""
        return f"[{verdict}] {self.name}: {self.measured} (goal {self.target}){detail}"


def _best(report: BenchReport, backends: tuple[str, ...], batch: int | None = None) -> Any:
    pts = [p for p in report.points if p.backend in backends and (batch is None or p.batch == batch)]
    return max(pts, key=lambda p: p.throughput, default=None)


def _concurrency_detail(report: BenchReport, sweep: dict[str, Any]) -> str:
    """Which tool measured the sweep, its c=1 / c=8 rates, and the roofline's cap on any concurrency."""
    text = str(sweep.get("tool", "perf_analyzer"))
    rate = {int(p["concurrency"]): float(p["throughput"]) for p in sweep.get("points", [])}
    if 1 in rate and 8 in rate:
        text += f", {rate[1]:.0f}/s at c=1, {rate[8]:.0f}/s at c=8"
        if report.roofline and report.gflop_per_item and rate[1] > 0:
            cap = report.roofline.gflops / report.gflop_per_item  # items/s at 100 % of the roofline
            text += f"; the roofline caps any concurrency at {cap:.0f}/s = {cap / rate[1]:.1f}x c=1"
    return text


def check_goals(dcgan: BenchReport | None, cyclegan: BenchReport | None, serve_ready_s: float | None) -> list[Goal]:
    """The issue's speed goals against the measured reports."""
    goals: list[Goal] = []
    fast = ("onnxruntime", "onnxruntime-fp16", "tensorrt", "triton")
    if dcgan is not None:
        big = max((p.batch for p in dcgan.points), default=None)
        best = _best(dcgan, fast, big)
        torch_pt = dcgan.point("torch", big) if big else None
        if best and best.pct_roofline is not None and torch_pt:
            goals.append(Goal("DCGAN 64x64 batch sampling, % of roofline", ">= 60 %", f"{best.pct_roofline:.1f} %",
                              best.pct_roofline >= 60.0, f"{best.backend} at batch {big}"))
            ratio = best.throughput / torch_pt.throughput
            detail = f"{best.backend} at batch {big}"
            if torch_pt.pct_roofline:  # the goal's ceiling: 3x eager cannot exceed 100 % of the roofline
                detail += (f"; torch eager itself runs at {torch_pt.pct_roofline:.0f} % of the roofline, so 3x "
                           f"would need {3 * torch_pt.pct_roofline:.0f} %")
            goals.append(Goal("DCGAN 64x64 batch sampling vs PyTorch eager", ">= 3.0x", f"{ratio:.2f}x", ratio >= 3.0,
                              detail))
        else:
            goals.append(Goal("DCGAN 64x64 batch sampling", ">= 60 % roofline, >= 3x torch", "not measured", None))
        sweep = dcgan.served.get(dcgan.name) or {}
        gain = sweep.get("gain", {}).get("8")
        goals.append(Goal("single-item sampling, concurrency 8 vs 1", ">= 3.0x",
                          f"{gain:.2f}x" if gain else "not measured", None if gain is None else gain >= 3.0,
                          _concurrency_detail(dcgan, sweep)))
    if cyclegan is not None:
        candidates = []
        ens = cyclegan.point("triton-ensemble", 1)
        if ens is not None and ens.pct_roofline is not None:
            candidates.append((ens.pct_roofline, "sequential client, PNG in/out"))
        sweep = cyclegan.served.get(cyclegan.name) or {}
        for p in sweep.get("points", []):
            if cyclegan.roofline and cyclegan.gflop_per_item:
                pct = 100.0 * p["throughput"] * cyclegan.gflop_per_item / cyclegan.roofline.gflops
                candidates.append((pct, f"{sweep.get('tool', 'perf_analyzer')} concurrency {p['concurrency']}"))
        if candidates:
            pct, how = max(candidates)
            goals.append(Goal("CycleGAN 256x256 served (PNG in -> PNG out), % of roofline", ">= 90 %", f"{pct:.1f} %",
                              pct >= 90.0, how))
        else:
            goals.append(Goal("CycleGAN 256x256 served, % of roofline", ">= 90 %", "not measured", None))
    goals.append(Goal("serve ready", "<= 10 s", f"{serve_ready_s:.1f} s" if serve_ready_s else "not measured",
                      None if serve_ready_s is None else serve_ready_s <= 10.0,
                      "tritonserver start until every model READY (both exports)"))
    return goals
