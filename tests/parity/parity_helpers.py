"""Tiny architectures and export builder of the parity suite (imported by conftest.py and the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gandeploy.registry import MODELS

# One tiny architecture per registry model: the registry's own ``tiny`` settings (a new family brings its own).
TINY: dict[str, Any] = {name: spec.config_cls(**spec.tiny) for name, spec in MODELS.items()}
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "cyclegan": {"min_size": (16, 16), "opt_size": (32, 32), "max_size": (64, 64)},
}
MAX_BATCH = 8


def make_export(root: Path, model: str, *, seed: int = 0, fp16: bool = True) -> Path:
    """A run dir (``root/runs/<model>-<seed>``) and its export (``root/export/<model>``)."""
    from gandeploy.evaluation.bench.suite import make_run
    from gandeploy.export.pipeline import export_run

    run = make_run(root / "runs" / f"{model}-{seed}", model, TINY[model], seed=seed)
    return export_run(run, root / "export" / model, fp16=fp16, trt=None, max_batch=MAX_BATCH,
                      **SIZES.get(model, {})).out_dir  # type: ignore[arg-type]
