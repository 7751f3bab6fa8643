"""TensorRT plans: strongly typed FP16 engines with dynamic shapes (skipped with a reason without TensorRT/GPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export_helpers import TINY, make_run_dir
from gandeploy.export.onnx2fp16 import FP16_MAX_ABS
from gandeploy.export.pipeline import export_run
from gandeploy.models.io import example_inputs
from gandeploy.registry import get_model
from gandeploy.runtimes.base import open_runtime

pytestmark = pytest.mark.tensorrt


@pytest.mark.parametrize("model", ["cgan", "cyclegan"])
def test_plan_builds_runs_and_matches_torch(tmp_path: Path, model: str) -> None:
    run = make_run_dir(tmp_path / "runs" / model, model)
    out = export_run(run, tmp_path / "export" / model, fp16=True, max_batch=4).out_dir
    manifest = json.loads((out / "manifest.json").read_text())
    trt_info = manifest["tensorrt"]
    assert trt_info["built"] and trt_info["version"] and trt_info["gpu"]
    assert manifest["files"]["model.plan"]["format"] == "tensorrt"
    assert manifest["parity"]["tensorrt"]["passed"]
    spec = get_model(model)
    cfg = spec.config_cls(**TINY[model])
    hw = (200, 320) if spec.task() == "translation" else None
    feeds = example_inputs(spec.io(cfg), 3, image_hw=hw, seed=4)
    with open_runtime("tensorrt", out) as rt, open_runtime("torch", out) as ref_rt:
        assert rt.device.startswith("cuda") and rt.precision == "fp16"
        got, ref = rt.run(feeds)["output"], ref_rt.run(feeds)["output"]
        assert got.shape == ref.shape and float(np.abs(got - ref).max()) <= FP16_MAX_ABS


def test_timing_cache_is_reused_across_builds(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "runs" / "dcgan", "dcgan")
    first = export_run(run, tmp_path / "export" / "a", fp16=True, max_batch=2).manifest["tensorrt"]
    second = export_run(run, tmp_path / "export" / "b", fp16=True, max_batch=2).manifest["tensorrt"]
    assert first["timing_cache"]["reused"] is False
    assert second["timing_cache"]["reused"] is True
    assert (tmp_path / "export" / ".tensorrt" / "timing.cache").is_file()
    assert (tmp_path / "export" / "b" / "timing.cache").is_file()
