"""The exports a repository serves: each export dir verified and described by its ``ServedContract``.

What is served for an export (tensor names, checks, feeds) is decided by ``gandeploy.contract`` alone; this
module only loads and verifies the export (every file re-hashed against ``manifest.json``).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

from gandeploy.config import RunConfig, load_run_config
from gandeploy.contract import ServedContract, raw_model
from gandeploy.errors import ExportError, UserInputError
from gandeploy.manifest import MANIFEST_FILE, Manifest, verify_export

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ServedExport:
    """One verified export and everything the repository builder needs to serve it."""

    name: str
    model: str  # registry name: dcgan, cgan, infogan, mlp, cyclegan
    export_dir: Path
    manifest: Manifest
    manifest_sha256: str
    run: RunConfig
    contract: ServedContract

    @property
    def generator_model(self) -> str:
        return raw_model(self.name)

    @property
    def max_batch(self) -> int:
        return self.contract.max_batch


def load_export(export_dir: str | os.PathLike[str]) -> ServedExport:
    """Verify ``export_dir`` (every file re-hashed against ``manifest.json``) and describe what to serve."""
    from gandeploy.utils.io import sha256_file

    export_dir = Path(export_dir)
    manifest = verify_export(export_dir)  # raises ExportError naming a missing or altered file
    if "model.onnx" not in manifest.files:
        raise ExportError(f"'{export_dir}' has no model.onnx in its manifest; run 'gandeploy export' again.")
    if not NAME_RE.match(manifest.name):
        raise UserInputError(f"export name '{manifest.name}' (from {export_dir / MANIFEST_FILE}) is not a valid "
                             "Triton model name: use letters, digits, '_', '-', '.'; re-export into a folder so named "
                             "('gandeploy export RUN_DIR --out export/NEW_NAME': the folder's name is the model's).")
    run = load_run_config(export_dir)
    contract = manifest.contract
    if contract.class_names is None and run.class_names:  # manifests written before the contract entry
        contract = dataclasses.replace(contract, class_names=tuple(run.class_names))
    return ServedExport(name=manifest.name, model=run.model, export_dir=export_dir, manifest=manifest,
                        manifest_sha256=sha256_file(export_dir / MANIFEST_FILE), run=run, contract=contract)
