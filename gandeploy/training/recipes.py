"""``--recipe FILE``: one small TOML per model x dataset, holding the settings a run was measured with.

    model = "cgan"
    dataset = "digits"
    description = "what this recipe is for"   # optional

    [arch]      # fields of the model's config (models/<name>.py)
    ngf = 32

    [train]     # fields of TrainConfig (training/task.py) and of the family's own Options (its task file)
    epochs = 30

Flags given on the command line override the recipe; an unknown key is an error naming the key and file.
A bare ``gandeploy train MODEL DATASET`` uses the shipped ``training/recipes/MODEL-DATASET.toml`` of this
checkout when there is one (``shipped_recipe``); ``--no-recipe`` gives the generic defaults.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gandeploy.errors import UserInputError
from gandeploy.training.task import TrainConfig

TOP_KEYS = ("model", "dataset", "description", "arch", "train")
SHIPPED_RECIPES = Path(__file__).resolve().parents[2] / "training" / "recipes"  # beside the package in a checkout


def shipped_recipe(model: str, dataset: str) -> Path | None:
    """The shipped recipe for ``model`` x ``dataset`` (``training/recipes/<model>-<dataset>.toml``), or None."""
    path = SHIPPED_RECIPES / f"{model}-{dataset}.toml"
    return path if path.is_file() else None


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe; ``arch`` / ``train`` hold only the keys the file sets."""

    path: Path
    model: str | None = None
    dataset: str | None = None
    description: str | None = None
    arch: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read and validate a recipe TOML (keys and value types; values themselves are checked by the configs)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"--recipe: file '{path}' does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"--recipe: cannot read '{path}' ({exc}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"--recipe: '{path}' is not valid TOML ({exc}).") from None
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise UserInputError(f"--recipe {path}: unknown key '{unknown[0]}' (allowed at the top: "
                             f"{', '.join(TOP_KEYS)}).")
    for key in ("model", "dataset", "description"):
        if key in data and not isinstance(data[key], str):
            raise UserInputError(f"--recipe {path}: '{key}' must be a string.")
    for key in ("arch", "train"):
        if key in data and not isinstance(data[key], dict):
            raise UserInputError(f"--recipe {path}: '{key}' must be a table ([{key}]).")
    train = dict(data.get("train", {}))
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"options"}
    if "model" in data:  # the family's own training fields are allowed too
        from gandeploy.registry import get_model
        from gandeploy.training.api import task_class
        from gandeploy.training.task import option_fields

        train_fields |= set(option_fields(task_class(get_model(data["model"])).Options))
    for key in train:
        if key not in train_fields:
            raise UserInputError(f"--recipe {path}: unknown key '{key}' in [train]; allowed: "
                                 f"{', '.join(sorted(train_fields))}.")
    arch = dict(data.get("arch", {}))
    if "model" in data and arch:
        from gandeploy.registry import get_model

        arch_fields = {f.name for f in dataclasses.fields(get_model(data["model"]).config_cls)}
        for key in arch:
            if key not in arch_fields:
                raise UserInputError(f"--recipe {path}: unknown key '{key}' in [arch] for model "
                                     f"{data['model']}; allowed: {', '.join(sorted(arch_fields))}.")
    return Recipe(path=path, model=data.get("model"), dataset=data.get("dataset"),
                  description=data.get("description"), arch=arch, train=train)


def merge_train(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win. A layer that sets ``epochs`` without ``steps`` clears an earlier ``steps``."""
    out: dict[str, Any] = {}
    for layer in layers:
        if "epochs" in layer and "steps" not in layer:
            out.pop("steps", None)
        out.update(layer)
    return out


def make_train_config(values: dict[str, Any], source: str, options_cls: type | None = None) -> TrainConfig:
    """``TrainConfig`` from flat ``values``: shared fields, and the fields of the family's ``options_cls`` into
    ``options`` (validated by it); a failure names ``source`` (the flags or the recipe)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"options"}
    own = {f.name for f in dataclasses.fields(options_cls)} if options_cls is not None else set()
    options = {k: v for k, v in values.items() if k in own}
    try:
        if options_cls is not None:
            options_cls(**options)  # values checked here, with the source named
        return TrainConfig(**{k: v for k, v in values.items() if k in fields}, options=options)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"invalid training settings from {source}: {exc}.") from None
