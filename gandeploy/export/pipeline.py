"""``export_run``: a run dir → ``export/<name>/`` with ONNX FP32, optional FP16 ONNX, INT8 ONNX and TensorRT plans.

Composes the steps (torch2onnx, onnx2fp16, onnx2int8, onnx2trt via tensorrt_builds.py), checks each artifact against
PyTorch through the runtimes (validate.py), and writes ``manifest.json`` last, all in a staging directory beside the
target that replaces it in one atomic swap on success. A breach of tolerance, Ctrl-C or a kill leaves the previous
export complete and untouched.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from gandeploy.config import CONFIG_FILE, RunConfig, load_run_config, save_run_config
from gandeploy.contract import ServedContract
from gandeploy.errors import BackendUnavailable, ExportError, UserInputError
from gandeploy.export import validate
from gandeploy.export.card import write_model_card
from gandeploy.manifest import EXPORT_FORMAT, MANIFEST_FILE, file_entry, now_iso, versions, write_manifest
from gandeploy.export.calibration import calibration_inputs, probe_picture
from gandeploy.export.fp16_safety import safe_fp16
from gandeploy.export.onnx2fp16 import fp16_block_list
from gandeploy.export.onnx2int8 import DEFAULT_SEEDS, Int8Result, Judge, quantize_accepted, sampling_feeds
from gandeploy.export.sizes import plan_sizes, torch_runs_at
from gandeploy.export.receptive_field import MAX_SIDE, measure_receptive_field
from gandeploy.export.tensorrt_builds import TIMING_CACHE, build_tensorrt, build_tensorrt_int8, int8_gate
from gandeploy.export.torch2onnx import EXPORTERS, export_onnx
from gandeploy.formats import FORMATS
from gandeploy.models.blocks import bake_for_export
from gandeploy.models.common import NORM_STATS_FIELD, NORM_STATS_HOW, with_norm_stats
from gandeploy.models.io import HW, GeneratorIO, example_inputs
from gandeploy.registry import get_model
from gandeploy.training.checkpoint import EMA_SUFFIX, GENERATOR_FILE, save_generator
from gandeploy.runtimes.base import signature
from gandeploy.runtimes.onnxruntime_rt import OnnxRuntimeRuntime
from gandeploy.runtimes.tensorrt_rt import TensorRTRuntime, unavailable_reason
from gandeploy.runtimes.torch_rt import TorchRuntime
from gandeploy.utils import paths
from gandeploy.utils.io import atomic_write_bytes, staged_dir
from gandeploy.utils.logging import get_logger

log = get_logger("export")


@dataclass(frozen=True)
class Artifact:
    """One row of the export table."""

    file: str
    format: str | None
    path: Path
    bytes: int
    max_abs: float | None = None
    mean_abs: float | None = None


@dataclass(frozen=True)
class ExportResult:
    """What ``export_run`` wrote, with the measured errors."""

    out_dir: Path
    manifest: dict[str, Any]
    artifacts: tuple[Artifact, ...]
    seconds: float
    exporter: str
    tensorrt_reason: str | None

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / MANIFEST_FILE


def export_run(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *, fp16: bool = False,
               trt: bool | None = None, max_batch: int = 64, min_size: HW | None = None, opt_size: HW | None = None,
               max_size: HW | None = None, opset: int | None = None, generator: str | None = None,
               force: bool = False, calibration: Path | None = None, field_max_side: int = MAX_SIDE,
               exporter: str = "auto", int8: bool = False, int8_seeds: int = DEFAULT_SEEDS,
               int8_judge: Callable[[Path, GeneratorIO, ServedContract, RunConfig], Judge] | None = None,
               norm_stats: str | None = None, int8_symmetric: bool = False) -> ExportResult:
    """Export a run dir's generator. ``trt``: None builds a plan with ``fp16`` where TensorRT can run,
    True requires it (and implies the FP16 ONNX), False never builds one; with ``int8`` the accepted
    ``model.int8.onnx`` also becomes ``model.int8.plan`` where TensorRT can run (tensorrt_builds.py: judged by the
    same ``int8_judge``; skipped or refused with the reason in the manifest's ``tensorrt_int8``, never fatal). ``force`` overwrites an export dir
    that holds another run's (or generator's) export. ``calibration``: a directory of the user's pictures for
    the FP16 safety check and the receptive field (default: the held-out photos of the 'photos' data set).
    ``field_max_side``: the largest crop the receptive field is probed on (receptive_field.py). ``exporter``:
    ``dynamo``, ``torchscript`` or ``auto`` (dynamo, and TorchScript if dynamo fails: recorded in the manifest
    as ``exporter.fallback_reason``). ``int8``: also write ``model.int8.onnx`` (onnx2int8.py), calibrated on
    ``int8_seeds`` seeds (sampling) or the ``calibration`` pictures, and only if the judge that
    ``int8_judge(fp32_path, io, contract, run)`` returns accepts it (the CLI passes
    ``gandeploy.evaluation.parity.int8_verdict.judge_for``); a refusal is recorded in the manifest, the rest stands.
    ``int8_symmetric``: quantize activations to int8 with zero point 0 and keep biases float (the Q/DQ form
    TensorRT takes; the default uint8 asymmetric model cannot become ``model.int8.plan``).
    ``norm_stats``: test-time BatchNorm, ``running`` (eval mode) or ``sample`` (each picture's own statistics),
    for generators that declare the choice (pix2pix with BatchNorm; refused for others); None keeps the run's
    own. The export's config.json and manifest record the mode used.

    The export is built in a staging directory beside the target and swapped in whole on success: a failed
    step, Ctrl-C or a kill leaves the previous export as it was."""
    start = time.perf_counter()
    run_dir = Path(run_dir)
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise UserInputError(f"--max-batch must be an integer >= 1, got {max_batch!r}.")
    if opset is not None and not 7 <= int(opset) <= 30:
        raise UserInputError(f"--opset must be between 7 and 30, got {opset}.")
    if exporter not in EXPORTERS:
        raise UserInputError(f"--exporter must be one of {', '.join(EXPORTERS)}, got '{exporter}'.")
    run = load_run_config(run_dir)
    spec = get_model(run.model)
    if norm_stats is not None:  # checked before anything is built or written
        run = replace(run, arch=with_norm_stats(run.arch, norm_stats, spec.build_generator))
    io_spec = spec.io(run.arch)
    trt_reason = unavailable_reason() if (trt or (trt is None and (fp16 or int8))) else None
    if trt and trt_reason:
        raise BackendUnavailable(f"--trt was given but TensorRT cannot run here: {trt_reason}. "
                                 "Drop --trt (or use --no-trt) to export the ONNX artifacts only.")
    fp16 = fp16 or bool(trt)
    if int8 and int8_judge is None:
        raise ValueError("int8=True needs int8_judge (gandeploy.evaluation.parity.int8_verdict.judge_for)")
    if isinstance(int8_seeds, bool) or not isinstance(int8_seeds, int) or int8_seeds < 1:
        raise UserInputError(f"--calibration N must be a whole number of seeds >= 1, got {int8_seeds!r}.")
    calib = calibration_inputs(io_spec, Path(calibration) if calibration is not None else None) if fp16 else None
    module, key = load_for_export(run_dir, generator, run.arch)
    sizes = plan_sizes(run, io_spec, min_size, opt_size, max_size, runs_at=torch_runs_at(module, io_spec))
    target = Path(out) if out is not None else default_export_dir(run_dir, spec.generator_keys, key)
    if not force:
        check_not_foreign(target, run_dir, key)
    if target.exists() and not target.is_dir():
        raise UserInputError(f"--out '{target}' is a file; pass a directory such as export/NAME.")
    with staged_dir(target) as out_dir:  # a failure, Ctrl-C or a kill before the swap leaves the old export as it was
        if (target / TIMING_CACHE).is_file():  # the previous build's TensorRT timing cache joins this build
            shutil.copyfile(target / TIMING_CACHE, out_dir / TIMING_CACHE)
        num_classes = spec.num_classes(run.arch)
        meta = onnx_metadata(run, key, io_spec)
        onnx_path = out_dir / FORMATS["onnxruntime"].file  # type: ignore[operator]
        example_hw = (max(8, sizes["min"][0]), max(8, sizes["min"][1])) if sizes else None
        onnx_info = export_onnx(module, io_spec, onnx_path, num_classes=num_classes, example_hw=example_hw,
                                opset=opset, metadata=meta, exporter=exporter)

        cases = validate.check_cases(max_batch, sizes, io_spec.size_multiple)
        torch_rt = TorchRuntime(module, run, generator_key=key)
        refs = validate.references(torch_rt, io_spec, cases, num_classes)
        parity: dict[str, Any] = {}
        files: dict[str, dict[str, Any]] = {}
        io_pair = (io_spec.inputs, io_spec.outputs)
        out_range = io_spec.outputs[0].value_range  # errors and uint8 levels in the output's declared range

        field = None
        with OnnxRuntimeRuntime("onnxruntime", onnx_path, io=io_pair) as ort_rt:
            parity["onnxruntime"] = validate.compare(ort_rt, refs, validate.FP32, out_range)
            validate.enforce("onnxruntime (model.onnx)", parity["onnxruntime"], str(target))
            if io_spec.image_input is not None:  # how far one input pixel reaches: the tile overlap serving needs
                name, picture = probe_picture(io_spec, Path(calibration) if calibration is not None else None)
                field = measure_receptive_field(picture_runner(ort_rt, io_spec), io_spec, picture, picture_name=name,
                                                max_side=field_max_side)
        files[onnx_path.name] = file_entry(onnx_path, "onnxruntime")

        tensorrt: dict[str, Any] = {"built": False, "reason": "not requested (pass --fp16 or --trt)"}
        fp16_info = safety = None
        if fp16:
            fp16_path = out_dir / FORMATS["onnxruntime-fp16"].file  # type: ignore[operator]
            fp16_info, safety = safe_fp16(onnx_path, fp16_path, calib.feeds, measured_on=calib.measured_on,  # type: ignore[union-attr]
                                          value_range=out_range, metadata=meta)
            if fp16_info is not None:
                with OnnxRuntimeRuntime("onnxruntime-fp16", fp16_path, io=io_pair) as ort16:
                    parity["onnxruntime-fp16"] = validate.compare(ort16, refs, validate.FP16, out_range)
                validate.enforce("onnxruntime-fp16 (model.fp16.onnx)", parity["onnxruntime-fp16"], str(target))
                files[fp16_path.name] = file_entry(fp16_path, "onnxruntime-fp16")
            if fp16_info is None:
                tensorrt = {"built": False, "reason": f"no FP16 model to build from: {safety.fallback}"}  # type: ignore[union-attr]
            elif trt is False:
                tensorrt = {"built": False, "reason": "disabled with --no-trt"}
            elif trt_reason:
                log.warning("TensorRT skipped: %s", trt_reason)
                tensorrt = {"built": False, "reason": trt_reason}
            else:
                try:
                    tensorrt = build_tensorrt(fp16_path, out_dir, io_spec, max_batch, sizes, "tensorrt")
                except ExportError as exc:
                    hint = "" if trt else " Pass --no-trt to export the ONNX artifacts without a plan."
                    raise ExportError(f"{exc}{hint}") from None
                with TensorRTRuntime("tensorrt", out_dir / "model.plan", io=io_pair) as trt_rt:
                    parity["tensorrt"] = validate.compare(trt_rt, refs, validate.FP16, out_range)
                validate.enforce("tensorrt (model.plan)", parity["tensorrt"], str(target))
                files["model.plan"] = file_entry(out_dir / "model.plan", "tensorrt")
                files[TIMING_CACHE] = file_entry(out_dir / TIMING_CACHE)
        contract = ServedContract.from_io(io_spec, max_batch=max_batch, class_names=run.class_names,
                                          image_sizes=sizes)
        int8_result = None
        tensorrt_int8: dict[str, Any] = {"built": False, "reason": "not requested (pass --int8)"}
        if int8:
            judge = int8_judge(onnx_path, io_spec, contract, run)  # type: ignore[misc]  # accepts the ONNX and the engine
            int8_result = _int8(onnx_path, out_dir / FORMATS["onnxruntime-int8"].file, io_spec, contract,  # type: ignore[operator]
                                judge, int8_seeds, Path(calibration) if calibration is not None else None,
                                int8_symmetric)
            if int8_result.path is not None:
                files[int8_result.path.name] = file_entry(int8_result.path, "onnxruntime-int8")
            gate = int8_gate(int8_result, trt, trt_reason)
            if gate is not None:
                tensorrt_int8 = gate
            else:  # model.int8.plan from the accepted QDQ ONNX, judged as it was (tensorrt_builds.py)
                tensorrt_int8, entry = build_tensorrt_int8(
                    int8_result.path, out_dir, io_spec, max_batch, sizes, judge, refs, out_range,  # type: ignore[arg-type]
                    lambda plan: TensorRTRuntime("tensorrt-int8", plan, io=io_pair))
                if entry is not None:
                    parity["tensorrt-int8"] = entry
                if tensorrt_int8["built"]:
                    plan = out_dir / FORMATS["tensorrt-int8"].file  # type: ignore[operator]
                    files[plan.name] = file_entry(plan, "tensorrt-int8")
                    files[TIMING_CACHE] = file_entry(out_dir / TIMING_CACHE)
            if not tensorrt_int8["built"] and int8_result.path is not None:
                log.info("TensorRT INT8 engine skipped: %s", tensorrt_int8["reason"])
        if TIMING_CACHE not in files:
            (out_dir / TIMING_CACHE).unlink(missing_ok=True)  # the old build's cache, copied in but not used

        config_copy = (save_run_config(out_dir, run) if norm_stats is not None  # the mode chosen at export
                       else atomic_write_bytes(out_dir / CONFIG_FILE, (run_dir / CONFIG_FILE).read_bytes()))
        files[CONFIG_FILE] = file_entry(config_copy)
        files[GENERATOR_FILE] = file_entry(save_generator(out_dir, module, key))  # the PyTorch reference, self-contained
        manifest = {
            "format": EXPORT_FORMAT, "name": target.name, "model": run.model, "task": io_spec.task,
            "generator": key, "arch_hash": run.arch_hash, "source_run": str(run_dir),
            "inputs": [signature(t) for t in io_spec.inputs], "outputs": [signature(t) for t in io_spec.outputs],
            "max_batch": max_batch, "files": files, "parity": parity, "tensorrt": tensorrt, "tensorrt_int8": tensorrt_int8,
            "exporter": {"onnx": onnx_info.exporter, "requested": exporter, "opset": onnx_info.opset,
                         "seconds": round(onnx_info.seconds, 2), "fallback_reason": onnx_info.fallback_reason,
                         "space_to_depth": onnx_info.space_to_depth},
            "versions": versions(), "created": now_iso(), "seconds": round(time.perf_counter() - start, 2),
        }
        if safety is not None:
            manifest["fp16"] = {"io": "float32", "block_list": fp16_block_list(), **safety.to_json(),
                                "kept_fp32": list(fp16_info.kept_fp32) if fp16_info else [],
                                "kept_nodes": list(fp16_info.kept_nodes) if fp16_info else []}
        if field is not None:
            manifest["receptive_field"] = field
        mode = getattr(run.arch, NORM_STATS_FIELD, None)
        if mode is not None:
            manifest["norm_stats"] = {"mode": mode, "how": NORM_STATS_HOW[mode],
                                      "source": "--norm-stats at export" if norm_stats is not None else "the run's"}
        if sizes:
            manifest["image_sizes"] = {k: list(v) for k, v in sizes.items()}
            manifest["output_sizes"] = {k: [v[0] * io_spec.scale, v[1] * io_spec.scale] for k, v in sizes.items()}
        manifest["int8"] = (int8_result.to_json() if int8_result is not None
                            else {"written": False, "reason": "not requested (pass --int8)"})
        manifest["contract"] = contract.to_json()
        write_manifest(out_dir, manifest)
        write_model_card(out_dir)  # README.md: generated from the manifest, config.json and the run's quality.json
    seconds = time.perf_counter() - start
    log.debug("export of %s (%s) finished in %.1f s", run_dir, key, seconds)  # the CLI prints the result
    return ExportResult(target, manifest, tuple(artifact_rows(target, manifest)), seconds, onnx_info.exporter,
                        None if tensorrt["built"] else tensorrt.get("reason"))


def _int8(onnx_path: Path, int8_path: Path, io_spec: GeneratorIO, contract: ServedContract, judge: Judge,
          seeds: int, pictures: Path | None, symmetric: bool) -> Int8Result:
    """The INT8 step (onnx2int8.py) on the model's own inputs, judged by the caller's judge."""
    if io_spec.image_input is not None:
        calib = calibration_inputs(io_spec, pictures)
        feeds, measured_on = calib.feeds, calib.measured_on
    else:
        feeds, measured_on = sampling_feeds(contract, seeds), f"seeds 0..{seeds - 1}"
    result = quantize_accepted(onnx_path, int8_path, feeds, judge, symmetric=symmetric)
    result.calibrated_on = measured_on
    return result


def picture_runner(runtime: OnnxRuntimeRuntime, io_spec: GeneratorIO) -> Callable[[np.ndarray], np.ndarray]:
    """``run(pictures [N, C, H, W]) -> output``: any other inputs held at one fixed value for every row."""
    image = io_spec.image_input
    if image is None:
        raise ValueError("picture_runner needs a generator with a picture input")

    def run(x: np.ndarray) -> np.ndarray:
        fixed = example_inputs(io_spec, 1, image_hw=(x.shape[2], x.shape[3]))
        feeds = {n: np.repeat(v, x.shape[0], axis=0) for n, v in fixed.items()}
        feeds[image.name] = x
        return runtime.run(feeds)[io_spec.output_names[0]]

    return run


def default_export_dir(run_dir: Path, keys: tuple[str, ...], key: str) -> Path:
    """``export/<run name>``; a CycleGAN's second generator gets ``export/<run name>-G_B`` so both can coexist."""
    name = run_dir.resolve().name
    return paths.exports_dir() / (name if key in (keys[0], keys[0] + EMA_SUFFIX) else f"{name}-{key}")


def load_for_export(run_dir: Path, generator: str | None, arch: Any = None) -> tuple[nn.Module, str]:
    """The generator to export (eval mode, parametrisations such as spectral norm baked into plain weights)
    and its checkpoint key (``G``; CycleGAN ``G_A``/``G_B``). ``arch``: rebuild the generator with this config
    (same weights, e.g. another test-time ``norm_stats``) instead of the run's."""
    from gandeploy.training.checkpoint import load_generator_and_key

    module, run, key = load_generator_and_key(run_dir, generator)
    if arch is not None and arch != run.arch:
        rebuilt = get_model(run.model).build_generator(arch)
        rebuilt.load_state_dict(module.state_dict())  # same parameters and buffers, another forward
        module = rebuilt.eval()
    return bake_for_export(module), key


def check_not_foreign(out_dir: Path, run_dir: Path, key: str) -> None:
    """Refuse to overwrite an export of another run dir or generator (re-exporting the same one is fine)."""
    import json

    try:
        old = json.loads((out_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return  # no (readable) manifest: nothing finished lives there
    source = old.get("source_run") if isinstance(old, dict) else None
    if not source:
        return
    same_run = Path(source).resolve() == run_dir.resolve()
    if same_run and old.get("generator") in (None, key):
        return
    what = f"{old.get('model', '?')} generator {old.get('generator', '?')} from {source}"
    raise UserInputError(f"'{out_dir}' already holds the export of {what}: pass --out DIR for this one, or "
                         "--force to replace it.")


def onnx_metadata(run: RunConfig, key: str, io_spec: GeneratorIO) -> dict[str, str]:
    """``metadata_props`` shared by model.onnx and model.fp16.onnx."""
    import json

    import onnx
    import torch

    from gandeploy import __version__
    from gandeploy.config import to_dict

    arch = run.arch
    out_shape = io_spec.outputs[0].shape
    channels = out_shape[1] if len(out_shape) == 4 else 0
    return {
        "gandeploy.model": run.model, "gandeploy.task": io_spec.task, "gandeploy.generator": key,
        "gandeploy.nz": str(getattr(arch, "nz", 0)), "gandeploy.num_classes": str(getattr(arch, "num_classes", 0)),
        "gandeploy.class_names": json.dumps(list(run.class_names) if run.class_names else []),
        "gandeploy.image_size": str(getattr(arch, "image_size", 0)), "gandeploy.channels": str(channels),
        "gandeploy.arch_hash": run.arch_hash, "gandeploy.config": json.dumps(to_dict(arch), sort_keys=True),
        "gandeploy.version": __version__, "gandeploy.torch_version": torch.__version__,
        "gandeploy.onnx_version": onnx.__version__,
    }


def artifact_rows(out_dir: Path, manifest: dict[str, Any]) -> list[Artifact]:
    """Table rows: every file with its size and the errors measured for its format."""
    rows = []
    for name, entry in manifest["files"].items():
        fmt = entry.get("format")
        par = manifest["parity"].get(fmt, {}) if fmt else {}
        rows.append(Artifact(name, fmt, out_dir / name, int(entry["bytes"]), par.get("max_abs"), par.get("mean_abs")))
    return rows
