"""Parity: every backend against the PyTorch FP32 reference on fixed seeds and fixed test images.

Sampling models get seeds ``first, first+1, ...`` with the served contract's case values for every other input
(``cases.case_io``: the same request goes to the ensemble, its generator feeds to every raw backend) at several
batch sizes; image-to-image models get deterministic synthetic pictures at several H×W (square and not), and the
tiled-vs-whole check (``evaluation/parity/tiled.py``: a picture of at least 4x4 tiles through the tiled pipeline
against PyTorch on the whole picture). Raw backends (onnxruntime, onnxruntime-fp16, tensorrt, tensorrt-int8, triton)
are compared in float against ``torch``; the served ensemble (``triton-ensemble``) in uint8 against
``to_uint8(torch(...))`` of the same inputs (translation: PNG in, the served pipeline's pad / tile / crop rules
applied to the reference too). Tolerances come from ``tolerances.TOLERANCES``, FP32 float rows widened to
``FLOOR_FACTOR`` × the case's own FP32 noise floor (PyTorch FP32 vs float64, ``tolerances.tolerance_for(...,
floor=)``, the rule the export check uses); unavailable backends are listed as skipped with the reason. INT8
backends have no per-pixel bound: their rows pass or fail by the distribution verdict (int8_verdict.py, run here
afresh on the backend itself — ``model.int8.onnx`` on ONNX Runtime, ``model.int8.plan`` on TensorRT — against
``model.onnx``), the pixel figures are reported beside it.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gandeploy.contract import ServedContract
from gandeploy.diffs import Diff, compare_float, compare_uint8
from gandeploy.errors import BackendUnavailable, GanDeployError, UserInputError, one_line
from gandeploy.evaluation.cases import case_io, test_image
from gandeploy.export.validate import Case  # the same fixed-input case the export checks use
from gandeploy.formats import FORMATS, get_format
from gandeploy.manifest import unbuilt_reason
from gandeploy.models.io import HW, to_uint8
from gandeploy.runtimes.base import Runtime, batch_runner, open_runtime
from gandeploy.serving.tiling import PipelineSettings, pipeline_settings, run_pictures
from gandeploy.tolerances import Tolerance, noise_floor, tolerance_for
from gandeploy.utils.logging import get_logger

if TYPE_CHECKING:
    from gandeploy.manifest import Manifest

log = get_logger("parity")

REFERENCE = "torch"
SERVED = ("triton", "triton-ensemble")
DEFAULT_BACKENDS = tuple(k for k in FORMATS if k != REFERENCE)
SAMPLING_BATCHES = (1, 4, 16)
TRANSLATION_BATCHES = (1, 2)


@dataclass
class Row:
    """One backend on one case."""

    backend: str
    precision: str
    kind: str  # "float" | "uint8"
    case: Case
    tolerance: Tolerance
    floor: Diff | None = None  # the case's FP32 noise floor (FP32 float rows; None: not measured)
    diff: Diff | None = None
    breaches: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and self.diff is not None and not self.breaches

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "precision": self.precision, "kind": self.kind, "batch": self.case.batch,
                "hw": list(self.case.hw) if self.case.hw else None, "seed": self.case.seed,
                "diff": self.diff.to_json() if self.diff else None, "tolerance": self.tolerance.to_json(),
                "floor": self.floor.to_json() if self.floor else None, "breaches": self.breaches, "error": self.error, "passed": self.passed,
                "seconds": round(self.seconds, 4)}


@dataclass
class ParityReport:
    """All rows of one export, the skipped backends with reasons, and one sample per backend for the figure."""

    export_dir: str
    name: str
    model: str
    task: str
    reference: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    samples: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # backend → (ref, cand)
    settings: PipelineSettings | None = None  # image-to-image: the pipeline's tiling
    tiled: Any = None  # image-to-image: evaluation.tiled.TiledCheck
    value_range: tuple[float, float] = (-1.0, 1.0)  # the output's declared range (the figure's uint8 map)

    @property
    def compared(self) -> list[str]:
        return sorted({r.backend for r in self.rows}, key=_backend_order)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.passed]

    @property
    def passed(self) -> bool:
        seams = self.tiled is None or not self.tiled.enforced or self.tiled.passed
        return bool(self.rows) and not self.failures and seams

    def to_json(self) -> dict[str, Any]:
        return {"format": "gandeploy.parity/1", "export_dir": self.export_dir, "name": self.name,
                "model": self.model, "task": self.task, "reference": self.reference, "passed": self.passed,
                "compared": self.compared, "skipped": self.skipped, "rows": [r.to_json() for r in self.rows],
                "tiled_vs_whole": self.tiled.to_json() if self.tiled is not None else None}


def _backend_order(key: str) -> int:
    keys = list(FORMATS)
    return keys.index(key) if key in keys else len(keys)


# --- fixed inputs -------------------------------------------------------------------------------------------


def case_inputs(contract: ServedContract, case: Case) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(generator feeds, served request) of ``case``: seeds ``case.seed ..`` with the contract's case values
    (``cases.case_values``), or deterministic test pictures at ``case.hw`` for image inputs."""
    seeds = np.arange(case.seed, case.seed + case.batch, dtype=np.int64)
    images = None
    if contract.translation:
        images = np.stack([test_image(int(s), case.hw, contract.in_channels) for s in seeds])  # type: ignore[arg-type]
    return case_io(contract, seeds, images)  # [N, ...] each


def default_sizes(contract: ServedContract) -> list[HW]:
    """Translation sizes: the export's opt size and a non-square one inside [min, max] (multiples of the size
    rule)."""
    sizes = contract.image_sizes or {}
    m = contract.io.size_multiple
    lo, opt, hi = (tuple(int(v) for v in sizes.get(k, (64, 64))) for k in ("min", "opt", "max"))
    h2 = max(lo[0], (opt[0] * 3 // 4) // m * m)
    second = (h2, opt[1]) if h2 != opt[0] else (opt[0], min(hi[1], opt[1] + max(8, m)))
    return list(dict.fromkeys([(opt[0], opt[1]), second]))


def plan_cases(contract: ServedContract, batch_sizes: Sequence[int] | None, sizes: Sequence[HW] | None) -> list[Case]:
    """Cases for every batch size (× every size for image-to-image), within the export's ``max_batch``."""
    max_batch = contract.max_batch
    translation = contract.translation
    if batch_sizes is None:  # the defaults, capped at the export's max batch
        batch_sizes = sorted({min(b, max_batch) for b in (TRANSLATION_BATCHES if translation else SAMPLING_BATCHES)})
    batches = list(batch_sizes)
    too_big = [b for b in batches if b < 1 or b > max_batch]
    if too_big:
        raise UserInputError(f"--batch-sizes must lie in 1..{max_batch} (the export's max batch), got {too_big}.")
    if not translation:
        return [Case(b, None, 1000 * i) for i, b in enumerate(batches)]
    hws = list(sizes or default_sizes(contract))
    m = contract.io.size_multiple
    for hw in hws:
        if hw[0] % m or hw[1] % m:
            raise UserInputError(f"--sizes must be multiples of {m}, the model's size rule (got {hw[0]}x{hw[1]}).")
    return [Case(b, hw, 1000 * i + 100 * j) for i, b in enumerate(batches) for j, hw in enumerate(hws)]


# --- the served ensemble -----------------------------------------------------------------------------------


def _ensemble_translation(runtime: Runtime, reference: Runtime, contract: ServedContract, case: Case,
                          settings: PipelineSettings | None) -> tuple[np.ndarray, np.ndarray]:
    """PNG of each test image through the served pipeline, and the reference through the same pipeline rules
    (``serving/tiling.py``: pad, tiles, crop, PNG) on PyTorch."""
    from PIL import Image

    gen_in, gen_out = contract.io.input_names[0], contract.io.output_names[0]
    params = settings.params() if settings is not None else {}
    refs, outs = [], []
    for s in range(case.seed, case.seed + case.batch):
        image = test_image(s, case.hw, contract.in_channels)  # type: ignore[arg-type]  # [H, W, C]
        request = contract.request(images=image[None])
        served = runtime.run(request)
        png = run_pictures(list(request[contract.inputs[0].name].reshape(-1)), contract, params,
                           lambda x: reference.run({gen_in: x})[gen_out], max_pixels=2**62)[0]
        if not isinstance(png, bytes):
            raise png
        for target, data in ((outs, np.asarray(next(iter(served.values()))).reshape(-1)[0]), (refs, png)):
            decoded = np.asarray(Image.open(io.BytesIO(bytes(data))))
            target.append(decoded[:, :, None] if decoded.ndim == 2 else decoded)
    return np.stack(refs), np.stack(outs)


def _ensemble_sampling(runtime: Runtime, reference_out: np.ndarray, request: dict[str, np.ndarray],
                       contract: ServedContract) -> tuple[np.ndarray, np.ndarray]:
    """The case's served request (seeds and every other input) through the ensemble; the reference is
    ``to_uint8`` of torch on the generator feeds of the same request."""
    out = runtime.run(request)[contract.output_name]
    if contract.points:  # 2D points: the ensemble returns float samples
        return reference_out.astype(np.float32), np.asarray(out, dtype=np.float32)
    return to_uint8(reference_out, contract.output_range), np.asarray(out, dtype=np.uint8)  # [N, H, W, C]


# --- the run -------------------------------------------------------------------------------------------------


def _open(key: str, export_dir: Path, manifest: Manifest, options: dict[str, Any]) -> Runtime:
    """Open a backend; a missing artifact or library becomes ``BackendUnavailable`` (listed as skipped)."""
    fmt = get_format(key)
    unbuilt = unbuilt_reason(manifest.data, key)  # TensorRT engines: the export's recorded reason
    if unbuilt:
        raise BackendUnavailable(f"not built at export: {unbuilt}")
    if fmt.file and not (export_dir / fmt.file).is_file():
        hint = {"fp16": " (re-export with --fp16)", "int8": " (re-export with --int8; " + str(
            manifest.data.get("int8", {}).get("reason") or "not requested") + ")"}.get(fmt.precision, "")
        raise BackendUnavailable(f"{fmt.file} is not in the export{hint}")
    if key in SERVED and not options.get("url"):
        raise BackendUnavailable("no server: pass --url HOST:PORT of a running 'gandeploy serve'")
    served = {k: v for k, v in options.items() if k in ("url", "protocol")} if key in SERVED else {}
    return open_runtime(key, export_dir, **served)


def run_parity(export_dir: str | os.PathLike[str], backends: Sequence[str] | None = None, *,
               batch_sizes: Sequence[int] | None = None, sizes: Sequence[HW] | None = None,
               url: str | None = None, protocol: str = "http", run_dir: str | os.PathLike[str] | None = None,
               tile: int | None = None, tile_overlap: int | None = None, tiled: bool = True) -> ParityReport:
    """Compare every requested backend with the PyTorch reference on the fixed cases (see module docstring);
    image-to-image exports also get the tiled-vs-whole check (``tiled``; tiling: the served model's when ``url``
    is given, else the export's default or ``tile`` / ``tile_overlap``)."""
    from gandeploy.manifest import load_manifest

    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir)
    keys = list(dict.fromkeys(backends or DEFAULT_BACKENDS))
    for key in keys:
        get_format(key)  # unknown names: a 'did you mean' error before any work
    keys = [k for k in keys if k != REFERENCE]
    contract = manifest.contract
    cases = plan_cases(contract, batch_sizes, sizes)
    reference = open_runtime(REFERENCE, export_dir, **({"run_dir": run_dir} if run_dir else {}))
    report = ParityReport(str(export_dir), manifest.name, manifest.model, manifest.task, reference.describe(),
                          value_range=contract.output_range)
    if contract.translation:
        report.settings = pipeline_settings(manifest.data, contract, tile=tile, overlap=tile_overlap)
        if url and any(k in SERVED for k in keys):
            report.settings = _served_settings(manifest, url, protocol, report.settings)
    inputs = {case: case_inputs(contract, case) for case in cases}  # (generator feeds, served request)
    out_name = contract.io.output_names[0]
    ref_out = {case: reference.run(f)[out_name] for case, (f, _) in inputs.items()}
    floors = _floors(reference, inputs, ref_out, contract) if any(
        get_format(k).precision == "fp32" for k in keys) else {}
    options = {"url": url, "protocol": protocol}
    verdicts: dict[str, Any] = {}
    for key in keys:
        try:
            runtime = _open(key, export_dir, manifest, options)
        except BackendUnavailable as exc:
            report.skipped[key] = str(exc)
            log.info("%-17s skipped: %s", key, exc)
            continue
        except GanDeployError as exc:  # a broken artifact is a failure, not a skip
            report.rows.append(Row(key, get_format(key).precision, "float", cases[0],
                                   tolerance_for(get_format(key).precision), error=str(exc)))
            continue
        if get_format(key).precision == "int8":
            verdicts[key] = _int8_verdict(export_dir, contract, runtime)
        with runtime:
            for case in cases:
                row = _compare_case(key, runtime, reference, contract, case, inputs[case], ref_out[case], report,
                                    floors.get(case))
                if key in verdicts and row.diff is not None:  # INT8: the distribution verdict is the bound
                    row.breaches = [] if verdicts[key].passed else [f"distribution: {verdicts[key].reason}"]
                report.rows.append(row)
        if key in verdicts:
            report.reference[f"{key}_verdict"] = {"passed": verdicts[key].passed, "test": verdicts[key].test,
                                                  **verdicts[key].figures}
    if contract.translation and tiled and report.settings is not None:
        report.tiled = _tiled_check(export_dir, manifest, reference, report, keys, options)
    reference.close()
    return report


def _served_settings(manifest: Manifest, url: str, protocol: str, default: PipelineSettings) -> PipelineSettings:
    """The tiling of the served ``NAME`` (its config parameters), where the server answers."""
    import dataclasses

    from gandeploy.runtimes.triton_client import TritonClient

    try:
        with TritonClient(url, protocol) as client:
            params = {k: int(v.get("string_value") or 0)
                      for k, v in client.config(manifest.name).get("parameters", {}).items()
                      if k in ("tile_height", "tile_width", "tile_overlap")}
    except (GanDeployError, ValueError):
        return default  # the served rows will say what is wrong with the server
    if len(params) < 3:
        return default
    plan = dataclasses.replace(default.plan, tile_height=params["tile_height"], tile_width=params["tile_width"],
                               overlap=params["tile_overlap"], tile_source="served config",
                               overlap_source="served config",
                               covers=default.radius is not None and params["tile_overlap"] >= default.radius)
    return dataclasses.replace(default, plan=plan)


def _tiled_check(export_dir: Path, manifest: Manifest, reference: Runtime, report: ParityReport, keys: list[str],
                 options: dict[str, Any]) -> Any:
    """The tiled-vs-whole check on the served ``NAME`` when it is compared, else in-process on ONNX Runtime
    (PyTorch when that is unavailable)."""
    from gandeploy.evaluation.parity.tiled import tiled_vs_whole

    served = "triton-ensemble" in keys and "triton-ensemble" not in report.skipped and options.get("url")
    for key in (["triton-ensemble"] if served else []) + ["onnxruntime"]:
        try:
            runtime = _open(key, export_dir, manifest, options)
        except GanDeployError as exc:
            log.info("tiled check: %s unavailable (%s)", key, exc)
            continue
        with runtime:
            check = tiled_vs_whole(manifest.contract, report.settings, reference, runtime,  # type: ignore[arg-type]
                                   served=key == "triton-ensemble")
        log.info("%s", check.line())
        return check
    check = tiled_vs_whole(manifest.contract, report.settings, reference, reference, served=False)  # type: ignore[arg-type]
    log.info("%s", check.line())
    return check


def _int8_verdict(export_dir: Path, contract: ServedContract, runtime: Runtime) -> Any:
    """The INT8 acceptance test of int8_verdict.py: this export's FP32 model against the INT8 model as ``runtime``
    runs it (``model.int8.onnx`` on ONNX Runtime, ``model.int8.plan`` on TensorRT), in batches its limits allow."""
    from gandeploy.config import load_run_config
    from gandeploy.evaluation.parity.int8_verdict import judge_for

    try:
        dataset = load_run_config(export_dir).dataset
    except GanDeployError:
        dataset = None
    judge = judge_for(export_dir / FORMATS["onnxruntime"].file, contract.io, contract, dataset)  # type: ignore[operator]
    return judge(batch_runner(runtime, contract.io.output_names[0], contract.max_batch))


def _floors(reference: Runtime, inputs: dict[Case, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]],
            ref_out: dict[Case, np.ndarray], contract: ServedContract) -> dict[Case, Diff]:
    """Each case's FP32 noise floor: the reference against its float64 run (none where it has none)."""
    out_name = contract.io.output_names[0]
    floors = {}
    for case, (feeds, _) in inputs.items():
        exact = reference.run_float64(feeds) if hasattr(reference, "run_float64") else None
        floor = noise_floor(ref_out[case], exact[out_name] if exact else None, contract.output_range)
        if floor is not None:
            floors[case] = floor
    return floors


def _compare_case(key: str, runtime: Runtime, reference: Runtime, contract: ServedContract, case: Case,
                  inputs: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], ref_out: np.ndarray,
                  report: ParityReport, floor: Diff | None = None) -> Row:
    precision = get_format(key).precision
    ensemble = key == "triton-ensemble"
    images = ref_out.ndim == 4
    kind = "uint8" if ensemble and images else "float"
    row = Row(key, precision, kind, case, tolerance_for(precision, kind, floor),
              floor=floor if (precision, kind) == ("fp32", "float") else None)
    start = time.perf_counter()
    try:
        feeds, request = inputs
        if ensemble and contract.translation:
            ref, cand = _ensemble_translation(runtime, reference, contract, case, report.settings)
        elif ensemble:
            ref, cand = _ensemble_sampling(runtime, ref_out, request, contract)
        else:
            ref, cand = ref_out, runtime.run(feeds)[contract.io.output_names[0]]
        row.diff = compare_uint8(ref, cand) if kind == "uint8" else compare_float(ref, cand, contract.output_range)
    except (GanDeployError, ValueError, KeyError, RuntimeError, OSError) as exc:
        row.error = f"{type(exc).__name__}: {one_line(str(exc))}"
        log.warning("%-17s %s: %s", key, case.label(), row.error)
        return row
    finally:
        row.seconds = time.perf_counter() - start
    row.breaches = row.tolerance.breaches(row.diff)
    failed_before = any(r.backend == key and r.diff is not None and not r.passed for r in report.rows)
    if key not in report.samples or (not row.passed and not failed_before):
        keep = 1 if ref.ndim == 4 else 256  # one picture, or a cloud of points
        report.samples[key] = (ref[:keep], cand[:keep])  # the first case, or the first breach
    log.info("%-17s %-16s max abs %.2e  uint8 max %s  %s", key, case.label(), row.diff.max_abs,
             row.diff.uint8_max, "ok" if row.passed else "BREACH: " + "; ".join(row.breaches))
    return row
