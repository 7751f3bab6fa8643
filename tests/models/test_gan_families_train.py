"""sagan and biggan train with the generic sampling task (hinge loss) and export from the run dir."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from gandeploy.export.pipeline import export_run
from gandeploy.registry import get_model
from gandeploy.training.api import train_run
from gandeploy.training.checkpoint import load_checkpoint, load_generator
from gandeploy.training.task import TrainConfig


@pytest.mark.parametrize("model", ["sagan", "biggan"])
def test_trains_a_few_steps_and_exports(model: str, tmp_path: Path) -> None:
    spec = get_model(model)
    train = TrainConfig(loss="hinge", steps=3, batch_size=16, device="cpu", checkpoint_every=3)
    run = train_run(model, spec.smoke_dataset, train, tmp_path / "run", arch=dict(spec.tiny))
    rows = list(csv.DictReader((run / "losses.csv").open()))
    assert len(rows) == 3 and all(np.isfinite(float(r["loss_D"])) and np.isfinite(float(r["loss_G"])) for r in rows)
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    fresh = spec.build_generator(spec.config_cls(**spec.tiny)).state_dict()
    trained = state["models"]["G"]
    moved = [k for k in fresh if k.endswith("._u") and not torch.allclose(fresh[k], trained[k])]
    assert moved, "training-mode forwards run spectral norm's power iteration"
    g, _ = load_generator(run)
    assert not g.training
    result = export_run(run, tmp_path / "export", fp16=True, trt=False, max_batch=4)
    parity = result.manifest["parity"]
    assert parity["onnxruntime"]["passed"] and parity["onnxruntime-fp16"]["passed"]
