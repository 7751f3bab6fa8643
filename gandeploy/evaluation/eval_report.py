"""Files ``gandeploy evaluate`` writes: ``evaluate.json``, ``evaluate.md`` and ``evaluate.png`` (real | generated;
an image-to-image run dir's second direction as a second row of the figure).

``compare.json`` / ``compare.md`` hold the distribution-parity table of ``evaluate --compare``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.evaluation.compare import Comparison
from gandeploy.evaluation.evaluate import EvalResult
from gandeploy.evaluation.tables import write_stacked_png
from gandeploy.utils.io import atomic_write_json, atomic_write_text

METRICS = ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage")
GRID = 64  # pictures per side of the figure


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(rows: list[dict[str, Any]], first: str) -> list[str]:
    lines = [f"| {first} | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for row in rows:
        lines.append(f"| {row['_label']} | " + " | ".join(_fmt(row.get(m)) for m in METRICS) + " |")
    return lines


def eval_markdown(result: EvalResult) -> str:
    s = result.summary
    info = s.get("feature_extractor") or {}
    lines = [f"# evaluate {s['target']}", "",
             f"backend **{s['backend']}**, {s['n']} generated vs {s['n_real']} real ({s['real']}), features "
             f"**{s['features']}**" + (f" (held-out accuracy {info['held_out_accuracy']})"
                                        if "held_out_accuracy" in info else "")
             + (f", seeds {s['seeds'][0]}..{s['seeds'][1]}" if s.get("seeds") else "") + ".", "",
             f"KID over {s['kid_subsets']} subsets of {s['kid_subset_size']}; precision/recall k = 3, "
             "density/coverage k = 5.", ""]
    if s.get("direction"):
        rows = [result] + ([result.reverse] if result.reverse is not None else [])
        lines += [f"- **{r.summary['direction']}**: generator {r.summary.get('generator')}, {r.summary['n']} "
                  f"translated vs {r.summary['n_real']} real" for r in rows] + [""]
        lines += _table([{**r.summary, "_label": r.summary["direction"].split(" ")[0]} for r in rows], "direction")
        if result.reverse_skipped:
            lines += ["", f"Other direction not scored: {result.reverse_skipped}"]
    else:
        lines += _table([{**s, "_label": "all"}], "set")
    if result.per_class:
        lines += ["", "## Per class", ""]
        lines += _table([{**r, "_label": f"{r['class']} ({r['name']})"} for r in result.per_class], "class")
    if result.per_code:
        lines += _per_code_lines(result)
    return "\n".join(lines) + "\n"


def _per_code_lines(result: EvalResult) -> list[str]:
    cm = result.code_mapping or {}
    lines = ["", "## Per code (unsupervised categories, matched to digits)", "",
             f"Each code's samples judged by the digits classifier (held-out accuracy "
             f"{_fmt(cm.get('judge_held_out_accuracy'))}); best one-to-one code → digit mapping (Hungarian): "
             f"{_fmt(cm.get('accuracy'))} of all samples judged as their code's digit. Each row: code c's samples vs "
             "the real held-out items of its digit.", "",
             "| code | digit | judged as digit | n | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 4) + "|"]
    for r in result.per_code:
        lines.append(f"| {r['code']} | {r['mapped_class']} ({r['name']}) | {_fmt(r['share_judged_as_mapped'])} | "
                     f"{r['n_fake']} | " + " | ".join(_fmt(r.get(m)) for m in METRICS) + " |")
    return lines


def compare_markdown(comp: Comparison) -> str:
    s = comp.summary
    lines = [f"# distribution parity: {s['target']}", "",
             f"{s['n']} samples per backend on the same seeds, features **{s['features']}**; reference "
             f"**{comp.reference}**.", "", "## Each backend against the real set", ""]
    lines += _table([{**r["vs_real"], "_label": r["backend"]} for r in comp.rows], "backend")
    lines += ["", f"## Each backend against {comp.reference}'s samples", "",
              "| backend | FID | KID mean | KID std | max abs pixel diff | within the reference's KID std |", "|---|---|---|---|---|---|"]
    for r in comp.rows:
        v = r.get("vs_reference")
        if v is None:
            continue
        within = r.get("kid_within_std")
        lines.append(f"| {r['backend']} | {_fmt(v['fid'])} | {_fmt(v['kid_mean'])} | {_fmt(v['kid_std'])} | "
                     f"{_fmt(r['max_abs_vs_reference'])} | {'yes' if within else 'no'} |")
    for key, why in comp.skipped.items():
        lines.append(f"\nskipped {key}: {why}")
    return "\n".join(lines) + "\n"


def figure(result: EvalResult, path: Path) -> Path:
    """Real (left) beside generated (right): image grids, or a scatter / histogram for points. An image-to-image
    run dir's second direction (``result.reverse``) is a second row: real A | translated B."""

    from gandeploy.training import plots

    real, fake = result.real, result.fake
    assert real is not None and fake is not None  # noqa: S101 - set by evaluate
    if real.ndim == 2:
        return plots.scatter_points(real[:5000], fake[:5000], path, title=f"{result.summary['target']}: real vs generated")
    panels = [_panel(real, fake)]
    if result.reverse is not None and result.reverse.real is not None and result.reverse.fake is not None:
        panels.append(_panel(result.reverse.real, result.reverse.fake))
    return write_stacked_png(path, panels, gap=8)


def _panel(real: np.ndarray, fake: np.ndarray) -> Any:
    """One row of the figure: a grid of ``real`` [N, C, H, W] | a grid of ``fake``, as an RGB PIL image."""
    from PIL import Image

    from gandeploy.training import plots

    n = min(GRID, len(real), len(fake))
    side = int(math.sqrt(n)) or 1
    n = side * side
    r, f = real[:n], fake[:n]
    if r.shape[1] != f.shape[1]:  # grey real vs RGB generated (or the reverse): show both in RGB
        r, f = np.broadcast_to(r, (n, 3, *r.shape[2:])), np.broadcast_to(f, (n, 3, *f.shape[2:]))
    left = plots.image_grid(r, nrow=side)
    right = plots.image_grid(f, nrow=side)
    gap = 8
    canvas = Image.new("RGB", (left.width + right.width + gap, max(left.height, right.height)), "white")
    canvas.paste(left.convert("RGB"), (0, 0))
    canvas.paste(right.convert("RGB"), (left.width + gap, 0))
    return canvas


def write_eval(result: EvalResult, out_dir: Path, json_file: Path | None = None) -> list[Path]:
    """``evaluate.json``/``.md``/``.png`` in ``out_dir`` (and the JSON also at ``json_file``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_json(out_dir / "evaluate.json", result.to_json()),
               atomic_write_text(out_dir / "evaluate.md", eval_markdown(result)),
               figure(result, out_dir / "evaluate.png")]
    if json_file is not None:
        written.append(atomic_write_json(json_file, result.to_json()))
    return written


def write_compare(comp: Comparison, out_dir: Path, json_file: Path | None = None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_json(out_dir / "compare.json", comp.to_json()),
               atomic_write_text(out_dir / "compare.md", compare_markdown(comp))]
    if json_file is not None:
        written.append(atomic_write_json(json_file, comp.to_json()))
    return written
