"""Correctness at export time: every artifact against the FP32 PyTorch reference on fixed inputs.

Tolerances (outputs in tanh-space units: pictures of another declared ``value_range`` scaled to [-1, 1], vector
outputs relative to their extent, see gandeploy/diffs.py; uint8 levels of the declared range):

- FP32 ONNX on ONNX Runtime, per case: max abs ≤ max(1e-4, 4 × floor) and mean abs ≤ max(1e-5, 4 × floor's
  mean), ``floor`` being the case's own FP32 noise floor, |PyTorch FP32 − PyTorch float64| (tolerances.py:
  ``FP32_MAX_ABS`` / ``FP32_MEAN_ABS``, ``FLOOR_FACTOR``, ``above_floor``). A generator that cannot run in
  float64 keeps the table's bounds, and the manifest entry says why.
- FP16 (ONNX FP16 on ORT, TensorRT FP16): max abs ≤ ``FP16_MAX_ABS`` (2e-2) and uint8 pictures within
  ``FP16_MAX_LEVELS`` (2) levels of the reference's (1 level = 1/127.5), see ``onnx2fp16``.

Cases: sampling models at batch 1 and at ``max_batch``; image-to-image models at batch 1 at the opt size,
at ``max_batch`` at the min size (bounded CPU cost), and at batch 2 at a non-square size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from gandeploy.diffs import Diff, compare_float
from gandeploy.errors import ExportError
from gandeploy.tolerances import FLOOR_FACTOR, TOLERANCES, above_floor, noise_floor
from gandeploy.export.onnx2fp16 import FP16_MAX_ABS, FP16_MAX_LEVELS
from gandeploy.models.io import DEFAULT_RANGE, HW, GeneratorIO, example_inputs
from gandeploy.runtimes.base import Runtime
from gandeploy.utils.logging import get_logger

if TYPE_CHECKING:
    from gandeploy.runtimes.torch_rt import TorchRuntime

log = get_logger("export.validate")

FP32_MAX_ABS = float(TOLERANCES[("fp32", "float")].max_abs)  # type: ignore[arg-type]  # the one table
FP32_MEAN_ABS = float(TOLERANCES[("fp32", "float")].mean_abs)  # type: ignore[arg-type]


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
    """Inputs and PyTorch outputs of one case; ``floor``: its FP32 noise floor (None: no float64 reference)."""

    case: Case
    feeds: dict[str, np.ndarray]
    output: np.ndarray
    floor: Diff | None = None
    floor_reason: str | None = None  # why ``floor`` is None


@dataclass(frozen=True)
class Tolerance:
    max_abs: float
    max_levels: int | None = None  # uint8 levels, image outputs only
    mean_abs: float | None = None  # per case
    floored: bool = False  # FP32: each case's bounds widened to FLOOR_FACTOR × its noise floor

    def for_case(self, floor: Diff | None) -> tuple[float, float | None]:
        """(max abs, mean abs) bounds of a case with noise floor ``floor`` (tolerances.above_floor)."""
        if not self.floored or floor is None:
            return self.max_abs, self.mean_abs
        return above_floor(self.max_abs, floor.max_abs), above_floor(self.mean_abs, floor.mean_abs)  # type: ignore[return-value]

    def as_dict(self) -> dict[str, Any]:
        return {"max_abs": self.max_abs, **({"uint8_levels": self.max_levels} if self.max_levels else {}),
                **({"mean_abs": self.mean_abs} if self.mean_abs is not None else {}),
                **({"floor_factor": FLOOR_FACTOR} if self.floored else {})}


FP32 = Tolerance(FP32_MAX_ABS, mean_abs=FP32_MEAN_ABS, floored=True)
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


def references(torch_rt: TorchRuntime, io_spec: GeneratorIO, cases: Sequence[Case],
               num_classes: int) -> list[Reference]:
    """Run the PyTorch reference on every case (computed once, shared by all artifacts), in FP32 and, for each
    case's noise floor, in float64 (``TorchRuntime.run_float64``)."""
    refs = []
    name, value_range = io_spec.output_names[0], io_spec.outputs[0].value_range
    for case in tqdm(cases, desc="PyTorch reference", unit="batch", leave=False, disable=None):
        feeds = example_inputs(io_spec, case.batch, image_hw=case.hw, seed=case.seed)
        output = torch_rt.run(feeds)[name]
        exact = torch_rt.run_float64(feeds)
        refs.append(Reference(case, feeds, output, noise_floor(output, exact[name] if exact else None, value_range),
                              torch_rt.float64_reason))
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
        max_bound, mean_bound = tolerance.for_case(ref.floor)
        if tolerance.floored:  # the case's own noise floor and the bounds it gave
            row["floor"] = ({"max_abs": ref.floor.max_abs, "mean_abs": ref.floor.mean_abs}
                            if ref.floor is not None else None)
            row["bound"] = {"max_abs": max_bound, "mean_abs": mean_bound}
        row["passed"] = bool(diff.max_abs <= max_bound and (mean_bound is None or diff.mean_abs <= mean_bound))
        rows.append(row)
        total += diff.mean_abs * diff.numel
        count += diff.numel
        worst = max(worst, diff.max_abs)
    passed = all(r["passed"] for r in rows) and (tolerance.max_levels is None or worst_levels <= tolerance.max_levels)
    entry: dict[str, Any] = {
        "max_abs": worst, "mean_abs": total / max(count, 1), "batch_sizes": sorted({r.case.batch for r in refs}),
        "tolerance": tolerance.as_dict(), "passed": bool(passed), "cases": rows, "device": runtime.device,
        "precision": runtime.precision,
    }
    missing = [r.floor_reason or "no float64 run" for r in refs if r.floor is None]
    if tolerance.floored and missing:
        entry["floor"] = f"not measured: {missing[0]}; the table's bounds apply"
    if any("uint8_levels" in r for r in rows):
        entry["uint8_levels"] = worst_levels
    raised = [(r, ref) for r, ref in zip(rows, refs, strict=True)
              if "bound" in r and r["bound"]["max_abs"] > tolerance.max_abs]  # the floor set this case's bound
    note = "".join(f" (bound {r['bound']['max_abs']:.2e} = {FLOOR_FACTOR:g} x the FP32 noise floor "
                   f"{r['floor']['max_abs']:.2e} at {ref.case.label()})" for r, ref in raised[:1])
    log.info("%-17s max abs %.2e  mean abs %.2e  %s%s", runtime.key, worst, entry["mean_abs"],
             "ok" if passed else "BREACH", note)
    return entry


def enforce(key: str, entry: dict[str, Any], where: str) -> None:
    """Raise ExportError when ``entry`` (from ``compare``) breached its tolerance; FP32 messages name the failing
    case's bounds and the noise floor they came from."""
    if entry["passed"]:
        return
    tol = entry["tolerance"]
    failed = [r for r in entry["cases"] if not r.get("passed", True)]
    worst = failed[0] if failed else max(entry["cases"], key=lambda r: r["max_abs"])
    size = f" at {worst['hw'][0]}x{worst['hw'][1]}" if "hw" in worst else ""
    levels = f", uint8 levels {entry.get('uint8_levels')} > {tol['uint8_levels']}" if "uint8_levels" in tol else ""
    if "bound" in worst:
        floor, bound = worst.get("floor"), worst["bound"]
        why = (f"the larger of the FP32 bounds {_pair(tol['max_abs'], tol.get('mean_abs'))} and "
               f"{tol['floor_factor']:g} x this case's FP32 noise floor {_pair(floor['max_abs'], floor['mean_abs'])} "
               "(PyTorch FP32 vs float64)" if floor else f"the FP32 bounds; noise floor {entry.get('floor')}")
        what = (f"max abs {worst['max_abs']:.3g}, mean abs {worst['mean_abs']:.3g} at batch {worst['batch']}{size} "
                f"(bound max abs / mean abs {_pair(bound['max_abs'], bound['mean_abs'])}: {why})")
    else:
        what = (f"max abs {entry['max_abs']:.3g} (limit {tol['max_abs']:g}){levels}, worst at batch "
                f"{worst['batch']}{size}")
    raise ExportError(f"{key} output differs from PyTorch beyond tolerance: {what}. Nothing was written to "
                      f"'{where}' (an earlier export there is kept as it was).")


def _pair(max_abs: float, mean_abs: float | None) -> str:
    """``max abs / mean abs`` figures of a bound or floor, for messages."""
    return f"{max_abs:.3g}" + (f" / {mean_abs:.3g}" if mean_abs is not None else "")
