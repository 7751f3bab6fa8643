"""The runtime interface: dispatch through FORMATS, describe(), input checks, clean 'unavailable' errors."""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from gandeploy.config import RunConfig, save_run_config
from gandeploy.errors import BackendUnavailable, UserInputError
from gandeploy.export.pipeline import export_run
from gandeploy.formats import FORMATS
from gandeploy.models.cgan import CGANConfig
from gandeploy.models.io import example_inputs
from gandeploy.registry import get_model
from gandeploy.runtimes.base import Runtime, open_runtime
from gandeploy.runtimes.tensorrt_rt import unavailable_reason
from gandeploy.training.checkpoint import save_checkpoint

CFG = CGANConfig(nz=8, ngf=4, ndf=4, channels=1, image_size=32, num_classes=3, embed_dim=4)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CGAN run dir exported with --fp16 (PyTorch default init: outputs spread over [-1, 1])."""
    root = tmp_path_factory.mktemp("rt")
    run = root / "runs" / "cgan"
    torch.manual_seed(0)
    g = get_model("cgan").build_generator(CFG)
    for m in g.modules():
        if m is not g and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    run.mkdir(parents=True)
    save_run_config(run, RunConfig(model="cgan", arch=CFG, class_names=("a", "b", "c")))
    save_checkpoint(run / "checkpoints" / "latest.pt", {"step": 1, "epoch": 1, "models": {"G": g.state_dict()}})
    return export_run(run, root / "export" / "cgan", fp16=True, max_batch=4).out_dir


def _feeds(batch: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    return example_inputs(get_model("cgan").io(CFG), batch, seed=seed)


@pytest.mark.parametrize("key", ["torch", "onnxruntime", "onnxruntime-fp16"])
def test_open_runtime_dispatches_and_describes(export_dir: Path, key: str) -> None:
    with open_runtime(key, export_dir) as rt:
        assert isinstance(rt, Runtime)
        assert (rt.key, rt.precision) == (key, FORMATS[key].precision)
        assert rt.device == "cpu"
        info = rt.describe()
        assert info["key"] == key and [t["name"] for t in info["inputs"]] == ["z", "label"]
        out = rt.run(_feeds())
        assert set(out) == {"output"} and out["output"].shape == (3, 1, 32, 32)
        assert out["output"].dtype == np.float32 and np.abs(out["output"]).max() <= 1.0


def test_runtimes_agree_and_labels_matter(export_dir: Path) -> None:
    feeds = _feeds(4, seed=3)
    with open_runtime("torch", export_dir) as ref_rt, open_runtime("onnxruntime", export_dir) as ort:
        ref = ref_rt.run(feeds)["output"]
        assert np.abs(ort.run(feeds)["output"] - ref).max() <= 1e-4
        other = dict(feeds, label=(feeds["label"] + 1) % CFG.num_classes)
        assert np.abs(ort.run(other)["output"] - ref).max() > 1e-3  # the label input is wired through


def test_torch_runtime_from_run_dir_equals_from_export_dir(export_dir: Path) -> None:
    import json

    source = Path(json.loads((export_dir / "manifest.json").read_text())["source_run"])
    feeds = _feeds(2)
    with open_runtime("torch", source) as a, open_runtime("torch", export_dir) as b:
        np.testing.assert_array_equal(a.run(feeds)["output"], b.run(feeds)["output"])


def test_input_checks_name_the_input(export_dir: Path) -> None:
    with open_runtime("onnxruntime", export_dir) as rt:
        feeds = _feeds(2)
        with pytest.raises(UserInputError, match="label"):
            rt.run({"z": feeds["z"]})
        with pytest.raises(UserInputError, match="label"):
            rt.run({"z": feeds["z"], "label": feeds["label"].astype(np.float32) + 0.5})
        with pytest.raises(UserInputError, match="'z' axis 1 must be 8"):
            rt.run({"z": np.zeros((2, 5), np.float32), "label": feeds["label"]})
        with pytest.raises(UserInputError, match="batch"):
            rt.run({"z": feeds["z"], "label": np.zeros(3, np.int64)})
        out64 = rt.run({"z": feeds["z"].astype(np.float64), "label": feeds["label"].astype(np.int32)})
        np.testing.assert_allclose(out64["output"], rt.run(feeds)["output"], atol=1e-6)


def test_unknown_key_lists_choices(export_dir: Path) -> None:
    with pytest.raises(UserInputError, match="onnxruntime"):
        open_runtime("onnx-runtime", export_dir)


def test_missing_artifact_names_the_file(export_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(export_dir, tmp_path / "copy"))
    (copy / "model.fp16.onnx").unlink()
    with pytest.raises(UserInputError, match=r"model\.fp16\.onnx.*--fp16"):
        open_runtime("onnxruntime-fp16", copy)
    with pytest.raises(UserInputError, match="does not exist"):
        open_runtime("onnxruntime", tmp_path / "nowhere")


def test_torch_runtime_from_the_export_dir_alone(export_dir: Path, tmp_path: Path) -> None:
    """The export dir is self-contained: config.json + generator.pt rebuild the reference without the run dir."""
    copy = Path(shutil.copytree(export_dir, tmp_path / "copy"))
    manifest = (copy / "manifest.json").read_text().replace('"source_run": "', '"source_run": "/gone/')
    (copy / "manifest.json").write_text(manifest)
    feeds = _feeds(3)
    with open_runtime("torch", copy) as moved, open_runtime("torch", export_dir) as original:
        assert np.array_equal(moved.run(feeds)["output"], original.run(feeds)["output"])
    (copy / "generator.pt").unlink()  # an export of an older release: the source run is needed and named
    with pytest.raises(UserInputError, match="run_dir"):
        open_runtime("torch", copy)


@pytest.mark.skipif(unavailable_reason() is None, reason="TensorRT and a GPU are present here")
def test_tensorrt_unavailable_is_a_clean_error(export_dir: Path) -> None:
    with pytest.raises(BackendUnavailable, match="TensorRT"):
        open_runtime("tensorrt", export_dir)


def test_onnxruntime_devices(export_dir: Path) -> None:
    import onnxruntime as ort

    with open_runtime("onnxruntime", export_dir, device="auto", threads=1) as rt:
        assert rt.describe()["providers"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider"):
            open_runtime("onnxruntime", export_dir, device="cuda")


def test_dispatch_goes_through_the_format_table(export_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'triton' dispatches to gandeploy.runtimes.triton_rt.open_runtime(key, Path, **options)."""
    seen = {}

    def fake_open(key: str, path: Path, **options: object) -> Runtime:
        seen.update(key=key, path=path, options=options)
        return open_runtime("onnxruntime", path)

    module = types.ModuleType("gandeploy.runtimes.triton_rt")
    module.open_runtime = fake_open  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gandeploy.runtimes.triton_rt", module)
    with open_runtime("triton-ensemble", str(export_dir), url="127.0.0.1:1") as rt:
        assert rt.key == "onnxruntime"
    assert seen == {"key": "triton-ensemble", "path": export_dir, "options": {"url": "127.0.0.1:1"}}
