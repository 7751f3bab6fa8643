"""Reports of parity runs: Markdown / terminal tables, JSON, and PNG figures (matplotlib Agg)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gandeploy.errors import one_line
from gandeploy.evaluation.tables import figure_png, fmt, markdown_table
from gandeploy.models.io import to_uint8
from gandeploy.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from gandeploy.evaluation.parity.parity import ParityReport


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
        rows.append([r.backend, r.precision, r.kind, str(r.case.batch), size, fmt(d and d.max_abs),
                     fmt(d and d.mean_abs), fmt(d and d.psnr, ".1f"), fmt(d and d.uint8_max, "d"),
                     fmt(d and d.uint8_mean, ".3f"), verdict])
    return markdown_table(header, rows)


def parity_markdown(report: ParityReport) -> str:
    from gandeploy.tolerances import FLOOR_FACTOR, TOLERANCES

    lines = [f"# Parity: {report.name} ({report.model}, {report.task})", "",
             f"Reference: PyTorch FP32 eager ({report.reference.get('torch', '')}). "
             f"Result: **{'PASS' if report.passed else 'FAIL'}**.", "", parity_table(report), ""]
    if report.skipped:
        lines += ["Skipped backends:", ""] + [f"- `{k}`: {v}" for k, v in report.skipped.items()] + [""]
    if report.tiled is not None:
        lines += [report.tiled.line(), ""]
    lines += ["Tolerances (`gandeploy/tolerances.py`):", "",
              markdown_table(["precision", "kind", "max abs", "mean abs", "u8 max", "u8 mean"],
                     [[p, k, fmt(t.max_abs, "g"), fmt(t.mean_abs, "g"), fmt(t.uint8_max, "d"),
                       fmt(t.uint8_mean, "g")] for (p, k), t in TOLERANCES.items()]), "",
              f"FP32 float rows: max abs and mean abs bounds are the larger of these and {FLOOR_FACTOR:g} x the "
              "case's own FP32 noise floor (PyTorch FP32 vs float64; per row in the JSON as `floor`).", ""]
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
    return figure_png(fig)


def write_parity_report(report: ParityReport, out_dir: str | os.PathLike[str]) -> list[Path]:
    """``parity.json``, ``parity.md`` and ``parity_<name>.png`` in ``out_dir`` (+ Polygraphy inputs for each
    TensorRT comparison, whose ``polygraphy run`` commands ``parity.md`` lists); returns the paths."""
    from gandeploy.evaluation.parity.polygraphy_repro import write_reproduction

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    repro_md, repro_files = write_reproduction(report, out)
    return [atomic_write_json(out / "parity.json", report.to_json()),
            atomic_write_text(out / "parity.md", parity_markdown(report) + repro_md + "\n"),
            atomic_write_bytes(out / f"parity_{report.name}.png", parity_figure(report)), *repro_files]
