"""Checkpoints: written atomically, loaded with ``weights_only=True``, errors that say what is wrong.

Layout of a run dir::

    config.json                 RunConfig (model name + architecture + training settings)
    checkpoints/latest.pt       the newest full training state (atomic rename: never half-written)
    checkpoints/step_000500.pt  periodic copies
    losses.csv, losses.png, samples/epoch_001.png, ...

A checkpoint is a plain dict of tensors and numbers::

    {"format": "gandeploy.ckpt/1", "step": int, "epoch": int,
     "models": {"G": state_dict, "D": state_dict, ...},      # CycleGAN: G_A, G_B, D_A, D_B
     "optimizers": {"G": state_dict, ...}, "extra": {...}}   # optimizers empty for imported generators
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gandeploy.config import RunConfig, load_run_config
from gandeploy.errors import CheckpointError, UserInputError, one_line
from gandeploy.models.blocks import bake_for_export
from gandeploy.registry import get_model
from gandeploy.utils.io import atomic_write_bytes

CKPT_FORMAT = "gandeploy.ckpt/1"
EMA_SUFFIX = "_ema"  # checkpoint key of a generator's moving average (G_ema), kept with --ema
CKPT_DIR = "checkpoints"
LATEST = "latest.pt"


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Serialise ``state`` (with the format tag) and write it atomically to ``path``."""
    buf = io.BytesIO()
    torch.save({"format": CKPT_FORMAT, **state}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a gandeploy checkpoint safely (``weights_only=True``); corrupt or foreign files are a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist.")
    state = load_torch_file(path, map_location)
    if not isinstance(state, dict) or state.get("format") != CKPT_FORMAT:
        raise CheckpointError(
            f"'{path}' is not a gandeploy checkpoint (no '{CKPT_FORMAT}' tag). To bring in weights trained "
            "elsewhere use 'gandeploy import'."
        )
    return state


def load_torch_file(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with errors a user can act on."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" in str(exc).lower():  # a pickled class or function; torch's advice (weights_only=False) is unsafe
            raise CheckpointError(
                f"cannot read '{path}': it holds Python objects besides tensors, and gandeploy loads weights only "
                "(weights_only=True) for safety. Save a plain state_dict (torch.save(model.state_dict(), PATH))."
            ) from None
        raise CheckpointError(f"cannot read '{path}': it is corrupt, truncated or not a PyTorch weights file "
                              "(it does not unpickle).") from None
    except Exception as exc:  # noqa: BLE001 - torch's loader raises KeyError, EOFError, RuntimeError, ...
        detail = one_line(str(exc), 160) if str(exc).strip() else ""
        raise CheckpointError(
            f"cannot read '{path}': it is corrupt, truncated or not a PyTorch weights file "
            f"({type(exc).__name__}{': ' + detail if detail else ''})."
        ) from None


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path:
    """``run_dir/checkpoints/latest.pt``, or a clear error when the run has none yet."""
    path = Path(run_dir) / CKPT_DIR / LATEST
    if not path.is_file():
        raise CheckpointError(f"no checkpoint in '{run_dir}' (expected {CKPT_DIR}/{LATEST}).")
    return path


def load_state_into(module: nn.Module, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """``load_state_dict(strict=True)`` whose failure names the missing / unexpected / mis-shaped keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(k for k in set(own) & set(state_dict) if tuple(own[k].shape) != tuple(state_dict[k].shape))
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_few(unexpected)}")
        if shapes:
            parts.append("shape mismatch at " + _few(
                [f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}" for k in shapes]))
        raise CheckpointError(f"{what} does not fit its config.json: " + "; ".join(parts) + ".")
    module.load_state_dict(state_dict, strict=True)


def _few(items: list[str], n: int = 6) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def load_generator(run_dir: str | os.PathLike[str], key: str | None = None,
                   map_location: str | torch.device = "cpu") -> tuple[nn.Module, RunConfig]:
    """Rebuild a run dir's generator from ``config.json`` + ``checkpoints/latest.pt``, in eval mode.

    ``key`` picks the generator (``G``; CycleGAN ``G_A`` (A→B, default) or ``G_B``).
    """
    generator, run, _ = load_generator_and_key(run_dir, key, map_location)
    return generator, run


def load_generator_and_key(run_dir: str | os.PathLike[str], key: str | None = None,
                           map_location: str | torch.device = "cpu") -> tuple[nn.Module, RunConfig, str]:
    """``load_generator`` that also returns the checkpoint key it resolved (the first present by default)."""
    run = load_run_config(run_dir)
    spec = get_model(run.model)
    allowed = (*spec.generator_keys, *(k + EMA_SUFFIX for k in spec.generator_keys))
    if key is not None and key not in allowed:
        raise UserInputError(f"--generator must be one of {', '.join(allowed)} for {spec.name}, got '{key}'.")
    state = load_checkpoint(latest_checkpoint(run_dir), map_location)
    models = state.get("models")
    if not isinstance(models, dict):
        raise CheckpointError(f"checkpoint of '{run_dir}' holds no models; re-train or re-import it.")
    if key is None:  # the moving average of the first generator when the run kept one (--ema), else the first
        key = next((k for k in (spec.generator_keys[0] + EMA_SUFFIX, *spec.generator_keys) if k in models),
                   spec.generator_keys[0])
    if key not in models:
        raise CheckpointError(f"checkpoint of '{run_dir}' has no generator '{key}' (it has: "
                              f"{', '.join(sorted(models)) or 'none'}).")
    generator = spec.build_generator(run.arch)
    load_state_into(generator, models[key], f"generator '{key}' in {run_dir}")
    return generator.eval(), run, key


# --- the generator weights inside an export dir (self-contained: config.json + generator.pt) -----------------

GENERATOR_FILE = "generator.pt"


def save_generator(export_dir: str | os.PathLike[str], module: nn.Module, key: str) -> Path:
    """``generator.pt`` beside the export's ``config.json``: the exported generator's weights (checkpoint key
    ``key``; spectral norm baked, as in the ONNX graph), so the PyTorch reference is rebuilt from the export dir
    alone."""
    state = {"models": {key: {k: v.detach().cpu() for k, v in module.state_dict().items()}}, "generator": key}
    return save_checkpoint(Path(export_dir) / GENERATOR_FILE, state)


def load_exported_generator(export_dir: str | os.PathLike[str],
                            map_location: str | torch.device = "cpu") -> tuple[nn.Module, RunConfig, str]:
    """Rebuild an export dir's generator from its ``config.json`` + ``generator.pt``, in eval mode."""
    export_dir = Path(export_dir)
    run = load_run_config(export_dir)
    state = load_checkpoint(export_dir / GENERATOR_FILE, map_location)
    key = str(state.get("generator", ""))
    weights = (state.get("models") or {}).get(key)
    if not isinstance(weights, dict):
        raise CheckpointError(f"{export_dir / GENERATOR_FILE} holds no generator weights; run 'gandeploy export' "
                              "again.")
    generator = bake_for_export(get_model(run.model).build_generator(run.arch))  # the exported (baked) layout
    load_state_into(generator, weights, f"generator '{key}' in {export_dir / GENERATOR_FILE}")
    return generator.eval(), run, key
