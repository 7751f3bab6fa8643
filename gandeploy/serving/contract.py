"""What gandeploy serves for one export: model names and the user-facing tensor contract.

- sampling (DCGAN, CGAN, MLP images): ``<name>`` takes ``seed`` INT64 [1] (+ CGAN ``label`` INT64 [1]) and
  returns ``image`` UINT8 [H, W, C];
- points (MLP on 2D data): ``<name>`` takes ``seed`` INT64 [1] and returns ``sample`` FP32 [D];
- translation (CycleGAN): ``<name>`` takes ``image_bytes`` BYTES [1] (PNG/JPEG) and returns ``image_bytes``
  BYTES [1] (a PNG of the input's size);
- every export: ``<name>_generator`` takes and returns the ONNX tensors (``z`` [+ ``label``] or ``image`` →
  ``output``).

Seeds are integers in [0, 2**63 - 1]; a seed's latent is ``gandeploy.models.io.latent_from_seed`` (NumPy
PCG64 ``default_rng(seed).standard_normal(nz)`` as float32) on every backend.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gandeploy.config import RunConfig, load_run_config
from gandeploy.errors import ExportError, UserInputError
from gandeploy.models.io import BATCH, TensorSpec
from gandeploy.serving.configs import Tensor

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ServedExport:
    """One verified export and everything the repository builder needs to serve it."""

    name: str
    task: str  # "sampling" | "translation"
    model: str  # registry name: dcgan, cgan, mlp, cyclegan
    export_dir: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    run: RunConfig
    inputs: tuple[TensorSpec, ...]  # the ONNX graph's
    outputs: tuple[TensorSpec, ...]
    max_batch: int
    nz: int
    num_classes: int

    @property
    def generator_model(self) -> str:
        return f"{self.name}_generator"

    @property
    def points(self) -> bool:
        """A generator of vectors (MLP on 2D data) rather than images."""
        return len(self.outputs[0].shape) == 2

    @property
    def in_channels(self) -> int:
        return int(self.inputs[0].shape[1]) if self.task == "translation" else 0

    @property
    def out_channels(self) -> int:
        return 0 if self.points else int(self.outputs[0].shape[1])

    @property
    def image_sizes(self) -> dict[str, list[int]]:
        return dict(self.manifest.get("image_sizes") or {})

    def generator_tensors(self) -> tuple[list[Tensor], list[Tensor]]:
        """The raw generator's Triton tensors: the ONNX IO without the batch axis (H/W dynamic → -1)."""
        def dims(spec: TensorSpec) -> tuple[int, ...]:
            return tuple(-1 if isinstance(d, str) else int(d) for d in spec.shape[1:])

        inputs = [Tensor(s.name, s.dtype, (1,), reshape=()) if s.shape == (BATCH,) else Tensor(s.name, s.dtype, dims(s))
                  for s in self.inputs]
        outputs = [Tensor(s.name, "float32", dims(s)) for s in self.outputs]
        return inputs, outputs

    def served_tensors(self) -> tuple[list[Tensor], list[Tensor]]:
        """The user-facing ``<name>`` model's tensors (see the module docstring)."""
        if self.task == "translation":
            return [Tensor("image_bytes", "bytes", (1,))], [Tensor("image_bytes", "bytes", (1,))]
        inputs = [Tensor("seed", "int64", (1,))]
        if self.num_classes:
            inputs.append(Tensor("label", "int64", (1,)))
        if self.points:
            return inputs, [Tensor("sample", "float32", (int(self.outputs[0].shape[1]),))]
        _, c, h, w = self.outputs[0].shape
        return inputs, [Tensor("image", "uint8", (int(h), int(w), int(c)))]


def load_export(export_dir: str | os.PathLike[str]) -> ServedExport:
    """Verify ``export_dir`` (every file re-hashed against ``manifest.json``) and describe what to serve."""
    from gandeploy.export.manifest import MANIFEST_FILE, verify_export
    from gandeploy.runtimes.base import spec_from_signature
    from gandeploy.utils.io import sha256_file

    export_dir = Path(export_dir)
    manifest = verify_export(export_dir)  # raises ExportError naming a missing or altered file
    if "model.onnx" not in manifest["files"]:
        raise ExportError(f"'{export_dir}' has no model.onnx in its manifest; run 'gandeploy export' again.")
    name = str(manifest.get("name") or export_dir.name)
    if not NAME_RE.match(name):
        raise UserInputError(f"export name '{name}' (from {export_dir / MANIFEST_FILE}) is not a valid Triton model "
                             "name: use letters, digits, '_', '-', '.'; re-export with another --name.")
    run = load_run_config(export_dir)
    try:
        inputs = tuple(spec_from_signature(t) for t in manifest["inputs"])
        outputs = tuple(spec_from_signature(t) for t in manifest["outputs"])
        task = str(manifest["task"])
        max_batch = int(manifest.get("max_batch") or 64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{export_dir / MANIFEST_FILE} is damaged ({exc}); run 'gandeploy export' again.") from None
    if task not in ("sampling", "translation"):
        raise ExportError(f"{export_dir / MANIFEST_FILE}: unknown task '{task}'.")
    from gandeploy.registry import get_model

    spec = get_model(run.model)
    return ServedExport(
        name=name, task=task, model=run.model, export_dir=export_dir, manifest=manifest,
        manifest_sha256=sha256_file(export_dir / MANIFEST_FILE), run=run, inputs=inputs, outputs=outputs,
        max_batch=max_batch, nz=int(getattr(run.arch, "nz", 0)), num_classes=spec.num_classes(run.arch)
        if spec.conditional else 0,
    )
