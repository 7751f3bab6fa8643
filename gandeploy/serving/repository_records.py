"""What ``gandeploy repo`` records in a model repository and reads back: one ``<name>/gandeploy.json`` per
export (the export it came from, every file's SHA-256, the served contract), the ownership checks that refuse to
overwrite another export's models, the swap of staged model dirs into place, and ``verify_repository``."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gandeploy.errors import ServingError, UserInputError
from gandeploy.serving.exports import ServedExport
from gandeploy.utils.io import sha256_file
from gandeploy.utils.logging import get_logger

log = get_logger("serving.repository")

REPO_FORMAT = "gandeploy.repository/1"
RECORD_FILE = "gandeploy.json"


def model_hashes(model_dir: Path) -> dict[str, str]:
    """SHA-256 of every file gandeploy wrote into one model dir (its record excluded)."""
    return {p.relative_to(model_dir).as_posix(): sha256_file(p)
            for p in sorted(model_dir.rglob("*")) if p.is_file() and p.name != RECORD_FILE}


def check_conflicts(root: Path, exports: list[ServedExport], new_models: set[str], force: bool = False) -> None:
    """Refuse to overwrite a model directory that another export (or no gandeploy build) owns; one built from
    another export dir of the same name (a served model the running server would hot-reload) needs ``force``."""
    if not root.is_dir():
        return
    records = read_records(root)
    owned = {}
    for record in records.values():
        for model in record.get("models", {}):
            owned[model] = record["name"]
    ours = {e.name for e in exports}
    for model in sorted(new_models):
        if (root / model).exists() and owned.get(model) not in ours:
            owner = f"export '{owned[model]}'" if model in owned else "something other than 'gandeploy repo'"
            raise UserInputError(f"'{root / model}' already exists and belongs to {owner}; remove it or pass "
                                 "another --out.")
    if force:
        return
    for export in exports:
        old = records.get(export.name)
        source = old.get("export_dir") if old else None
        if source and Path(source).resolve() != export.export_dir.resolve():
            raise UserInputError(f"'{root / export.name}' serves '{export.name}' built from the export {source}, not "
                                 f"{export.export_dir}: pass --force to replace it (a running server reloads it), "
                                 "or re-export under another name (export --out DIR).")


def swap_in(root: Path, staging: Path, exports: list[ServedExport], planned: Sequence[Any]) -> None:
    """Rename each staged model dir over its old version; drop models the old build had and this one lacks."""
    old = read_records(root)
    stale = set()
    for export in exports:
        stale |= set(old.get(export.name, {}).get("models", {})) - {m.name for m in planned}
    trash = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
    try:
        for model in planned:
            target = root / model.name
            if target.exists():
                os.replace(target, trash / model.name)
            os.replace(staging / model.name, target)
        for name in sorted(stale):
            if (root / name).exists():
                os.replace(root / name, trash / name)
                log.info("removed stale model %s", name)
    finally:
        shutil.rmtree(trash, ignore_errors=True)


# --- reading back --------------------------------------------------------------------------------------------


def read_records(root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Every ``<name>/gandeploy.json`` in a repository, keyed by export name."""
    records = {}
    for path in sorted(Path(root).glob(f"*/{RECORD_FILE}")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ServingError(f"{path} is damaged ({exc}); re-run 'gandeploy repo'.") from None
        if isinstance(data, dict) and data.get("format") == REPO_FORMAT:
            records[str(data["name"])] = data
    return records


def verify_repository(root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Re-hash every file gandeploy wrote into ``root``; a changed or missing file is a ``ServingError``."""
    root = Path(root)
    if not root.is_dir():
        raise UserInputError(f"model repository '{root}' does not exist: run 'gandeploy repo EXPORT_DIR' first "
                             "(or pass --model-repository).")
    records = read_records(root)
    for record in records.values():
        for model, info in record.get("models", {}).items():
            for rel, digest in info.get("files", {}).items():
                path = root / model / rel
                if not path.is_file() or sha256_file(path) != digest:
                    state = "is missing" if not path.is_file() else "was modified"
                    raise ServingError(f"{path} {state} since 'gandeploy repo' built it; run 'gandeploy repo "
                                       f"{record.get('export_dir', 'EXPORT_DIR')}' again.")
    return records
