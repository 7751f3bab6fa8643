"""TensorRT plans built and run through Polygraphy: strongly typed FP16 engines with dynamic shapes.

Marked ``tensorrt``: they run only where TensorRT imports and the CUDA driver reports a GPU (tests/conftest.py),
and skip with that reason elsewhere. The CPU side of this path is in test_export_tensorrt_config.py.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
from export_helpers import TINY, make_run_dir

from gandeploy.errors import UserInputError
from gandeploy.export.onnx2fp16 import FP16_MAX_ABS
from gandeploy.export.pipeline import export_run
from gandeploy.models.io import example_inputs
from gandeploy.registry import get_model
from gandeploy.runtimes.base import open_runtime
from gandeploy.serving import configs as C
from gandeploy.serving import ngc
from gandeploy.serving.repository import build_repository

pytestmark = pytest.mark.tensorrt


@pytest.mark.parametrize("model", ["cgan", "cyclegan"])
def test_plan_builds_runs_and_matches_torch(tmp_path: Path, model: str) -> None:
    run = make_run_dir(tmp_path / "runs" / model, model)
    out = export_run(run, tmp_path / "export" / model, fp16=True, max_batch=4).out_dir
    manifest = json.loads((out / "manifest.json").read_text())
    trt_info = manifest["tensorrt"]
    assert trt_info["built"] and trt_info["version"] and trt_info["gpu"] and trt_info["builder"] == "polygraphy"
    assert trt_info["device_memory_bytes"] > 0
    assert manifest["files"]["model.plan"]["format"] == "tensorrt"
    assert manifest["parity"]["tensorrt"]["passed"]
    spec = get_model(model)
    cfg = spec.config_cls(**TINY[model])
    hw = (200, 320) if spec.task() == "translation" else None
    feeds = example_inputs(spec.io(cfg), 3, image_hw=hw, seed=4)
    with open_runtime("tensorrt", out) as rt, open_runtime("torch", out) as ref_rt:
        assert rt.device == "cuda:0" and rt.precision == "fp16"
        assert rt.describe()["runner"] == "polygraphy.TrtRunner"
        got, ref = rt.run(feeds)["output"], ref_rt.run(feeds)["output"]
        again = rt.run(feeds)["output"]  # persistent buffers: a second call must not alias the first result
        assert got.shape == ref.shape and float(np.abs(got - ref).max()) <= FP16_MAX_ABS
        assert np.array_equal(got, again)
        with pytest.raises(UserInputError, match="outside the engine's profile"):
            rt.run(example_inputs(spec.io(cfg), 5, image_hw=hw, seed=4))


def test_timing_cache_is_reused_and_merged(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "runs" / "dcgan", "dcgan")
    first = export_run(run, tmp_path / "export" / "a", fp16=True, max_batch=2).manifest["tensorrt"]
    second = export_run(run, tmp_path / "export" / "b", fp16=True, max_batch=2).manifest["tensorrt"]
    assert first["timing_cache"]["reused"] is False
    assert second["timing_cache"]["reused"] is True
    shared = tmp_path / "export" / ".tensorrt" / "timing.cache"
    assert shared.is_file() and (tmp_path / "export" / "b" / "timing.cache").read_bytes() == shared.read_bytes()


def test_corrupt_timing_cache_does_not_break_the_export(tmp_path: Path) -> None:
    shared = tmp_path / "export" / ".tensorrt" / "timing.cache"
    shared.parent.mkdir(parents=True)
    shared.write_bytes(b"\x00 not a TensorRT timing cache \xff" * 64)
    run = make_run_dir(tmp_path / "runs" / "dcgan", "dcgan")
    info = export_run(run, tmp_path / "export" / "a", fp16=True, max_batch=2).manifest["tensorrt"]
    assert info["built"] and info["timing_cache"]["reused"] is False
    assert (shared.parent / "timing.cache.corrupt").is_file() and shared.is_file()


def test_device_index_selects_the_device(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "runs" / "dcgan", "dcgan")
    out = export_run(run, tmp_path / "export" / "d", fp16=True, max_batch=2).out_dir
    with open_runtime("tensorrt", out, device_index=0) as rt:
        assert rt.device == "cuda:0"
    with pytest.raises(UserInputError, match="no CUDA device 64"):
        open_runtime("tensorrt", out, device_index=64)


def test_repo_ngc_serves_the_plan_only_for_its_tensorrt(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "runs" / "cyclegan", "cyclegan")
    out = export_run(run, tmp_path / "export" / "c", fp16=True, max_batch=2).out_dir
    built = json.loads((out / "manifest.json").read_text())["tensorrt"]["version"]
    repo = build_repository([out], tmp_path / "repo", flavour="ngc").root
    platform = C.read_config(repo / "c_generator").platform
    expected = "tensorrt_plan" if ngc.same_plan_version(built, ngc.get_release(None).tensorrt) else "onnxruntime_onnx"
    assert platform == expected


@pytest.mark.gpu
def test_cyclegan_256_batch8_speed_vs_torch_fp32(tmp_path: Path, record_property) -> None:
    """The issue's figure: TensorRT FP16 vs PyTorch FP32 eager on the GPU, CycleGAN (ngf 64) 256x256 batch 8."""
    import torch

    spec = get_model("cyclegan")
    run = make_run_dir(tmp_path / "runs" / "cyclegan-full", "cyclegan", **dataclasses.asdict(spec.config_cls()))
    out = export_run(run, tmp_path / "export" / "full", fp16=True, max_batch=8, opt_size=(256, 256)).out_dir
    feeds = example_inputs(spec.io(spec.config_cls()), 8, image_hw=(256, 256), seed=0)

    def per_call(fn, reps: int = 20) -> float:
        for _ in range(3):
            fn()
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - start) / reps

    from gandeploy.training.checkpoint import load_generator_and_key

    module = load_generator_and_key(run, None)[0].cuda().eval()
    x = torch.from_numpy(feeds["image"]).cuda()

    def torch_call() -> None:
        with torch.no_grad():
            module(x)
        torch.cuda.synchronize()

    with open_runtime("tensorrt", out) as rt:
        trt_s = per_call(lambda: rt.run(feeds))
    torch_s = per_call(torch_call)
    record_property("tensorrt_s", trt_s)
    record_property("torch_fp32_s", torch_s)
    record_property("speedup", torch_s / trt_s)
    assert torch_s / trt_s > 1.0


def test_int8_plan_is_built_from_the_qdq_onnx_and_judged_by_its_verdict(tmp_path: Path) -> None:
    """``--int8 --int8-symmetric``: model.int8.plan from the accepted model.int8.onnx (explicit quantization),
    accepted by the same distribution verdict, served by the table's tensorrt-int8 backend. Not yet run on a GPU."""
    from gandeploy.evaluation.parity.int8_verdict import judge_for

    run = make_run_dir(tmp_path / "runs" / "dcgan", "dcgan")
    out = export_run(run, tmp_path / "export" / "q", int8=True, int8_symmetric=True, int8_seeds=16, max_batch=8,
                     int8_judge=lambda p, io, c, r: judge_for(p, io, c, r.dataset, n=128)).out_dir
    manifest = json.loads((out / "manifest.json").read_text())
    engine = manifest["tensorrt_int8"]
    assert engine["built"], engine
    assert engine["source"] == "model.int8.onnx" and engine["strongly_typed"] and engine["verdict"]["passed"]
    assert manifest["files"]["model.int8.plan"]["format"] == "tensorrt-int8"
    assert manifest["parity"]["tensorrt-int8"]["passed"]
    spec = get_model("dcgan")
    feeds = example_inputs(spec.io(spec.config_cls(**TINY["dcgan"])), 5, seed=3)
    with open_runtime("tensorrt-int8", out) as rt:
        assert rt.precision == "int8" and rt.device == "cuda:0"
        assert np.isfinite(rt.run(feeds)["output"]).all()
