"""Tiny run dirs for every registry model, built directly (no training): config.json + checkpoints/latest.pt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gandeploy.config import RunConfig, save_run_config
from gandeploy.models.io import GeneratorIO, example_inputs
from gandeploy.registry import MODELS, get_model
from gandeploy.training.checkpoint import save_checkpoint

# Tiny architectures, one per registry model: the registry's own ``tiny`` settings (a new family brings its own).
TINY: dict[str, dict[str, Any]] = {name: dict(spec.tiny) for name, spec in MODELS.items()}


def calibrate_batchnorm(g: torch.nn.Module, io_spec: GeneratorIO, num_classes: int, batch: int = 64,
                        image_hw: tuple[int, int] | None = None) -> None:
    """Set BatchNorm running statistics to the batch statistics of random inputs (train-mode forward);
    ``image_hw``: the picture size of an image-to-image generator's random inputs."""
    norms = [m for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    feeds = example_inputs(io_spec, batch, image_hw=image_hw, seed=123)
    g.train()
    with torch.no_grad():
        g(*[torch.from_numpy(feeds[n]) for n in io_spec.input_names])
    for m in norms:
        m.momentum = 0.1
    g.eval()


def make_run_dir(path: Path, model: str, seed: int = 0, **arch: Any) -> Path:
    """A run dir for ``model`` (tiny config, overridable with ``arch``) holding untrained generators.

    PyTorch's default init plus BatchNorm statistics measured on random inputs (as training would leave
    them) give outputs spread over [-1, 1], so the error checks mean something.
    """
    spec = get_model(model)
    cfg = spec.config_cls(**{**TINY.get(model, {}), **arch})
    torch.manual_seed(seed)
    models = {}
    for key in spec.generator_keys:
        g = spec.build_generator(cfg)
        for m in g.modules():
            if m is not g and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        size = int(getattr(cfg, "image_size", 0) or 0)
        calibrate_batchnorm(g, spec.io(cfg), spec.num_classes(cfg), image_hw=(size, size) if size else None)
        models[key] = g.state_dict()
    classes = tuple(f"class{i}" for i in range(cfg.num_classes)) if spec.num_classes(cfg) else None
    path.mkdir(parents=True, exist_ok=True)
    save_run_config(path, RunConfig(model=model, arch=cfg, class_names=classes, source="imported:test"))
    save_checkpoint(path / "checkpoints" / "latest.pt", {"step": 0, "epoch": 0, "models": models, "optimizers": {}})
    return path
