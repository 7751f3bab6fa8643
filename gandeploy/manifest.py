"""``manifest.json``: what an export dir holds, how it was made, and the errors measured at export time.

Written last and atomically, so a directory with a manifest is a complete export. Layout::

    {"format": "gandeploy.export/1", "name", "model", "task", "generator", "arch_hash", "source_run",
     "inputs": [{"name", "dtype", "shape"}], "outputs": [...],      # 'N' / 'H' / 'W' for dynamic dims
     "max_batch": int, "image_sizes": {"min": [h, w], "opt": [h, w], "max": [h, w]},   # translation only
     "output_sizes": {"min": [sh, sw], ...},            # the same, times the output's declared scale
     "receptive_field": {"radius", "threshold_levels", "bounded", "measured_on", ...},  # picture inputs
     "fp16": {"kept_fp32", "kept_fp32_nodes": {"overflow", "error"}, "error", "fallback", ...},   # with --fp16
     "contract": ServedContract.to_json(),                            # what is served (gandeploy/contract.py)
     "files": {"model.onnx": {"sha256", "bytes", "format": "onnxruntime"}, ...},
     "parity": {"onnxruntime": {"max_abs", "mean_abs", "batch_sizes", "tolerance", "passed", ...}, ...},
     "tensorrt": {"built": bool, "reason"?, "version"?, "gpu"?}, "exporter": {...},
     "tensorrt_int8": {"built": bool, "reason"?, "version"?, "verdict"?, "qdq"?},   # model.int8.plan, with --int8
     "versions": {...}, "created": ISO time}

``load_manifest`` is the one loader: it returns a frozen ``Manifest`` (the served contract included) or raises
``ExportError`` naming the file and saying to re-export. ``verify_export`` also re-hashes every listed file;
serving calls it before loading anything.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gandeploy import __version__
from gandeploy.contract import ServedContract
from gandeploy.errors import ExportError, UserInputError
from gandeploy.formats import get_format
from gandeploy.models.io import GeneratorIO
from gandeploy.utils.io import atomic_write_json, read_tagged_json, sha256_file

MANIFEST_FILE = "manifest.json"
EXPORT_FORMAT = "gandeploy.export/1"


def file_entry(path: Path, fmt: str | None = None) -> dict[str, Any]:
    """``{"sha256", "bytes"}`` (+ ``"format"``, a FORMATS key) for one file of the export."""
    entry: dict[str, Any] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    if fmt is not None:
        entry["format"] = fmt
    return entry


def versions() -> dict[str, str]:
    """Versions of everything that shaped the artifacts."""
    import numpy
    import onnx
    import torch

    found = {"gandeploy": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
             "numpy": numpy.__version__, "python": platform.python_version()}
    for name in ("onnxruntime", "onnxscript", "onnxconverter_common", "tensorrt"):
        try:
            module = __import__(name)
            found[name] = str(getattr(module, "__version__", "unknown"))
        except Exception:  # noqa: BLE001 - optional packages: absent or broken means "not recorded"
            continue
    return found


def unbuilt_reason(data: Mapping[str, Any], key: str) -> str | None:
    """Why the export did not build format ``key``, as its manifest block (``Format.record``: ``tensorrt``,
    ``tensorrt_int8``) recorded it; None when it was built or the format has no such block."""
    fmt = get_format(key)
    if fmt.record is None:
        return None
    record = data.get(fmt.record)
    if isinstance(record, Mapping) and record.get("built"):
        return None
    reason = record.get("reason") if isinstance(record, Mapping) else None
    return str(reason or f"the export records no {fmt.file} (exported before gandeploy built it)")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_manifest(export_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` atomically (the last file of an export)."""
    return atomic_write_json(Path(export_dir) / MANIFEST_FILE, manifest)


@dataclass(frozen=True)
class Manifest:
    """A loaded ``manifest.json``: the fields every consumer reads, typed; ``data`` keeps the whole record."""

    export_dir: Path
    name: str
    model: str
    generator: str
    arch_hash: str
    contract: ServedContract
    files: Mapping[str, Mapping[str, Any]]
    parity: Mapping[str, Any]
    tensorrt: Mapping[str, Any]
    data: Mapping[str, Any]

    @property
    def io(self) -> GeneratorIO:
        return self.contract.io

    @property
    def task(self) -> str:
        return self.contract.io.task

    @property
    def max_batch(self) -> int:
        return self.contract.max_batch

    @property
    def image_sizes(self) -> Mapping[str, tuple[int, int]]:
        return self.contract.image_sizes or {}

    @property
    def path(self) -> Path:
        return self.export_dir / MANIFEST_FILE


def load_manifest(export_dir: str | os.PathLike[str]) -> Manifest:
    """Read and check ``export_dir/manifest.json``; every problem is an ``ExportError`` naming the file."""
    export_dir = Path(export_dir)
    data = _read(export_dir)
    path = export_dir / MANIFEST_FILE
    contract = ServedContract.from_manifest(data, str(path))
    try:
        return Manifest(export_dir, str(data.get("name") or export_dir.name), str(data["model"]),
                        str(data.get("generator", "G")), str(data.get("arch_hash", "")), contract, data["files"],
                        dict(data.get("parity") or {}), dict(data.get("tensorrt") or {"built": False}), data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{path} is damaged ({exc}); run 'gandeploy export' again.") from None


def _read(export_dir: Path) -> dict[str, Any]:
    export_dir = Path(export_dir)
    path = export_dir / MANIFEST_FILE
    if not export_dir.is_dir():
        raise ExportError(f"export dir '{export_dir}' does not exist: run 'gandeploy export RUN_DIR' first.")
    if not path.is_file() and (export_dir / "checkpoints").is_dir():
        raise UserInputError(f"'{export_dir}' is a training run dir, not an export dir: run 'gandeploy export "
                             f"{export_dir} --fp16' first, then pass the export dir it prints.")
    if not path.is_file():
        raise ExportError(f"'{export_dir}' has no {MANIFEST_FILE}: the export is incomplete or failed; "
                          "run 'gandeploy export' again.")
    data = read_tagged_json(path, EXPORT_FORMAT, ExportError, "a gandeploy export manifest",
                            "run 'gandeploy export' again.")
    if not isinstance(data.get("files"), dict):
        raise ExportError(f"{path} lists no files; run 'gandeploy export' again.")
    return data


def verify_export(export_dir: str | os.PathLike[str]) -> Manifest:
    """Re-hash every file the manifest lists; raise ExportError naming a missing or altered file.

    Returns the manifest on success.
    """
    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir)
    problems = file_problems(export_dir, manifest)
    if problems:
        raise ExportError(problems[0])
    return manifest


def file_problems(export_dir: Path, manifest: Manifest) -> list[str]:
    """One message per file the manifest lists that is missing, outside the dir, or changed (size, SHA-256)."""
    problems = []
    for name, entry in sorted(manifest.files.items()):
        path = export_dir / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            problems.append(f"{export_dir / MANIFEST_FILE} lists a file outside the export dir: '{name}'.")
        elif not path.is_file():
            problems.append(f"{path} is missing (listed in {MANIFEST_FILE}); run 'gandeploy export' again.")
        elif path.stat().st_size != entry.get("bytes"):
            problems.append(f"{path} was modified after export: {path.stat().st_size} bytes, manifest says "
                            f"{entry.get('bytes')}; run 'gandeploy export' again.")
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(f"{path} was modified after export: its SHA-256 differs from {MANIFEST_FILE}; "
                            "run 'gandeploy export' again.")
    return problems
