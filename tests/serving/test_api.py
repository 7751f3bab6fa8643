"""``gandeploy.load``: the same call gives the same pixels on every backend.

A tiny CGAN (sampling) and a tiny CycleGAN (translation) from ``conftest.py``: their run dir (PyTorch), their
export on torch and onnxruntime, and the served model on the real tritonserver (gRPC and HTTP). Nothing is
mocked. The served model runs the export's ONNX on ONNX Runtime, so it equals the in-process onnxruntime answer
exactly; PyTorch and ONNX Runtime differ by float rounding, at most one uint8 level.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gandeploy
from gandeploy.config import RunConfig, save_run_config
from gandeploy.errors import UserInputError
from gandeploy.manifest import load_manifest
from gandeploy.registry import get_model
from gandeploy.training.checkpoint import save_checkpoint

pytestmark = pytest.mark.e2e


def run_dir_of(export: Path) -> Path:
    return Path(load_manifest(export).data["source_run"])


def loaded(exports: dict[str, Path], server: object, name: str) -> dict[str, gandeploy.Generator]:
    """The same generator five ways: run dir, export on torch / onnxruntime, served over gRPC and HTTP."""
    return {"run": gandeploy.load(run_dir_of(exports[name])),
            "torch": gandeploy.load(exports[name], backend="torch"),
            "onnxruntime": gandeploy.load(exports[name], backend="onnxruntime"),
            "grpc": gandeploy.load(f"triton://{server.grpc_url}/{name}"),  # type: ignore[attr-defined]
            "http": gandeploy.load(name, url=server.http_url, protocol="http")}  # type: ignore[attr-defined]


def within_one_level(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    assert int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) <= 1


def test_sampling_same_pixels_on_every_backend(exports: dict[str, Path], server: object) -> None:
    gens = loaded(exports, server, "cgan-tiny")
    call = {"seeds": range(5), "label": [0, 1, 2, 0, 1], "truncation": 0.7}
    out = {key: g.sample(**call) for key, g in gens.items()}
    assert out["run"].shape[0] == 5 and out["run"].dtype == np.uint8 and out["run"].ndim == 4
    np.testing.assert_array_equal(out["run"], out["torch"])  # the run dir is the export's PyTorch reference
    np.testing.assert_array_equal(out["grpc"], out["onnxruntime"])  # the server runs the same ONNX
    np.testing.assert_array_equal(out["http"], out["onnxruntime"])
    within_one_level(out["torch"], out["onnxruntime"])
    assert not np.array_equal(out["grpc"][0], out["grpc"][1])  # different seeds, different pictures
    # the default fill (label = seed % classes) is the server's too
    np.testing.assert_array_equal(gens["grpc"].sample([3, 4]), gens["onnxruntime"].sample([3, 4]))
    # interpolation: the served raw generator and the in-process runtime get the same slerped latents
    strip = {key: gens[key].interpolate(0, 1, 4, label=2) for key in ("grpc", "onnxruntime", "torch")}
    assert strip["grpc"].shape[0] == 4
    np.testing.assert_array_equal(strip["grpc"], strip["onnxruntime"])
    within_one_level(strip["torch"], strip["onnxruntime"])
    np.testing.assert_array_equal(strip["onnxruntime"][0], gens["onnxruntime"].sample(0, label=2)[0])
    info = gens["onnxruntime"].info
    assert info["backend"] == "onnxruntime" and info["task"] == "sampling" and info["classes"]
    assert gens["grpc"].info["backend"] == "triton"


def test_translation_same_pixels_on_every_backend(exports: dict[str, Path], server: object) -> None:
    gens = loaded(exports, server, "cyclegan-tiny")
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(24, 20, 3), dtype=np.uint8)  # H, W not the export's 32: padded and cropped
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    kinds = [array, Image.fromarray(array), buffer.getvalue()]
    out = {key: [np.asarray(p) for p in g.translate(kinds)] for key, g in gens.items()}
    for key, pictures in out.items():
        assert [p.shape for p in pictures] == [(24, 20, 3)] * 3, key
        assert all(np.array_equal(p, pictures[0]) for p in pictures), f"{key}: array, PIL and PNG differ"
    np.testing.assert_array_equal(out["run"][0], out["torch"][0])
    np.testing.assert_array_equal(out["grpc"][0], out["onnxruntime"][0])
    np.testing.assert_array_equal(out["http"][0], out["onnxruntime"][0])
    within_one_level(out["torch"][0], out["onnxruntime"][0])
    assert gens["grpc"].info["scale"] == 1


def test_methods_follow_the_contract(exports: dict[str, Path], server: object) -> None:
    cgan = gandeploy.load(exports["cgan-tiny"], backend="onnxruntime")
    cyclegan = gandeploy.load(f"triton://{server.grpc_url}/cyclegan-tiny")  # type: ignore[attr-defined]
    with pytest.raises(UserInputError, match=r"translate\(images\)"):
        cyclegan.sample([0])
    with pytest.raises(UserInputError, match=r"sample\(seeds\)"):
        cgan.translate([np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(UserInputError, match="scale is 1"):
        cyclegan.upscale([np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(UserInputError, match="uint8"):
        cyclegan.translate([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(UserInputError, match="--code does not apply|code"):
        cgan.sample([0], code=1)
    with pytest.raises(UserInputError, match="neither a run dir"):
        gandeploy.load(exports["cgan-tiny"].parent / "missing")
    with pytest.raises(UserInputError, match="backend 'torch' only"):
        gandeploy.load(run_dir_of(exports["cgan-tiny"]), backend="onnxruntime")
    with pytest.raises(UserInputError, match="triton://HOST:PORT/NAME"):
        gandeploy.load("triton://127.0.0.1:8001")
    cgan.close()
    with pytest.raises(UserInputError, match="closed"):
        cgan.sample([0])


def test_upscale_is_scale_times_the_input(tmp_path: Path) -> None:
    """A tiny SRVGG x4 export: ``upscale`` answers pictures 4x their size, run dir and export alike."""
    spec = get_model("srvgg")
    arch = spec.config_cls(**spec.tiny)
    torch.manual_seed(0)
    generator = spec.build_generator(arch)
    run = tmp_path / "runs" / "srvgg-x4"
    save_checkpoint(run / "checkpoints" / "latest.pt", {"step": 0, "epoch": 0, "models": {
        k: generator.state_dict() for k in spec.generator_keys}, "optimizers": {}, "extra": {}})
    save_run_config(run, RunConfig(model="srvgg", arch=arch, source="imported:test"))
    export = gandeploy.export(run, tmp_path / "export" / "srvgg-x4", max_batch=4, min_size=(8, 8),
                              opt_size=(16, 16), max_size=(32, 32)).out_dir
    picture = Image.fromarray(np.random.default_rng(1).integers(0, 256, (12, 10, 3), dtype=np.uint8))
    with gandeploy.load(export) as g:
        assert g.info["backend"] == "onnxruntime" and g.info["scale"] == 4
        (up,) = g.upscale(picture)
    assert up.size == (40, 48)
    (ref,) = gandeploy.load(run).upscale([picture])
    within_one_level(np.asarray(ref), np.asarray(up))
