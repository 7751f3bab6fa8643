"""PyTorch eager: the FP32 reference every other runtime is compared with.

``open_runtime("torch", path)`` accepts an export dir (the generator is rebuilt from the dir's own
``config.json`` + ``generator.pt``; ``run_dir=`` rebuilds it from a run dir instead) or a run dir directly
(``generator=`` picks its checkpoint key, e.g. CycleGAN's G_B; the runtime's ``generator_key`` is the one
loaded); ``module=`` wraps an in-memory generator. ``run_float64`` runs a float64 copy of the same generator:
the exact-arithmetic stand-in each case's FP32 noise floor is measured against (``tolerances.noise_floor``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gandeploy.config import RunConfig, load_run_config
from gandeploy.errors import ExportError, UserInputError, one_line
from gandeploy.manifest import MANIFEST_FILE, load_manifest
from gandeploy.registry import get_model
from gandeploy.runtimes.base import Runtime, check_inputs
from gandeploy.utils.device import resolve_device
from gandeploy.utils.logging import get_logger

log = get_logger("runtimes.torch")


class TorchRuntime(Runtime):
    """Runs an ``nn.Module`` generator in eval mode under ``torch.inference_mode``."""

    def __init__(self, module: nn.Module, run: RunConfig, *, key: str = "torch", device: str = "cpu",
                 generator_key: str = "G") -> None:
        dev = resolve_device(device)
        super().__init__(key, device=str(dev), precision="fp32")
        self.module = module.to(dev).eval()
        self.run_config = run
        self.generator_key = generator_key
        io = get_model(run.model).io(run.arch)
        self.inputs, self.outputs = io.inputs, io.outputs
        self._torch_device = dev
        self._double: nn.Module | None = None
        self.float64_reason: str | None = None  # why there is no float64 reference, once a run failed

    def _args(self, inputs: Mapping[str, np.ndarray], dtype: torch.dtype | None = None) -> list[torch.Tensor]:
        feeds = check_inputs(self.inputs, inputs)
        args = [torch.from_numpy(feeds[name]).to(self._torch_device) for name in self.input_names]
        return [a.to(dtype) if dtype is not None and a.is_floating_point() else a for a in args]

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = self._args(inputs)
        with torch.inference_mode():
            out = self.module(*args)  # [N, C, H, W] (2D MLP: [N, D])
        return {self.output_names[0]: out.detach().float().cpu().numpy()}

    def run_float64(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """The same generator in float64 (a copy, float inputs cast), outputs as float64 arrays; None (with
        ``float64_reason`` set) when the generator cannot run in float64 or does not compute in it."""
        if self.float64_reason is not None:
            return None
        try:
            if self._double is None:
                self._double = copy.deepcopy(self.module).double().eval()
            with torch.inference_mode():
                out = self._double(*self._args(inputs, torch.float64))
            if out.dtype != torch.float64:
                raise TypeError(f"its output is {str(out.dtype).removeprefix('torch.')}, not float64")
        except (RuntimeError, TypeError, NotImplementedError) as exc:
            self.float64_reason = f"the generator does not run in float64 ({one_line(str(exc), 120)})"
            self._double = None
            log.warning("FP32 noise floor not measured: %s; the table's FP32 bounds apply", self.float64_reason)
            return None
        return {self.output_names[0]: out.detach().cpu().numpy()}

    def close(self) -> None:
        self.module = self.module.cpu()
        self._double = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.run_config.model, "generator": self.generator_key,
                "torch": torch.__version__}


def open_runtime(key: str, export_dir: Path, *, module: nn.Module | None = None, run_dir: str | Path | None = None,
                 generator: str | None = None, device: str = "cpu", **_: Any) -> TorchRuntime:
    """The PyTorch reference for an export dir (via its source run) or a run dir."""
    from gandeploy.training.checkpoint import (  # local: keeps runtime imports light
        GENERATOR_FILE, load_exported_generator, load_generator, load_generator_and_key)

    path = Path(export_dir)
    manifest = load_manifest(path) if (path / MANIFEST_FILE).is_file() else None
    if module is not None:
        run = load_run_config(path)
        return TorchRuntime(module, run, key=key, device=device, generator_key=generator or "G")
    if manifest is None:  # a run dir: ``generator`` picks the checkpoint key (default: G_ema if kept, else G)
        gen, run, chosen = load_generator_and_key(path, key=generator)
        return TorchRuntime(gen, run, key=key, device=device, generator_key=chosen)
    if run_dir is None and (path / GENERATOR_FILE).is_file():
        gen, run, key_g = load_exported_generator(path)  # self-contained: config.json + generator.pt
        where = f"{path / 'config.json'}"
    else:  # an export without generator.pt (or run_dir= given): rebuild from the run dir
        source = Path(run_dir) if run_dir is not None else Path(str(manifest.data.get("source_run", "")))
        key_g = generator or manifest.generator
        if not (source / "config.json").is_file():
            raise UserInputError(
                f"the PyTorch reference for '{path}' needs its run dir '{source}' (from manifest.json "
                "'source_run'), which is not there: pass run_dir=... or export from the run dir again.")
        gen, run = load_generator(source, key=key_g)
        where = f"run dir '{source}'"
    if manifest.arch_hash and run.arch_hash != manifest.arch_hash:
        raise ExportError(f"{where} (arch {run.arch_hash}) does not match {manifest.path} (arch "
                          f"{manifest.arch_hash}); run 'gandeploy export' again.")
    return TorchRuntime(gen, run, key=key, device=device, generator_key=str(key_g))
