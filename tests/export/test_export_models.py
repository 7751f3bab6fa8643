"""Every registry model exports; ORT FP32 / FP16 match PyTorch; manifests, metadata and tampering."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from gandeploy.errors import ExportError
from gandeploy.export import validate
from gandeploy.manifest import EXPORT_FORMAT, verify_export
from gandeploy.export.onnx2fp16 import FP16_MAX_ABS, FP16_MAX_LEVELS
from gandeploy.export.pipeline import export_run
from gandeploy.export.torch2onnx import axis_name
from gandeploy.models.io import example_inputs, to_uint8
from gandeploy.registry import MODELS, get_model
from gandeploy.runtimes.base import open_runtime

from export_helpers import TINY, make_run_dir

MAX_BATCH = 4


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One FP16 export per registry model (shared by the tests of this module)."""
    root = tmp_path_factory.mktemp("exports")
    out = {}
    for model in MODELS:
        run = make_run_dir(root / "runs" / f"{model}-tiny", model)
        out[model] = export_run(run, root / "export" / model, fp16=True, max_batch=MAX_BATCH).out_dir
    return out


def _inputs(model: str, batch: int, hw: tuple[int, int] | None = None, seed: int = 7) -> dict[str, np.ndarray]:
    spec = get_model(model)
    cfg = spec.config_cls(**TINY[model])
    if spec.task() == "translation" and hw is None:
        hw = (cfg.image_size, cfg.image_size)
    return example_inputs(spec.io(cfg), batch, image_hw=hw, seed=seed)


def test_every_registry_model_has_a_tiny_config() -> None:
    assert set(MODELS) <= set(TINY), f"add tiny configs for {sorted(set(MODELS) - set(TINY))}"


@pytest.mark.slow  # the first of these builds the module's exports (about 20 s on 2 idle cores)
@pytest.mark.parametrize("model", sorted(MODELS))
def test_export_writes_checked_artifacts_and_manifest(exports: dict[str, Path], model: str) -> None:
    out = exports[model]
    manifest = json.loads((out / "manifest.json").read_text())
    spec = get_model(model)
    cfg = spec.config_cls(**TINY[model])
    io_spec = spec.io(cfg)
    assert manifest["format"] == EXPORT_FORMAT and manifest["model"] == model and manifest["task"] == spec.task()
    assert manifest["generator"] == spec.generator_keys[0]
    assert [t["name"] for t in manifest["inputs"]] == list(io_spec.input_names)
    assert [t["shape"] for t in manifest["outputs"]] == [list(t.shape) for t in io_spec.outputs]
    assert {"model.onnx", "model.fp16.onnx", "config.json"} <= set(manifest["files"])
    assert manifest["files"]["model.onnx"]["format"] == "onnxruntime"
    assert manifest["exporter"]["onnx"] in ("dynamo", "torchscript")
    for key in ("onnxruntime", "onnxruntime-fp16"):
        assert manifest["parity"][key]["passed"] is True
        assert {1, MAX_BATCH} <= set(manifest["parity"][key]["batch_sizes"])
    assert manifest["parity"]["onnxruntime"]["max_abs"] <= 1e-4
    assert ("image_sizes" in manifest) == (spec.task() == "translation")
    if not manifest["tensorrt"]["built"]:
        assert manifest["tensorrt"]["reason"]
    assert verify_export(out).name == model

    graph = onnx.load(str(out / "model.onnx"))
    onnx.checker.check_model(graph, full_check=True)
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (*graph.graph.input, *graph.graph.output)}
    # dynamic axes by the contract: 'N', 'H', 'W', and 'H*s' / 'W*s' on an output scale s times the input
    assert dims == {t.name: [axis_name(d, t.scale) if isinstance(d, str) else d for d in t.shape]
                    for t in (*io_spec.inputs, *io_spec.outputs)}
    meta = {p.key: p.value for p in graph.metadata_props}
    assert meta["gandeploy.model"] == model and meta["gandeploy.arch_hash"] == manifest["arch_hash"]
    assert meta["gandeploy.nz"] == str(getattr(cfg, "nz", 0))
    assert json.loads(meta["gandeploy.config"]) == json.loads((out / "config.json").read_text())["arch"]
    assert {"gandeploy.version", "gandeploy.torch_version", "gandeploy.onnx_version"} <= set(meta)
    fp16 = onnx.load(str(out / "model.fp16.onnx"))
    assert [i.type.tensor_type.elem_type for i in fp16.graph.output] == [onnx.TensorProto.FLOAT]
    if model == "cyclegan":  # InstanceNorm must stay FP32: it is wrapped by Casts, its input is float
        assert "InstanceNormalization" in manifest["fp16"]["kept_fp32"]
        assert any(n.op_type == "Cast" for n in fp16.graph.node)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_ort_fp32_matches_torch_at_batch_1_and_max(exports: dict[str, Path], model: str) -> None:
    with open_runtime("torch", exports[model]) as ref_rt, open_runtime("onnxruntime", exports[model]) as ort_rt:
        assert ort_rt.precision == "fp32" and ref_rt.key == "torch"
        refs = []
        for batch in (1, MAX_BATCH):
            feeds = _inputs(model, batch)
            ref = ref_rt.run(feeds)["output"]
            out = ort_rt.run(feeds)["output"]
            assert out.shape == ref.shape and out.shape[0] == batch
            assert float(np.abs(out - ref).max()) <= 1e-4
            refs.append(ref.reshape(-1))
        # The 1e-4 bound only means something if outputs vary far more than it: ask for 100x (over all cases,
        # since a batch-1 MLP output is only 2 numbers; an untrained tiny MLP spreads ~0.02-0.05).
        assert np.concatenate(refs).std() > 100 * 1e-4, "reference outputs are too flat for the check to mean anything"


@pytest.mark.parametrize("model", sorted(MODELS))
def test_fp16_within_documented_tolerance(exports: dict[str, Path], model: str) -> None:
    with open_runtime("torch", exports[model]) as ref_rt, open_runtime("onnxruntime-fp16", exports[model]) as rt:
        assert rt.precision == "fp16"
        for batch in (1, MAX_BATCH):
            feeds = _inputs(model, batch, seed=11)
            ref, out = ref_rt.run(feeds)["output"], rt.run(feeds)["output"]
            assert out.dtype == np.float32
            assert float(np.abs(out - ref).max()) <= FP16_MAX_ABS
            if out.ndim == 4:
                levels = np.abs(to_uint8(out).astype(int) - to_uint8(ref).astype(int)).max()
                assert levels <= FP16_MAX_LEVELS


def test_cyclegan_runs_at_non_square_200x320(exports: dict[str, Path]) -> None:
    out = exports["cyclegan"]
    feeds = _inputs("cyclegan", 2, hw=(200, 320))
    with open_runtime("torch", out) as ref_rt, open_runtime("onnxruntime", out) as ort32, \
            open_runtime("onnxruntime-fp16", out) as ort16:
        ref = ref_rt.run(feeds)["output"]
        assert ref.shape == (2, 3, 200, 320)
        assert float(np.abs(ort32.run(feeds)["output"] - ref).max()) <= 1e-4
        out16 = ort16.run(feeds)["output"]
        assert float(np.abs(out16 - ref).max()) <= FP16_MAX_ABS
        assert np.abs(to_uint8(out16).astype(int) - to_uint8(ref).astype(int)).max() <= FP16_MAX_LEVELS
    checked = json.loads((out / "manifest.json").read_text())["parity"]["onnxruntime"]["cases"]
    assert any(c.get("hw") and c["hw"][0] != c["hw"][1] for c in checked), "export checks a non-square size"


def test_tampered_or_missing_files_are_detected(exports: dict[str, Path], tmp_path: Path) -> None:
    copy = Path(shutil.copytree(exports["dcgan"], tmp_path / "dcgan"))
    assert verify_export(copy).model == "dcgan"
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ExportError, match="model.onnx"):
        verify_export(copy)
    shutil.copy(exports["dcgan"] / "model.onnx", copy / "model.onnx")
    (copy / "config.json").unlink()
    with pytest.raises(ExportError, match="config.json"):
        verify_export(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ExportError, match="manifest.json"):
        verify_export(copy)


def test_breach_fails_the_export_and_keeps_the_earlier_one(exports: dict[str, Path], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    out = Path(shutil.copytree(exports["cgan"], tmp_path / "cgan"))  # a complete earlier export
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    run = make_run_dir(tmp_path / "runs" / "cgan-tiny", "cgan")
    monkeypatch.setattr(validate, "FP32", validate.Tolerance(max_abs=-1.0))  # nothing can pass
    with pytest.raises(ExportError, match="beyond tolerance.*Nothing was written"):
        export_run(run, out, max_batch=2, force=True)  # force: the copy is another run's export
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched, byte for byte
    verify_export(out)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging dir left


def test_torchscript_fallback_keeps_the_contract(tmp_path: Path) -> None:
    """--opset 16 is below the dynamo exporter's range: the TorchScript exporter is used and recorded."""
    run = make_run_dir(tmp_path / "runs" / "cyc", "cyclegan")
    result = export_run(run, tmp_path / "cyc", max_batch=2, opset=16)
    manifest = result.manifest
    assert result.exporter == "torchscript" and manifest["exporter"]["opset"] == 16
    assert "opset" in manifest["exporter"]["fallback_reason"] and manifest["parity"]["onnxruntime"]["passed"]
    graph = onnx.load(str(result.out_dir / "model.onnx"))
    assert [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim] == ["N", 3, "H", "W"]
    assert {p.key: p.value for p in graph.metadata_props}["gandeploy.exporter"] == "torchscript"
    feeds = _inputs("cyclegan", 1, hw=(200, 320))
    with open_runtime("onnxruntime", result.out_dir) as rt, open_runtime("torch", result.out_dir) as ref:
        assert float(np.abs(rt.run(feeds)["output"] - ref.run(feeds)["output"]).max()) <= 1e-4
