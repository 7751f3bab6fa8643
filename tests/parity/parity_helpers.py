"""Tiny architectures and export builder of the parity suite (imported by conftest.py and the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gandeploy.models.cgan import CGANConfig
from gandeploy.models.cyclegan import CycleGANConfig
from gandeploy.models.dcgan import DCGANConfig
from gandeploy.models.mlp import MLPConfig

# One tiny architecture per registry model; test_registry_is_covered fails when a model is added without one.
TINY: dict[str, Any] = {
    "dcgan": DCGANConfig(nz=8, ngf=8, ndf=8, image_size=32),
    "cgan": CGANConfig(nz=8, ngf=8, ndf=8, channels=1, image_size=32, num_classes=3, embed_dim=4),
    "mlp": MLPConfig(nz=2, hidden=16, layers=2),
    "cyclegan": CycleGANConfig(ngf=4, ndf=4, n_blocks=1, image_size=32),
}
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "cyclegan": {"min_size": (16, 16), "opt_size": (32, 32), "max_size": (64, 64)},
}
MAX_BATCH = 8


def make_export(root: Path, model: str, *, seed: int = 0, fp16: bool = True) -> Path:
    """A run dir (``root/runs/<model>-<seed>``) and its export (``root/export/<model>``)."""
    from gandeploy.evaluation.suite import make_run
    from gandeploy.export.pipeline import export_run

    run = make_run(root / "runs" / f"{model}-{seed}", model, TINY[model], seed=seed)
    return export_run(run, root / "export" / model, fp16=fp16, trt=None, max_batch=MAX_BATCH,
                      **SIZES.get(model, {})).out_dir  # type: ignore[arg-type]
