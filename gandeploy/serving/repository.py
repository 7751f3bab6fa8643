"""``gandeploy repo``: a Triton model repository built from verified exports, swapped in atomically.

Per export ``<name>`` (``gandeploy/contract.py`` decides every tensor)::

    <name>_generator/   raw generator, the ONNX IO. local: python backend running model.onnx on ONNX Runtime
                        CPU; ngc: platform tensorrt_plan when the export's model.plan (--precision int8:
                        model.int8.plan) was built by the target release's TensorRT (``ngc.py``), else
                        onnxruntime_onnx on the ONNX of --precision
    <name>/             sampling, local: ONE python step (served inputs checked → latents → model.onnx on
                        ONNX Runtime → uint8 image), the same contract as the ngc ensemble below without two
                        python-backend hops per request;
                        sampling, ngc: platform ensemble <name>_seed → generator → <name>_postprocess;
                        translation: python pipeline (decode → tiles → generator via BLS → stitch → PNG,
                        ``scale`` x the input; ``--tile`` / ``--tile-overlap``, see ``tiling.py``)
    <name>_seed/        ngc sampling: the served inputs (seed, optional truncation, label / code / continuous)
                        checked and turned into the generator's inputs ``gen_<input>`` (python)
    <name>_postprocess/ ngc sampling images: output → uint8 image (python)
    <name>/gandeploy.json  provenance: the export's manifest SHA-256, every file's SHA-256, options

Every model's config carries the served contract as the parameter ``gandeploy_contract`` (JSON): the
self-contained backends and clients build and check requests from it.

Every export is re-hashed against its manifest first (a tampered export fails the build) and every copied
file is hashed again after the copy. Models are written to a staging dir beside ``out`` and renamed into place
one directory at a time; models of other exports already in ``out`` are left alone.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gandeploy import __version__, wire
from gandeploy.contract import CONFIG_PARAMETER, DATASET_PARAMETER
from gandeploy.errors import ExportError, UserInputError
from gandeploy.formats import FORMATS
from gandeploy.export.card import CARD_FILE, write_model_card
from gandeploy.serving import configs as C
from gandeploy.serving import ngc
from gandeploy.serving.exports import ServedExport, load_export
from gandeploy.serving.repository_records import (REPO_FORMAT, RECORD_FILE, check_conflicts, model_hashes,  # noqa: F401
                                                  read_records, swap_in, verify_repository)
from gandeploy.serving.tiling import PipelineSettings, pipeline_settings
from gandeploy.utils.io import atomic_write_json, sha256_file
from gandeploy.utils.logging import get_logger

log = get_logger("serving.repository")

BACKENDS = Path(__file__).parent / "backends"
COMMON = "gd_backend_common.py"
WIRE = "gd_wire.py"  # gandeploy/wire.py itself, beside every python model: the rules the package applies too
PICTURES = "gd_pictures.py"  # the picture rules, beside the image-to-image pipeline
FLAVOURS = ("local", "ngc")
DEFAULT_MAX_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class RepositoryOptions:
    """How models are served; every field is a ``gandeploy repo`` flag."""

    flavour: str = "local"
    instances: int = 1
    max_queue_delay_us: int = 0  # measured: 1000 doubled single-request latency on CPU, no c=8 gain
    preferred_batch_sizes: tuple[int, ...] | None = None  # None: 8/16/32/64 up to the export's max batch
    threads: int = 0  # ONNX Runtime intra-op threads per local generator instance (0: its default)
    max_pixels: int = DEFAULT_MAX_PIXELS  # translation: pictures (and outputs) with more are refused undecoded
    tile: int | None = None  # translation: input tile side (None: from the memory budget, contract_images)
    tile_overlap: int | None = None  # translation: context pixels per tile side (None: the receptive field)
    triton_release: str | None = None  # ngc: the target NGC release (None: ngc.DEFAULT_RELEASE)
    precision: str = "fp32"  # which ONNX of the export the generator serves (format table: fp32 | fp16 | int8)

    def __post_init__(self) -> None:
        if self.flavour not in FLAVOURS:
            raise UserInputError(f"--flavour must be one of {', '.join(FLAVOURS)}, got '{self.flavour}'.")
        if self.threads < 0 or self.max_pixels < 1:
            raise UserInputError("--threads must be >= 0 and --max-pixels >= 1.")
        ngc.get_release(self.triton_release)  # an unknown release fails before anything is written
        onnx_file(self.precision)  # an unknown precision fails here too

    @property
    def onnx_file(self) -> str:
        return onnx_file(self.precision)


def onnx_file(precision: str) -> str:
    """The export's ONNX Runtime file of ``precision``, looked up in the format table."""
    files = {f.precision: f.file for f in FORMATS.values() if f.runtime == "onnxruntime" and f.file}
    if precision not in files:
        raise UserInputError(f"--precision must be one of {', '.join(files)}, got '{precision}'.")
    return str(files[precision])


ENGINE_PRECISION = {"fp32": "fp16", "int8": "int8"}  # repo --precision -> the TensorRT engine served in its place (ngc)


def engine_key(precision: str) -> str | None:
    """The TensorRT format the ngc flavour serves instead of the ONNX of ``precision`` (when the container's
    TensorRT built it), looked up in the format table: int8 → ``tensorrt-int8`` (model.int8.plan, built from
    model.int8.onnx); the default fp32 → ``tensorrt`` (the FP16 engine model.plan); fp16 → none
    (model.fp16.onnx itself)."""
    want = ENGINE_PRECISION.get(precision)
    return next((k for k, f in FORMATS.items() if f.runtime == "tensorrt" and f.precision == want), None)


@dataclass
class PlannedModel:
    """One model directory to write: its config and the files to place in it (relative path → source)."""

    name: str
    role: str  # generator | generator_trt | sampling | seed | postprocess | ensemble | pipeline
    config: Any
    files: dict[str, Path] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 the copy must have


@dataclass(frozen=True)
class RepositoryResult:
    """What ``build_repository`` wrote."""

    root: Path
    exports: tuple[str, ...]
    models: tuple[str, ...]
    seconds: float


def build_repository(export_dirs: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str] = "model_repository",
                     *, flavour: str = "local", instances: int = 1, max_queue_delay_us: int = 0,
                     preferred_batch_sizes: Sequence[int] | None = None, threads: int = 0,
                     max_pixels: int = DEFAULT_MAX_PIXELS, tile: int | None = None,
                     tile_overlap: int | None = None, triton_release: str | None = None,
                     force: bool = False, precision: str = "fp32") -> RepositoryResult:
    """Verify each export and write its Triton models into ``out`` (see the module docstring). Models that a
    build from another export dir of the same name placed there are replaced only with ``force``.
    ``precision``: which of the export's ONNX files the generator serves (``model.int8.onnx`` for int8)."""
    start = time.perf_counter()
    options = RepositoryOptions(flavour, instances, max_queue_delay_us,
                                tuple(preferred_batch_sizes) if preferred_batch_sizes else None, threads,
                                max_pixels, tile, tile_overlap, triton_release, precision)
    dirs = [Path(d) for d in export_dirs]
    if not dirs:
        raise UserInputError("give at least one EXPORT_DIR (made by 'gandeploy export').")
    exports = [load_export(d) for d in dirs]
    names = [e.name for e in exports]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserInputError(f"two exports are both named {dupes}: re-export one into a folder of another name "
                             "('gandeploy export RUN_DIR --out export/NEW_NAME': the folder's name is the model's).")
    planned = [m for e in exports for m in plan_models(e, options)]
    configs = {m.name: m.config for m in planned}
    C.validate_configs(configs)
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise UserInputError(f"--out '{root}' is a file; pass the model repository's folder (e.g. model_repository).")
    check_conflicts(root, exports, {m.name for m in planned}, force)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.staging-", dir=root.parent))
    try:
        for model in planned:
            _write_model(staging / model.name, model)
        for export in exports:
            served = {"inputs": [t.signature() for t in export.contract.inputs],  # the generated model card
                      "outputs": [t.signature() for t in export.contract.outputs]}
            if export.contract.translation:
                served["tiling"] = _settings(export, options).to_json()
            write_model_card(export.export_dir, staging / export.name / CARD_FILE, served)
            mine = [m for m in planned if _owner(m, export)]
            atomic_write_json(staging / export.name / RECORD_FILE, _record(export, mine, options, staging))
        swap_in(root, staging, exports, planned)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - start
    log.debug("repository %s: %d model(s) for %s (%s flavour) in %.1f s", root, len(planned), ", ".join(names),
             options.flavour, seconds)
    return RepositoryResult(root, tuple(names), tuple(m.name for m in planned), seconds)


def _owner(model: PlannedModel, export: ServedExport) -> bool:
    return model.config.parameters["gandeploy_export"].string_value == export.name


# --- planning ------------------------------------------------------------------------------------------------


def plan_models(export: ServedExport, options: RepositoryOptions) -> list[PlannedModel]:
    """The model directories serving ``export`` with ``options``."""
    preferred = options.preferred_batch_sizes or C.default_preferred(export.max_batch)
    batching = C.Batching(export.max_batch, tuple(preferred), options.max_queue_delay_us, options.instances)
    meta = _metadata(export)
    models = _generators(export, options, batching, meta)
    generator = models[-1].name  # <name>_generator (ngc: the TensorRT plan when the target can load it)
    if export.contract.translation:
        models.append(_pipeline(export, options, batching, meta, generator))
    elif options.flavour == "local":
        models.append(_sampling_one_step(export, options, batching, meta))
    else:
        models.extend(_sampling(export, batching, meta, generator))
    return models


def _metadata(export: ServedExport) -> dict[str, Any]:
    arch = export.run.arch
    contract = export.contract
    return {"gandeploy_export": export.name, "gandeploy_model": export.model, "gandeploy_task": contract.io.task,
            "gandeploy_version": __version__, "arch_hash": export.run.arch_hash,
            "export_manifest_sha256": export.manifest_sha256, "nz": contract.nz, "num_classes": contract.num_classes,
            "image_size": getattr(arch, "image_size", 0), CONFIG_PARAMETER: contract.parameter(),
            **({DATASET_PARAMETER: export.run.dataset} if export.run.dataset else {})}


def _python_files(source: str) -> dict[str, Path]:
    return {"1/model.py": BACKENDS / source, f"1/{COMMON}": BACKENDS / COMMON, f"1/{WIRE}": Path(wire.__file__)}


def _export_file(export: ServedExport, name: str) -> tuple[dict[str, Path], dict[str, str]]:
    entry = export.manifest.files.get(name)
    if not entry:
        why = ""
        if name == onnx_file("int8"):
            why = f" (INT8: {export.manifest.data.get('int8', {}).get('reason') or 'not requested'})"
        raise ExportError(f"'{export.export_dir}' has no {name} in its manifest{why}; run 'gandeploy export' again"
                          + (" with --int8" if name == onnx_file("int8") else "") + ".")
    return {f"1/{name}": export.export_dir / name}, {f"1/{name}": str(entry["sha256"])}


def _generators(export: ServedExport, options: RepositoryOptions, batching: C.Batching,
                meta: dict[str, Any]) -> list[PlannedModel]:
    inputs, outputs = export.contract.generator_inputs, export.contract.generator_outputs
    name = export.generator_model
    onnx_files, onnx_sha = _export_file(export, options.onnx_file)
    if options.flavour == "local":
        params = {**meta, "onnx_file": options.onnx_file, "intra_op_threads": options.threads}
        cfg = C.python_model(name, inputs, outputs, batching, params)
        return [PlannedModel(name, "generator", cfg, {**_python_files("generator_onnx.py"), **onnx_files}, onnx_sha)]
    engine = engine_key(options.precision)
    choice = ngc.plan_choice(export.manifest.data, ngc.get_release(options.triton_release), engine) if engine else None
    if choice is not None:
        ngc.warn_fallback(export.name, choice, options.onnx_file)
    if choice is not None and choice.use_plan:  # the plan alone: an ONNX Runtime twin would take GPU memory, unused
        plan_files, plan_sha = _export_file(export, choice.plan)
        return [PlannedModel(name, "generator_trt", C.native_model(name, "tensorrt_plan", choice.plan, inputs,
                                                                    outputs, batching, meta), plan_files, plan_sha)]
    return [PlannedModel(name, "generator", C.native_model(name, "onnxruntime_onnx", options.onnx_file, inputs,
                                                            outputs, batching, meta), onnx_files, onnx_sha)]


def _sampling_one_step(export: ServedExport, options: RepositoryOptions, batching: C.Batching,
                       meta: dict[str, Any]) -> PlannedModel:
    """Local sampling ``<name>``: checks, latents, ONNX Runtime and the uint8 map in one python step."""
    contract = export.contract
    onnx_files, onnx_sha = _export_file(export, options.onnx_file)
    params = {**meta, "onnx_file": options.onnx_file, "intra_op_threads": options.threads}
    cfg = C.python_model(export.name, contract.inputs, contract.outputs, batching, params)
    return PlannedModel(export.name, "sampling", cfg, {**_python_files("sampling_onnx.py"), **onnx_files}, onnx_sha)


def _sampling(export: ServedExport, batching: C.Batching, meta: dict[str, Any],
              generator: str) -> list[PlannedModel]:
    """NGC: ``<name>_seed`` → native generator (→ ``<name>_postprocess`` for pictures), chained by the ``<name>``
    ensemble."""
    name, contract = export.name, export.contract
    served_in, served_out = contract.inputs, contract.outputs
    step_out = contract.step_outputs
    seed_cfg = C.python_model(f"{name}_seed", served_in, step_out, batching, meta)
    models = [PlannedModel(f"{name}_seed", "seed", seed_cfg, _python_files("seed_to_latent.py"))]
    steps = [C.Step(f"{name}_seed", {t.name: t.name for t in served_in}, {t.name: t.name for t in step_out})]
    gen_inputs = {t.feeds: t.name for t in step_out}
    gen_output = contract.generator_outputs[0].name
    if contract.points:
        steps.append(C.Step(generator, gen_inputs, {gen_output: contract.output_name}))
    else:
        post_cfg = C.python_model(f"{name}_postprocess", contract.generator_outputs, served_out, batching, meta)
        models.append(PlannedModel(f"{name}_postprocess", "postprocess", post_cfg,
                                   _python_files("image_postprocess.py")))
        steps.append(C.Step(generator, gen_inputs, {gen_output: "generated"}))
        steps.append(C.Step(f"{name}_postprocess", {gen_output: "generated"},
                            {contract.output_name: contract.output_name}))
    ensemble = C.ensemble_model(name, served_in, served_out, export.max_batch, steps, meta)
    models.append(PlannedModel(name, "ensemble", ensemble, {}))
    return models


def _settings(export: ServedExport, options: RepositoryOptions) -> PipelineSettings:
    return pipeline_settings(export.manifest.data, export.contract, tile=options.tile, overlap=options.tile_overlap)


def _pipeline(export: ServedExport, options: RepositoryOptions, batching: C.Batching, meta: dict[str, Any],
              generator: str) -> PlannedModel:
    """``<name>``: decode → tiles → generator (BLS) → stitch → PNG; sizes, tiles and rules from the contract."""
    contract = export.contract
    settings = _settings(export, options)  # per axis, within the TensorRT profile
    params = {**meta, "generator_model": generator, "max_pixels": options.max_pixels, **settings.params(),
              "max_batch": export.max_batch}
    cfg = C.python_model(export.name, contract.inputs, contract.outputs, batching, params)
    files = {**_python_files("translate_pipeline.py"), f"1/{PICTURES}": BACKENDS / PICTURES}
    return PlannedModel(export.name, "pipeline", cfg, files)


# --- writing -------------------------------------------------------------------------------------------------


def _write_model(model_dir: Path, model: PlannedModel) -> None:
    (model_dir / "1").mkdir(parents=True, exist_ok=True)  # ensembles need the (empty) version dir too
    for rel, source in model.files.items():
        target = model_dir / rel
        shutil.copyfile(source, target)
        want = model.expected.get(rel)
        if want is not None and sha256_file(target) != want:
            raise ExportError(f"{source} changed while the repository was being built (SHA-256 differs from "
                              "its manifest); run 'gandeploy export' again.")
    C.write_config(model_dir, model.config)


def _record(export: ServedExport, models: list[PlannedModel], options: RepositoryOptions,
            staging: Path) -> dict[str, Any]:
    contract = export.contract
    return {
        "format": REPO_FORMAT,
        "name": export.name,
        "task": contract.io.task,
        "model": export.model,
        "flavour": options.flavour,
        "triton_release": ngc.get_release(options.triton_release).release if options.flavour == "ngc" else None,
        "export_dir": str(export.export_dir.resolve()),
        "export_manifest_sha256": export.manifest_sha256,
        "export_files": {k: v["sha256"] for k, v in sorted(export.manifest.files.items())},
        "arch_hash": export.run.arch_hash,
        "class_names": list(export.run.class_names or []),
        "served": {"inputs": [t.signature() for t in contract.inputs],
                   "outputs": [t.signature() for t in contract.outputs]},
        "contract": contract.to_json(),
        "models": {m.name: {"role": m.role, "files": model_hashes(staging / m.name)} for m in models},
        "options": {"instances": options.instances, "max_queue_delay_us": options.max_queue_delay_us,
                    "preferred_batch_sizes": list(models[0].config.dynamic_batching.preferred_batch_size),
                    "threads": options.threads, "max_pixels": options.max_pixels, "max_batch": export.max_batch,
                    "tiling": _settings(export, options).to_json() if contract.translation else None},
        "gandeploy_version": __version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
