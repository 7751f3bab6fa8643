"""Reports of benchmark runs: Markdown / terminal tables, JSON, and PNG figures (matplotlib Agg)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gandeploy.evaluation.tables import figure_png, fmt, markdown_table
from gandeploy.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from gandeploy.evaluation.bench.bench import BenchReport


def bench_table(report: BenchReport) -> str:
    header = ["backend", "batch", "p50 ms", "p99 ms", "items/s", "GFLOP/s", "% roofline", "roof", "vs torch"]
    rows = [[p.backend, str(p.batch), fmt(p.p50_ms, ".2f"), fmt(p.p99_ms, ".2f"), fmt(p.throughput, ".1f"),
             fmt(p.gflops, ".1f"), fmt(p.pct_roofline, ".1f"), p.bound or "-",
             fmt(p.vs_torch, ".2f")] for p in report.points]
    return markdown_table(header, rows)


def served_table(served: dict[str, Any]) -> str:
    rows = []
    for model, entry in served.items():
        if not isinstance(entry, dict) or "points" not in entry:
            continue
        for p in entry["points"]:
            rows.append([model, entry.get("tool", "perf_analyzer"), str(p["concurrency"]), fmt(p["throughput"], ".1f"),
                         fmt(p["p50_ms"], ".2f"), fmt(p["p99_ms"], ".2f"),
                         fmt(entry["gain"].get(str(p["concurrency"])), ".2f")])
    header = ["served model", "measured by", "concurrency", "infer/s", "p50 ms", "p99 ms", "gain vs c=1"]
    return markdown_table(header, rows) if rows else ""


def bench_text(report: BenchReport) -> str:
    """The terminal / Markdown summary of one export's benchmark."""
    size = f" at {report.hw[0]}x{report.hw[1]}" if report.hw else ""
    r = report.roofline
    memory = f" and triad {r.bandwidth_gbs:.1f} GB/s (% roofline is of min(peak, intensity x bandwidth))" if (
        r and r.bandwidth_gbs) else ""
    roof = (f"roofline: SGEMM {r.gflops:.1f} GFLOP/s{memory} on {report.threads} threads; " if r
            else "no roofline; ")
    lines = [f"## {report.name} ({report.model}{size})", "",
             f"{roof}{report.gflop_per_item:.3f} GFLOP per item." if report.gflop_per_item else roof, "",
             bench_table(report)]
    served = served_table(report.served)
    if served:
        lines += ["", "Served, one item per request, concurrency sweep:", "", served]
    skipped = dict(report.skipped)
    for model, entry in report.served.items():
        if isinstance(entry, str):
            skipped["perf_analyzer" if model in ("skipped", "perf_analyzer") else model] = entry
        elif isinstance(entry, dict) and "skipped" in entry:
            skipped[f"served sweep of {model}"] = entry["skipped"]
    if skipped:
        lines += ["", "Skipped:"] + [f"- {k}: {v}" for k, v in skipped.items()]
    lines += [f"- note: {n}" for n in report.notes]
    return "\n".join(lines)


def bench_figure(reports: list[BenchReport]) -> bytes:
    """PNG, one panel per export: % of the SGEMM roofline per backend vs batch size (bars for a single batch
    size), each point labelled with its items/s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(reports), 1)
    fig, axes = plt.subplots(1, n, figsize=(6.5 * n, 4.8), squeeze=False)
    for ax, report in zip(axes[0], reports, strict=False):
        backends = list(dict.fromkeys(p.backend for p in report.points))
        batches = sorted({p.batch for p in report.points})
        value = (lambda p: p.pct_roofline) if report.roofline else (lambda p: p.throughput)  # noqa: E731
        if len(batches) == 1:
            pts = [p for p in (report.point(k, batches[0]) for k in backends) if p is not None]
            bars = ax.bar(backends, [value(p) or 0 for p in pts], color=[f"C{i}" for i in range(len(pts))])
            for bar, p in zip(bars, pts, strict=True):
                ax.annotate(f"{p.throughput:.3g}/s", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=8)
            ax.tick_params(axis="x", labelrotation=20, labelsize=8)
            ax.set_xlabel(f"backend (batch {batches[0]})")
        else:
            for key in backends:
                pts = sorted((p for p in report.points if p.backend == key), key=lambda p: p.batch)
                ax.plot([p.batch for p in pts], [value(p) for p in pts], marker="o", label=key)
                ax.annotate(f"{pts[-1].throughput:.3g}/s", (pts[-1].batch, value(pts[-1])), fontsize=7,
                            textcoords="offset points", xytext=(4, 0))
            ax.set_xscale("log", base=2)
            ax.set_xticks(batches, [str(b) for b in batches])
            ax.set_xlabel("batch size")
            ax.legend(fontsize=8, loc="upper left")
        if report.roofline:
            ax.axhline(100.0, color="k", linestyle="--", linewidth=1)
            ax.set_ylabel(f"% of SGEMM roofline ({report.roofline.gflops:.0f} GFLOP/s)")
        else:
            ax.set_ylabel("items / s (p50)")
        size = f" {report.hw[0]}x{report.hw[1]}" if report.hw else ""
        gflop = f", {report.gflop_per_item:.3g} GFLOP/item" if report.gflop_per_item else ""
        ax.set_title(f"{report.name} ({report.model}{size}{gflop}), {report.threads} threads", fontsize=10)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return figure_png(fig)


def write_bench_report(reports: list[BenchReport], out_dir: str | os.PathLike[str], extra: dict[str, Any] | None = None,
                       footer: str = "") -> list[Path]:
    """``bench.json``, ``bench.md`` (+ ``footer``) and ``bench.png`` in ``out_dir``; returns the paths."""
    out = Path(out_dir)
    data = {"format": "gandeploy.bench/1", "exports": [r.to_json() for r in reports], **(extra or {})}
    text = "# Benchmark\n\n" + "\n\n".join(bench_text(r) for r in reports) + "\n" + (f"\n{footer}\n" if footer else "")
    return [atomic_write_json(out / "bench.json", data), atomic_write_text(out / "bench.md", text),
            atomic_write_bytes(out / "bench.png", bench_figure(reports))]
