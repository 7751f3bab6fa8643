"""Correctness at export time: every artifact against the FP32 PyTorch reference on fixed inputs.

Tolerances (outputs in tanh-space units: pictures of another declared ``value_range`` scaled to [-1, 1], vector
outputs relative to their extent, see gandeploy/diffs.py; uint8 levels of the declared range):

- FP32 ONNX on ONNX Runtime: max abs ≤ ``FP32_MAX_ABS`` (1e-4).
- FP16 (ONNX FP16 on ORT, TensorRT FP16): max abs ≤ ``FP16_MAX_ABS`` (2e-2) and uint8 pictures within
  ``FP16_MAX_LEVELS`` (2) levels of the reference's (1 level = 1/127.5), see ``onnx2fp16``.

Cases: sampling models at batch 1 and at ``max_batch``; image-to-image models at batch 1 at the opt size,
at ``max_batch`` at the min size (bounded CPU cost), and at batch 2 at a non-square size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from gandeploy.diffs import compare_float
from gandeploy.errors import ExportError
from gandeploy.tolerances import TOLERANCES
from gandeploy.export.onnx2fp16 import FP16_MAX_ABS, FP16_MAX_LEVELS
from gandeploy.models.io import DEFAULT_RANGE, HW, GeneratorIO, example_inputs
from gandeploy.runtimes.base import Runtime
from gandeploy.utils.logging import get_logger

log = get_logger("export.validate")

FP32_MAX_ABS = float(TOLERANCES[("fp32", "float")].max_abs)  # type: ignore[arg-type]  # the one table


@dataclass(frozen=True)
class Case:
    """One fixed input batch: size, image size (translation) and the seed of ``example_inputs``."""

    batch: int
    hw: HW | None = None
    seed: int = 0

    def label(self) -> str:
        return f"batch {self.batch}" + (f" at {self.hw[0]}x{self.hw[1]}" if self.hw else "")


@dataclass(frozen=True)
class Reference:
    """Inputs and PyTorch outputs of one case."""

    case: Case
    feeds: dict[str, np.ndarray]
    output: np.ndarray


@dataclass(frozen=True)
class Tolerance:
    max_abs: float
    max_levels: int | None = None  # uint8 levels, image outputs only

    def as_dict(self) -> dict[str, Any]:
        return {"max_abs": self.max_abs, **({"uint8_levels": self.max_levels} if self.max_levels else {})}


FP32 = Tolerance(FP32_MAX_ABS)
FP16 = Tolerance(FP16_MAX_ABS, FP16_MAX_LEVELS)


def nonsquare(sizes: dict[str, HW], multiple: int = 4) -> HW:
    """A non-square size inside [min, max] on the size rule: the opt size if it is non-square, else 3/4 of its
    height."""
    lo, opt, hi = sizes["min"], sizes["opt"], sizes["max"]
    if opt[0] != opt[1]:
        return opt
    h = max(lo[0], (opt[0] * 3 // 4) // multiple * multiple)
    if h == opt[0]:  # min == opt: grow the width instead
        w = min(hi[1], opt[1] + multiple)
        return (opt[0], w) if w != opt[0] else opt
    return h, opt[1]


def check_cases(max_batch: int, sizes: dict[str, HW] | None, multiple: int = 4) -> list[Case]:
    """The fixed batches every artifact is checked on; ``sizes`` (min/opt/max, image inputs only) adds the
    image sizes: the opt size, max batch at the min size, and a non-square size (on the size rule ``multiple``)."""
    if sizes is not None:
        cases = [Case(1, sizes["opt"], 0), Case(max_batch, sizes["min"], 1),
                 Case(min(2, max_batch), nonsquare(sizes, multiple), 2)]
    else:
        cases = [Case(b, None, i) for i, b in enumerate(sorted({1, max_batch}))]
    unique: list[Case] = []
    for case in cases:
        if all((c.batch, c.hw) != (case.batch, case.hw) for c in unique):
            unique.append(case)
    return unique


def references(torch_rt: Runtime, io_spec: GeneratorIO, cases: Sequence[Case], num_classes: int) -> list[Reference]:
    """Run the PyTorch reference on every case (computed once, shared by all artifacts)."""
    refs = []
    for case in tqdm(cases, desc="PyTorch reference", unit="batch", leave=False, disable=None):
        feeds = example_inputs(io_spec, case.batch, image_hw=case.hw, seed=case.seed)
        refs.append(Reference(case, feeds, torch_rt.run(feeds)[io_spec.output_names[0]]))
    return refs


def compare(runtime: Runtime, refs: Sequence[Reference], tolerance: Tolerance,
            value_range: tuple[float, float] = DEFAULT_RANGE) -> dict[str, Any]:
    """Run ``runtime`` on every case; max/mean abs error vs the reference (in tanh-space units of the output's
    declared ``value_range``, see diffs.py), uint8 levels of that range, pass/fail."""
    rows, total, count, worst, worst_levels = [], 0.0, 0, 0.0, 0
    name = runtime.output_names[0] if runtime.output_names else "output"
    for ref in tqdm(refs, desc=f"check {runtime.key}", unit="batch", leave=False, disable=None):
        out = runtime.run(ref.feeds)[name]
        if out.shape != ref.output.shape:
            raise ExportError(f"{runtime.key} returned shape {list(out.shape)} for {ref.case.label()}, "
                              f"PyTorch {list(ref.output.shape)}.")
        diff = compare_float(ref.output, out, value_range)  # the one comparison (diffs.py): vectors relative to their extent
        row: dict[str, Any] = {"batch": ref.case.batch, "max_abs": diff.max_abs, "mean_abs": diff.mean_abs}
        if ref.case.hw:
            row["hw"] = list(ref.case.hw)
        if diff.uint8_max is not None:
            row["uint8_levels"] = diff.uint8_max
            worst_levels = max(worst_levels, diff.uint8_max)
        rows.append(row)
        total += diff.mean_abs * diff.numel
        count += diff.numel
        worst = max(worst, diff.max_abs)
    passed = worst <= tolerance.max_abs and (tolerance.max_levels is None or worst_levels <= tolerance.max_levels)
    entry: dict[str, Any] = {
        "max_abs": worst, "mean_abs": total / max(count, 1), "batch_sizes": sorted({r.case.batch for r in refs}),
        "tolerance": tolerance.as_dict(), "passed": bool(passed), "cases": rows, "device": runtime.device,
        "precision": runtime.precision,
    }
    if any("uint8_levels" in r for r in rows):
        entry["uint8_levels"] = worst_levels
    log.info("%-17s max abs %.2e  mean abs %.2e  %s", runtime.key, worst, entry["mean_abs"],
             "ok" if passed else "BREACH")
    return entry


def enforce(key: str, entry: dict[str, Any], where: str) -> None:
    """Raise ExportError when ``entry`` (from ``compare``) breached its tolerance."""
    if entry["passed"]:
        return
    tol = entry["tolerance"]
    worst = max(entry["cases"], key=lambda r: r["max_abs"])
    levels = f", uint8 levels {entry.get('uint8_levels')} > {tol['uint8_levels']}" if "uint8_levels" in tol else ""
    size = f" at {worst['hw'][0]}x{worst['hw'][1]}" if "hw" in worst else ""
    raise ExportError(
        f"{key} output differs from PyTorch beyond tolerance: max abs {entry['max_abs']:.3g} (limit "
        f"{tol['max_abs']:g}){levels}, worst at batch {worst['batch']}{size}. Nothing was written to '{where}' "
        "(an earlier export there is kept as it was).")
