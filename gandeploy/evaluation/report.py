"""Reports of parity and benchmark runs: Markdown / terminal tables, JSON, and PNG figures (matplotlib Agg)."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gandeploy.errors import one_line
from gandeploy.models.io import to_uint8
from gandeploy.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from gandeploy.evaluation.bench import BenchReport
    from gandeploy.evaluation.parity import ParityReport


def _fmt(value: Any, spec: str = ".2e") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return format(value, spec)


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-Markdown table (also readable on a terminal)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


# --- parity -----------------------------------------------------------------------------------------------------


def parity_table(report: ParityReport) -> str:
    """One row per backend × case: errors, tolerance, verdict."""
    header = ["backend", "prec", "kind", "batch", "size", "max abs", "mean abs", "PSNR dB", "u8 max", "u8 mean",
              "result"]
    rows = []
    for r in report.rows:
        d = r.diff
        size = f"{r.case.hw[0]}x{r.case.hw[1]}" if r.case.hw else "-"
        if r.passed:
            verdict = "ok"
        else:
            verdict = "ERROR " + one_line(r.error or "", 60) if r.error else "BREACH " + "; ".join(r.breaches)
        rows.append([r.backend, r.precision, r.kind, str(r.case.batch), size, _fmt(d and d.max_abs),
                     _fmt(d and d.mean_abs), _fmt(d and d.psnr, ".1f"), _fmt(d and d.uint8_max, "d"),
                     _fmt(d and d.uint8_mean, ".3f"), verdict])
    return _table(header, rows)


def parity_markdown(report: ParityReport) -> str:
    from gandeploy.tolerances import TOLERANCES

    lines = [f"# Parity: {report.name} ({report.model}, {report.task})", "",
             f"Reference: PyTorch FP32 eager ({report.reference.get('torch', '')}). "
             f"Result: **{'PASS' if report.passed else 'FAIL'}**.", "", parity_table(report), ""]
    if report.skipped:
        lines += ["Skipped backends:", ""] + [f"- `{k}`: {v}" for k, v in report.skipped.items()] + [""]
    if report.tiled is not None:
        lines += [report.tiled.line(), ""]
    lines += ["Tolerances (`gandeploy/tolerances.py`):", "",
              _table(["precision", "kind", "max abs", "mean abs", "u8 max", "u8 mean"],
                     [[p, k, _fmt(t.max_abs, "g"), _fmt(t.mean_abs, "g"), _fmt(t.uint8_max, "d"),
                       _fmt(t.uint8_mean, "g")] for (p, k), t in TOLERANCES.items()]), ""]
    return "\n".join(lines)


def _as_picture(arr: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """[1, C, H, W] float in ``value_range`` or [1, H, W, C] uint8 → uint8 [H, W, C]."""
    return arr[0] if arr.dtype == np.uint8 else to_uint8(arr, value_range)[0]


def parity_figure(report: ParityReport) -> bytes:
    """PNG: per compared backend, reference | backend | |difference| amplified so its maximum shows white."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in report.compared if k in report.samples]
    fig, axes = plt.subplots(max(len(keys), 1), 3, figsize=(9, 3 * max(len(keys), 1)), squeeze=False)
    for row, key in enumerate(keys):
        ref, cand = report.samples[key]
        first = next(r for r in report.rows if r.backend == key)
        tol = first.tolerance
        if ref.ndim == 4:
            if ref.dtype == np.uint8:
                diff = np.abs(ref[0].astype(np.int16) - cand[0].astype(np.int16)).max(axis=-1)  # [H, W] levels
                scale, unit = float(tol.uint8_max or 255), f"{tol.uint8_max or 'no'} levels"
            else:
                diff = np.abs(ref[0] - cand[0]).max(axis=0)  # [H, W]
                scale, unit = float(tol.max_abs or 1.0), f"{tol.max_abs or 'none: distribution verdict'}"
            for col, (img, title) in enumerate(((ref, "reference (torch fp32)"), (cand, key))):
                pic = _as_picture(img, report.value_range)
                axes[row][col].imshow(pic[:, :, 0] if pic.shape[2] == 1 else pic, cmap="gray", vmin=0, vmax=255)
                axes[row][col].set_title(title, fontsize=9)
            peak = float(diff.max())
            amp = 1.0 / peak if peak > 0 else 1.0  # the largest difference shows white
            axes[row][2].imshow(np.clip(diff * amp, 0, 1), cmap="inferno", vmin=0, vmax=1)
            axes[row][2].set_title(f"|diff| x{amp:.3g}: max {peak:.2g} ({100 * peak / scale:.0f}% of limit {unit})",
                                   fontsize=8)
        else:  # vectors (2D points): scatter, and the error per sample
            for col, (pts, title) in enumerate(((ref, "reference (torch fp32)"), (cand, key))):
                axes[row][col].scatter(pts[:, 0], pts[:, 1 % pts.shape[1]], s=6)
                axes[row][col].set_title(title, fontsize=9)
            err = np.abs(ref - cand).max(axis=1)
            axes[row][2].bar(np.arange(err.size), err / float(tol.max_abs or 1.0))
            axes[row][2].set_title(f"|diff| / tolerance ({tol.max_abs or 'none: distribution'}) per sample",
                                   fontsize=9)
        for ax in axes[row]:
            if ref.ndim == 4:
                ax.set_xticks([])
                ax.set_yticks([])
    if not keys:
        axes[0][0].text(0.5, 0.5, "no backend compared", ha="center")
    fig.suptitle(f"parity of {report.name} ({report.model}): {'PASS' if report.passed else 'FAIL'}")
    return _png(fig)


def write_parity_report(report: ParityReport, out_dir: str | os.PathLike[str]) -> list[Path]:
    """``parity.json``, ``parity.md`` and ``parity_<name>.png`` in ``out_dir`` (+ Polygraphy inputs for each
    TensorRT comparison, whose ``polygraphy run`` commands ``parity.md`` lists); returns the paths."""
    from gandeploy.evaluation.polygraphy_repro import write_reproduction

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    repro_md, repro_files = write_reproduction(report, out)
    return [atomic_write_json(out / "parity.json", report.to_json()),
            atomic_write_text(out / "parity.md", parity_markdown(report) + repro_md + "\n"),
            atomic_write_bytes(out / f"parity_{report.name}.png", parity_figure(report)), *repro_files]


# --- bench --------------------------------------------------------------------------------------------------


def bench_table(report: BenchReport) -> str:
    header = ["backend", "batch", "p50 ms", "p99 ms", "items/s", "GFLOP/s", "% roofline", "vs torch"]
    rows = [[p.backend, str(p.batch), _fmt(p.p50_ms, ".2f"), _fmt(p.p99_ms, ".2f"), _fmt(p.throughput, ".1f"),
             _fmt(p.gflops, ".1f"), _fmt(p.pct_roofline, ".1f"), _fmt(p.vs_torch, ".2f")] for p in report.points]
    return _table(header, rows)


def served_table(served: dict[str, Any]) -> str:
    rows = []
    for model, entry in served.items():
        if not isinstance(entry, dict) or "points" not in entry:
            continue
        for p in entry["points"]:
            rows.append([model, entry.get("tool", "perf_analyzer"), str(p["concurrency"]), _fmt(p["throughput"], ".1f"),
                         _fmt(p["p50_ms"], ".2f"), _fmt(p["p99_ms"], ".2f"),
                         _fmt(entry["gain"].get(str(p["concurrency"])), ".2f")])
    header = ["served model", "measured by", "concurrency", "infer/s", "p50 ms", "p99 ms", "gain vs c=1"]
    return _table(header, rows) if rows else ""


def bench_text(report: BenchReport) -> str:
    """The terminal / Markdown summary of one export's benchmark."""
    size = f" at {report.hw[0]}x{report.hw[1]}" if report.hw else ""
    roof = (f"SGEMM roofline {report.roofline.gflops:.1f} GFLOP/s on {report.threads} threads; "
            if report.roofline else "no roofline; ")
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
    return _png(fig)


def write_bench_report(reports: list[BenchReport], out_dir: str | os.PathLike[str], extra: dict[str, Any] | None = None,
                       footer: str = "") -> list[Path]:
    """``bench.json``, ``bench.md`` (+ ``footer``) and ``bench.png`` in ``out_dir``; returns the paths."""
    out = Path(out_dir)
    data = {"format": "gandeploy.bench/1", "exports": [r.to_json() for r in reports], **(extra or {})}
    text = "# Benchmark\n\n" + "\n\n".join(bench_text(r) for r in reports) + "\n" + (f"\n{footer}\n" if footer else "")
    return [atomic_write_json(out / "bench.json", data), atomic_write_text(out / "bench.md", text),
            atomic_write_bytes(out / "bench.png", bench_figure(reports))]
