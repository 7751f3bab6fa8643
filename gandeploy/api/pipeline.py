"""``gandeploy.train`` / ``export`` / ``build_repository`` / ``Server``: the pipeline as Python calls.

    run = gandeploy.train("cgan", "digits", steps=200)              # -> training/runs/cgan-digits
    exp = gandeploy.export(run, fp16=True)                          # -> export/cgan-digits
    gandeploy.build_repository([exp.out_dir], "model_repository")
    with gandeploy.Server("model_repository") as server:
        g = gandeploy.load("cgan-digits", url=server.grpc_url)

The ``gandeploy`` commands train / export / repo / serve are thin layers over these (flags → arguments);
default folders follow ``gandeploy/utils/paths.py`` (``$GANDEPLOY_HOME`` or the current directory).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from gandeploy.errors import UserInputError
from gandeploy.serving.repository import DEFAULT_MAX_PIXELS, RepositoryResult
from gandeploy.serving.server import TritonServer, default_log_file
from gandeploy.utils import paths

if TYPE_CHECKING:
    from gandeploy.export.pipeline import ExportResult

HW = tuple[int, int]


def train(model: str | None = None, dataset: str | None = None, *, recipe: str | os.PathLike[str] | None = None,
          use_recipe: bool = True, out: str | os.PathLike[str] | None = None, arch: Mapping[str, Any] | None = None,
          resume: bool = False, data_root: str | os.PathLike[str] | None = None,
          on_recipe: Callable[[Path], None] | None = None, **settings: Any) -> Path:
    """Train ``model`` on ``dataset`` and return the run dir (default ``training/runs/MODEL-DATASET``).

    ``recipe``: a TOML path or a shipped recipe's name (``"cgan-digits"``); without one, the shipped
    ``MODEL-DATASET`` recipe is used when there is one (``use_recipe=False``: the generic defaults; ``on_recipe``
    is told which). ``settings``: ``TrainConfig`` fields (``epochs``, ``steps``, ``batch_size``, ``lr``, ``loss``,
    ``ema``, ``device``, ...) and the family's own options (``lambda_cycle``, ...); they override the recipe.
    ``arch``: architecture fields (``{"ngf": 32}``; strings are converted as ``--arch KEY=VALUE``). ``resume``
    continues the run's checkpoint with its settings.
    """
    from gandeploy.config import CONFIG_FILE
    from gandeploy.data import ALIGNED_PREFIX, DATASETS, FOLDER_PREFIX, dataset_names
    from gandeploy.errors import unknown_choice
    from gandeploy.training.health import collapse_signal
    from gandeploy.registry import get_model
    from gandeploy.training.api import default_run_dir, task_class, train_run
    from gandeploy.training.recipes import load_recipe, make_train_config, merge_train, resolve_recipe, shipped_recipe
    from gandeploy.training.task import TrainConfig, option_fields

    if recipe is None and use_recipe and not resume and model is not None and dataset is not None:
        recipe = shipped_recipe(model, dataset)
        if recipe is not None and on_recipe is not None:
            on_recipe(recipe)
    rec = load_recipe(resolve_recipe(recipe)) if recipe is not None else None
    model = model or (rec.model if rec else None)
    dataset = dataset or (rec.dataset if rec else None)
    if model is None or dataset is None:
        raise UserInputError("missing MODEL and/or DATASET: pass both (e.g. 'gandeploy train cgan digits') "
                             "or a --recipe that sets model and dataset.")
    if not dataset.startswith((FOLDER_PREFIX, ALIGNED_PREFIX)) and dataset not in DATASETS:
        raise unknown_choice("dataset", dataset, dataset_names())
    spec = get_model(model)
    task_cls = task_class(spec)
    arch_values = {**(rec.arch if rec else {}), **_typed_arch(spec, dict(arch or {}))}
    run_dir = Path(out) if out is not None else default_run_dir(spec.name, dataset)
    defaults = TrainConfig()
    shared_fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"options"}
    own_fields = set(option_fields(task_cls.Options))
    given = {k: v for k, v in settings.items() if v is not None}
    unknown = sorted(set(given) - shared_fields - own_fields)
    if unknown:
        from gandeploy.registry import MODELS

        owners = [name for name, s in MODELS.items() if unknown[0] in option_fields(task_class(s).Options)]
        flag = "--" + unknown[0].replace("_", "-")
        if owners:
            raise UserInputError(f"{flag} does not apply to {spec.name} (it is an option of {'/'.join(owners)}).")
        raise UserInputError(f"'{unknown[0]}' is not a training setting; settings: "
                             f"{', '.join(sorted(shared_fields | own_fields))}.")
    saved_train = _saved_train(run_dir / CONFIG_FILE) if resume else {}
    shared = {k: v for k, v in dataclasses.asdict(defaults).items() if k != "options"}
    values = merge_train(shared, dict(task_cls.train_defaults), dict(spec.train_defaults), saved_train,
                         rec.train if rec else {}, given)
    train_cfg = make_train_config(values, "the flags" + (f" and {rec.path}" if rec else ""), task_cls.Options)
    return train_run(spec.name, dataset, train_cfg, run_dir, arch=arch_values or None, data_root=data_root,
                     resume=resume, signal=collapse_signal)


def _typed_arch(spec: Any, arch: dict[str, Any]) -> dict[str, Any]:
    """Architecture fields with string values (``--arch KEY=VALUE``) turned into the config's types."""
    from gandeploy.training.api import coerce_arch

    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    if "image_size" in arch and "image_size" not in fields:
        raise UserInputError(f"--image-size does not apply to {spec.name}.")
    strings = {k: v for k, v in arch.items() if isinstance(v, str)}
    return {**arch, **coerce_arch(spec.name, strings)}


def _saved_train(config_file: Path) -> dict[str, Any]:
    """Training settings recorded in a run's ``config.json`` (resume keeps them unless arguments change them)."""
    import json

    from gandeploy.training.task import TrainConfig

    if not config_file.is_file():
        return {}
    try:
        saved = json.loads(config_file.read_text()).get("train") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"options"}
    options = saved.get("options") if isinstance(saved.get("options"), dict) else {}
    return {**{k: v for k, v in saved.items() if k in fields}, **options}


def export(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *, fp16: bool = False,
           trt: bool | None = None, max_batch: int = 64, min_size: HW | None = None, opt_size: HW | None = None,
           max_size: HW | None = None, opset: int | None = None, generator: str | None = None,
           force: bool = False, exporter: str = "auto",
           calibration: str | os.PathLike[str] | None = None, int8: bool = False,
           int8_seeds: int | None = None, norm_stats: str | None = None,
           int8_symmetric: bool = False) -> ExportResult:
    """Export a run dir's generator to ``out`` (default ``export/NAME``): ONNX FP32, with ``fp16`` the FP16 ONNX
    and, where TensorRT runs, a plan (``trt`` True requires it, False never builds one); every artifact is
    checked against PyTorch and the errors recorded in ``manifest.json``. Image-to-image: ``min_size`` /
    ``opt_size`` / ``max_size`` (H, W). ``generator`` picks a checkpoint key (``G_ema``, ``G_BA``, ...);
    ``force`` replaces another run's export; ``exporter`` auto | dynamo | torchscript; ``calibration`` a folder
    of your pictures for the FP16 safety check (and INT8 calibration of picture models). ``int8``: also
    ``model.int8.onnx``, calibrated on ``int8_seeds`` seeds (sampling models) and kept only when the distribution
    verdict (``evaluation.int8_verdict``) accepts it, and where TensorRT runs ``model.int8.plan`` from it (judged
    the same way; ``int8_symmetric``: the int8 zero-point-0 form TensorRT needs). ``norm_stats`` running | sample: test-time BatchNorm of
    generators that offer the choice (pix2pix). Built in a staging folder and swapped in whole."""
    from gandeploy.export.onnx2int8 import DEFAULT_SEEDS
    from gandeploy.export.pipeline import export_run

    return export_run(run_dir, out, fp16=fp16, trt=trt, max_batch=max_batch, min_size=min_size, opt_size=opt_size,
                      max_size=max_size, opset=opset, generator=generator, force=force, exporter=exporter,
                      calibration=Path(calibration) if calibration is not None else None, int8=int8,
                      int8_seeds=int8_seeds or DEFAULT_SEEDS, int8_judge=_int8_judge if int8 else None,
                      norm_stats=norm_stats, int8_symmetric=int8_symmetric)


def _int8_judge(fp32_path: Path, io: Any, contract: Any, run: Any) -> Any:
    """The INT8 acceptance test of ``gandeploy.evaluation.parity.int8_verdict`` (export may not import evaluation;
    the API, above both, hands it down)."""
    from gandeploy.evaluation.parity.int8_verdict import judge_for_run

    return judge_for_run(fp32_path, io, contract, run)


def build_repository(export_dirs: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str] | None = None, *,
                     flavour: str = "local", instances: int = 1, max_queue_delay_us: int = 0,
                     preferred_batch_sizes: Sequence[int] | None = None, threads: int = 0,
                     max_pixels: int = DEFAULT_MAX_PIXELS, tile: int | None = None, tile_overlap: int | None = None,
                     triton_release: str | None = None, force: bool = False,
                     precision: str = "fp32") -> RepositoryResult:
    """A Triton model repository (default ``model_repository/``) serving each export: ``flavour`` local (the
    bundled tritonserver, python backend) or ngc (NVIDIA's container, ``triton_release``). Each export is
    re-hashed against its manifest first; the repository is written in a staging folder and swapped in.
    ``precision`` fp32 | fp16 | int8: which of the export's ONNX files each generator serves.
    ``max_pixels`` / ``tile`` / ``tile_overlap``: image-to-image picture limits and tiling; ``force`` replaces
    served models of the same name built from another export dir."""
    from gandeploy.serving.repository import build_repository as build

    return build(export_dirs, out if out is not None else paths.repository_dir(), flavour=flavour,
                 instances=instances, max_queue_delay_us=max_queue_delay_us,
                 preferred_batch_sizes=preferred_batch_sizes, threads=threads, max_pixels=max_pixels, tile=tile,
                 tile_overlap=tile_overlap, triton_release=triton_release, force=force, precision=precision)


class Server(TritonServer):
    """The real tritonserver (bundled in nvidia-pytriton, ``pip install 'gandeploy[serve]'``) on a repository
    (default ``model_repository/``). Use it as a context manager: it starts, waits until every model is READY,
    and stops on leaving. ``verify`` re-hashes the repository's files first (its records: ``records``); the
    log goes to ``log_file`` (default a new file under ``serving/logs/``). ``grpc_url`` / ``http_url`` are the
    addresses for ``gandeploy.load``."""

    def __init__(self, model_repository: str | os.PathLike[str] | None = None, *, host: str = "127.0.0.1",
                 http_port: int = 8000, grpc_port: int = 8001, metrics_port: int = 8002,
                 log_file: str | os.PathLike[str] | None = None, stream: IO[str] | None = None,
                 ready_timeout: float = 180.0, verify: bool = True, poll_seconds: int = 2) -> None:
        from gandeploy.serving.repository import verify_repository

        repository = Path(model_repository) if model_repository is not None else paths.repository_dir()
        self.records: dict[str, dict[str, Any]] = verify_repository(repository) if verify else {}
        super().__init__(repository, host=host, http_port=http_port, grpc_port=grpc_port,
                         metrics_port=metrics_port, log_file=log_file or default_log_file(), stream=stream,
                         ready_timeout=ready_timeout, poll_seconds=poll_seconds)
