"""``train_run``: the typed Python API behind ``gandeploy train``.

It builds the architecture config (registry defaults < dataset defaults < dataset facts < ``arch``
overrides), opens the dataset, picks the family's task (``ModelSpec.trainer``), writes ``config.json`` and runs
the ``Trainer``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
import importlib
import os
import re
from pathlib import Path
from typing import Any

import torch

from gandeploy.config import (
    CONFIG_FILE,
    RunConfig,
    config_hash,
    load_run_config,
    save_run_config,
    to_dict,
)
from gandeploy.data import ALIGNED_PREFIX, FOLDER_PREFIX, KIND_IMAGES, KIND_POINTS, open_dataset
from gandeploy.errors import DataError, UserInputError
from gandeploy.models.common import ModelSpec
from gandeploy.registry import get_model
from gandeploy.training import distributed
from gandeploy.training.checkpoint import CKPT_DIR, LATEST
from gandeploy.training.task import GANTask, TrainConfig
from gandeploy.training.monitor import Signal
from gandeploy.training.trainer import Trainer
from gandeploy.utils.device import resolve_device, seed_everything
from gandeploy.utils import paths
from gandeploy.utils.logging import get_logger

log = get_logger("train")


# Architecture defaults a dataset implies (applied only to fields the model has, before user overrides).
DATASET_ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"image_size": 32, "channels": 1, "ngf": 32, "ndf": 32, "hidden": 256},
    "ring8": {"image_size": 0, "data_dim": 2},
    "grid25": {"image_size": 0, "data_dim": 2},
    # the built-in synthetic pair: training/recipes/cyclegan-digits2inverted.toml's tiny 16x16 network
    "digits2inverted": {"image_size": 16, "ngf": 8, "ndf": 8, "n_blocks": 2, "n_layers_d": 2},
    # the paired digits (pix2pix): a 5-level U-Net takes 32x32 down to 1x1; a 2-layer PatchGAN (6x6 patches)
    **{name: {"image_size": 32, "num_downs": 5, "ngf": 32, "ndf": 32, "n_layers_d": 2}
       for name in ("digits-edges", "digits-noisy", "digits-masked")},
}

def default_run_dir(model: str, dataset: str) -> Path:
    """``training/runs/<model>-<dataset>`` (a folder dataset uses the folder's name)."""
    name = dataset
    for prefix in (FOLDER_PREFIX, ALIGNED_PREFIX):
        if dataset.startswith(prefix):
            name = prefix[:-1] + "-" + (Path(dataset[len(prefix):]).expanduser().resolve().name or "root")
    return paths.runs_dir() / f"{model}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}"


def coerce_arch(model: str, pairs: dict[str, str], source: str = "--arch") -> dict[str, Any]:
    """Turn ``KEY=VALUE`` strings into typed values for ``model``'s config; unknown keys list the valid ones."""
    spec = get_model(model)
    fields = {f.name: f for f in dataclasses.fields(spec.config_cls)}
    out: dict[str, Any] = {}
    for key, raw in pairs.items():
        if key not in fields:
            raise UserInputError(f"{source}: '{key}' is not an architecture field of {model}; fields: "
                                 f"{', '.join(fields)}.")
        kind = type(fields[key].default)
        try:
            if kind is bool:
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(raw)
                out[key] = raw.lower() in ("1", "true", "yes")
            else:
                out[key] = kind(raw)
        except ValueError:
            raise UserInputError(f"{source}: {key}={raw} is not a valid {kind.__name__}.") from None
    return out


def build_arch(spec: ModelSpec, dataset_name: str, overrides: dict[str, Any], dataset: Any,
               loss: str | None = None, source: str = "--arch") -> Any:
    """Registry defaults < dataset defaults < facts read from ``dataset`` < user ``overrides``.

    WGAN-GP penalises per-sample gradients, which BatchNorm in D couples across the batch: with
    ``loss == "wgan-gp"`` a ``d_norm`` the user did not set becomes ``"layer"``.
    """
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise UserInputError(f"{source}: {', '.join(unknown)} not architecture field(s) of {spec.name}; "
                             f"fields: {', '.join(sorted(fields))}.")
    values = {k: v for k, v in DATASET_ARCH_DEFAULTS.get(dataset_name, {}).items() if k in fields}
    facts = _dataset_facts(spec, dataset_name, dataset, fields, overrides)
    if overrides.get("num_classes") not in (None, facts.get("num_classes", 0)):  # 0: unconditional, if allowed
        raise UserInputError(f"{source}: num_classes={overrides['num_classes']} but '{dataset_name}' has "
                             f"{facts.get('num_classes', 0)} classes; drop it or set it to the data set's count.")
    values.update(facts)
    if loss == "wgan-gp" and "d_norm" in fields:
        values["d_norm"] = "layer"
    values.update(overrides)
    try:
        return spec.config_cls(**values)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"invalid architecture for {spec.name}: {exc} (set with {source}).") from None


def _dataset_facts(spec: ModelSpec, name: str, ds: Any, fields: set[str],
                   overrides: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    kind = getattr(ds, "kind", None)
    if kind == KIND_POINTS:
        if "data_dim" not in fields:
            raise DataError(f"dataset '{name}' holds {getattr(ds, 'data_dim', 2)}D points: train it with MODEL "
                            f"mlp, not {spec.name}.")
        facts.update(image_size=0, data_dim=int(ds.data_dim))
    elif kind == KIND_IMAGES:
        if "channels" in fields:
            facts["channels"] = int(ds.channels)
        if "image_size" in fields and "image_size" not in overrides:
            facts["image_size"] = int(ds.image_size)
    if "input_nc" in fields and hasattr(ds, "channels"):  # translation models: both domains share channels
        facts.update(input_nc=int(ds.channels), output_nc=int(ds.channels))
    if "num_in_ch" in fields and hasattr(ds, "channels"):  # super-resolution models (BasicSR's field names)
        facts.update(num_in_ch=int(ds.channels), num_out_ch=int(ds.channels))
    # conditional: the default architecture has a class-label input, or the user asked for classes (SAGAN)
    if spec.num_classes(spec.config_cls()) or overrides.get("num_classes"):
        names = getattr(ds, "class_names", None)
        if not names or len(names) < 2:
            raise DataError(f"model '{spec.name}' is conditional and needs labelled data with >= 2 classes; "
                            f"'{name}' has none (use digits, or folder:PATH with one sub-folder per class).")
        facts["num_classes"] = len(names)
    return facts


def _requested(spec: ModelSpec, dataset_name: str, overrides: dict[str, Any], field: str) -> Any:
    """What to ask the dataset opener for: user override > dataset default > None (the opener decides)."""
    if field in overrides:
        return overrides[field]
    return DATASET_ARCH_DEFAULTS.get(dataset_name, {}).get(field)


def declared_scale(spec: ModelSpec, overrides: dict[str, Any]) -> int:
    """The output scale the generator declares (``GeneratorIO.scale``) under the user's ``overrides``; the
    default architecture's when they do not make a valid config yet (``build_arch`` reports that later)."""
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    try:
        cfg = spec.config_cls(**{k: v for k, v in overrides.items() if k in fields})
    except (TypeError, ValueError):
        cfg = spec.config_cls()
    return spec.io(cfg).scale


def train_run(model: str, dataset: str, train: TrainConfig, out: str | os.PathLike[str] | None = None, *,
              arch: dict[str, Any] | None = None, data_root: str | os.PathLike[str] | None = None,
              resume: bool = False, signal: Callable[[RunConfig, Any], Signal | None] | None = None) -> Path:
    """Train ``model`` on ``dataset`` into a run dir and return it (default ``training/runs/<model>-<dataset>``).

    ``resume`` continues ``checkpoints/latest.pt``; without it an existing checkpoint is an error. ``signal``
    builds the health monitor's collapse signal from (run config, dataset), e.g.
    ``gandeploy.training.health.collapse_signal``.
    Under ``torchrun`` every rank calls this; rank 0 writes the files.
    """
    spec = get_model(model)
    run_dir = Path(out) if out is not None else default_run_dir(spec.name, dataset)
    saved = _check_run_dir(run_dir, spec.name, dataset, resume)
    overrides = dict(arch or {})
    if saved is not None and not overrides:
        overrides = to_dict(saved.arch)  # resume without --arch: the saved architecture

    device = distributed.resolve_local_device(resolve_device(train.device))
    ctx = distributed.init_from_env(device)
    task, finished = None, False
    try:
        image_size = _requested(spec, dataset, overrides, "image_size")
        if image_size is None and "image_size" in {f.name for f in dataclasses.fields(spec.config_cls)}:
            image_size = spec.config_cls().image_size or 32
        channels = _requested(spec, dataset, overrides, "channels")
        task_cls = task_class(spec)
        ds = open_dataset(dataset, spec.family, image_size=image_size, channels=channels, split="train",
                          data_root=Path(data_root) if data_root is not None else None,
                          augment=task_cls.data_options(task_cls.parse_options(train.options)),
                          scale=declared_scale(spec, overrides))
        arch_cfg = build_arch(spec, dataset, overrides, ds, loss=train.loss)
        if saved is not None:
            _check_same_arch(run_dir, saved, arch_cfg)
        class_names = getattr(ds, "class_names", None)
        run = RunConfig(model=spec.name, arch=arch_cfg, train=to_dict(train), dataset=dataset,
                        class_names=tuple(class_names) if class_names else None)

        seed_everything(train.seed)  # model initialisation (the trainer's draws are counter-based)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        task = task_cls(run, train, device, ds)
        health = signal(run, ds) if signal is not None else None  # the monitor's collapse signal, if any
        trainer = Trainer(task, run_dir, ctx=ctx, resume=saved is not None or resume, signal=health)
        if saved is not None:
            trainer.check_length()  # a shorter --epochs/--steps than the checkpoint: error, config.json kept
        if ctx.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_run_config(run_dir, run)
        distributed.barrier(ctx)
        log.info("%s on %s: %s", spec.name, dataset, ", ".join(f"{k}={v}" for k, v in to_dict(arch_cfg).items()))
        result = trainer.fit()
        finished = True
        return result
    finally:  # in order: the trainer closed its threads and writers in fit(); then DDP, then the process group
        if task is not None:
            task.disable_ddp()
        distributed.cleanup(ctx, finished=finished)


def task_class(spec: ModelSpec) -> type[GANTask]:
    """The ``GANTask`` subclass the registry names for ``spec`` (``ModelSpec.trainer``, "module:Class")."""
    module, attr = spec.trainer.split(":")
    return getattr(importlib.import_module(module), attr)


def _check_run_dir(run_dir: Path, model: str, dataset: str, resume: bool) -> RunConfig | None:
    """Refuse to overwrite a run without ``--resume``; on resume return its saved config (None if fresh)."""
    has_ckpt = (run_dir / CKPT_DIR / LATEST).is_file()
    if has_ckpt and not resume:
        raise UserInputError(f"'{run_dir}' already holds a trained run (checkpoints/{LATEST}): pass --resume to "
                             "continue it, or --out DIR for a new run.")
    if resume and not has_ckpt:
        raise UserInputError(f"--resume: '{run_dir}' holds no checkpoint ({run_dir / CKPT_DIR / LATEST} is "
                             "missing); drop --resume to start a new run there, or pass the run's --out.")
    if not resume or not (run_dir / CONFIG_FILE).is_file():
        return None
    saved = load_run_config(run_dir)
    if saved.model != model:
        raise UserInputError(f"--resume: '{run_dir}' holds a {saved.model} run, not {model}; pass MODEL "
                             f"{saved.model} or another --out.")
    if saved.dataset is not None and saved.dataset != dataset:
        raise UserInputError(f"--resume: '{run_dir}' was trained on '{saved.dataset}', not '{dataset}'; pass "
                             f"DATASET {saved.dataset} or another --out.")
    return saved if has_ckpt else None


def _check_same_arch(run_dir: Path, saved: RunConfig, arch_cfg: Any) -> None:
    if config_hash(arch_cfg) == saved.arch_hash:
        return
    old, new = to_dict(saved.arch), to_dict(arch_cfg)
    diff = ", ".join(f"{k}: {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new))
                     if old.get(k) != new.get(k))
    raise UserInputError(f"--resume: the architecture differs from {run_dir / CONFIG_FILE} ({diff}); drop the "
                         "--arch / --image-size changes or train into another --out.")
