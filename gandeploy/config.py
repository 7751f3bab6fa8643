"""Frozen dataclass configs and the run-dir ``config.json`` that travels with every checkpoint and artifact.

A model is rebuilt from ``config.json`` alone (model name + architecture fields), never from CLI flags.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, TypeVar

from gandeploy import __version__
from gandeploy.errors import CheckpointError, UserInputError
from gandeploy.utils.io import atomic_write_json, read_tagged_json

CONFIG_FILE = "config.json"
QUALITY_FILE = "quality.json"  # a run dir's measured quality (training/quality.py)
RUN_FORMAT = "gandeploy.run/1"

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; unknown or missing fields are a clear error naming ``source``."""
    if not isinstance(data, dict):
        raise CheckpointError(f"{source}: expected an object for {cls.__name__}, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CheckpointError(f"{source}: unknown field(s) {', '.join(unknown)} for {cls.__name__}.")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = tuple(value) if isinstance(value, list) else value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: invalid {cls.__name__}: {exc}") from None


def config_hash(cfg: Any) -> str:
    """Short SHA-256 of a dataclass's canonical JSON: identifies an architecture across artifacts."""
    blob = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What ``config.json`` holds: the model name, its architecture config, and how it was made.

    ``arch`` is the model's own frozen config (``DCGANConfig``, ``CycleGANConfig``, ...). ``train`` is the
    training config (``None`` for imported generators). ``class_names`` labels CGAN classes.
    """

    model: str
    arch: Any
    train: dict[str, Any] | None = None
    dataset: str | None = None
    class_names: tuple[str, ...] | None = None
    source: str = "trained"  # "trained" | "imported:<kind>"

    @property
    def arch_hash(self) -> str:
        return config_hash(self.arch)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": RUN_FORMAT,
            "gandeploy_version": __version__,
            "model": self.model,
            "arch": to_dict(self.arch),
            "arch_hash": self.arch_hash,
            "train": self.train,
            "dataset": self.dataset,
            "class_names": list(self.class_names) if self.class_names is not None else None,
            "source": self.source,
        }


def save_run_config(directory: str | os.PathLike[str], run: RunConfig) -> Path:
    """Write ``config.json`` into ``directory`` atomically."""
    return atomic_write_json(Path(directory) / CONFIG_FILE, run.to_json_dict())


def load_run_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read a run dir's (or export dir's) ``config.json`` and rebuild its typed config."""
    from gandeploy.registry import get_model  # local: registry imports the models

    path = Path(path)
    file = path / CONFIG_FILE if path.is_dir() else path
    if not file.exists():
        hint = "" if path.exists() else f" ('{path}' does not exist)"
        raise UserInputError(
            f"no {CONFIG_FILE} in '{path}'{hint}: pass a run dir made by 'gandeploy train' or 'gandeploy import'."
        )
    data = read_tagged_json(file, RUN_FORMAT, CheckpointError, "a gandeploy run config", "the run dir is damaged.")
    spec = get_model(str(data.get("model")))
    arch = from_dict(spec.config_cls, data.get("arch", {}), source=str(file))
    names = data.get("class_names")
    return RunConfig(
        model=spec.name,
        arch=arch,
        train=data.get("train"),
        dataset=data.get("dataset"),
        class_names=tuple(names) if names is not None else None,
        source=data.get("source", "trained"),
    )
