"""``gandeploy import pix2pix-reference``: a reference U-Net saved the reference way loads by key and reproduces
the reference network in both test-time modes, in PyTorch, through ONNX Runtime FP32 (1e-4) and FP16."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.errors import CheckpointError
from gandeploy.export.onnx2fp16 import FP16_MAX_ABS
from gandeploy.training.checkpoint import load_generator
from gandeploy.training.pretrained_pix2pix import import_pix2pix_reference, unet_layout
from pix2pix_reference_nets import define_unet, sample_stats_forward, warm_up

SIZE = 128  # unet_128: 7 levels, 128x128 down to 1x1


def _saved(tmp_path, norm="batch", prefix=False, net_g="unet_128", ngf=4):
    ref = warm_up(define_unet(3, 3, ngf, net_g, norm=norm, use_dropout=True, seed=3, init_gain=0.1), SIZE if net_g == "unet_128"
                  else 256)
    sd = ref.state_dict()
    if prefix:  # a DataParallel wrapper saved as is
        sd = {f"module.{k}": v for k, v in sd.items()}
    path = tmp_path / "latest_net_G.pth"
    torch.save(sd, path)
    return ref, path


def _pictures(n=2, size=SIZE, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("prefix", [False, True])
def test_layout_is_read_from_the_keys(tmp_path, prefix):
    _, path = _saved(tmp_path, prefix=prefix)
    res = import_pix2pix_reference(path, tmp_path / "run")
    assert (res.arch.num_downs, res.arch.ngf, res.arch.norm, res.arch.input_nc) == (7, 4, "batch", 3)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["source"] == "imported:pix2pix-reference" and cfg["model"] == "pix2pix"
    ref = define_unet(1, 2, 2, "unet_256", norm="instance")
    assert unet_layout(ref.state_dict()) == {"input_nc": 1, "output_nc": 2, "ngf": 2, "num_downs": 8,
                                             "norm": "instance"}
    assert unet_layout({"main.0.weight": torch.zeros(4, 3, 4, 4)}) is None


def test_not_a_unet_is_a_clear_error(tmp_path):
    path = tmp_path / "x.pth"
    torch.save({"main.0.weight": torch.zeros(4, 3, 4, 4)}, path)
    with pytest.raises(CheckpointError, match="not a pix2pix reference UnetGenerator"):
        import_pix2pix_reference(path, tmp_path / "run")


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_running_stats_match_the_reference_in_eval_mode(tmp_path, norm):
    ref, path = _saved(tmp_path, norm=norm)
    import_pix2pix_reference(path, tmp_path / "run")
    g, _ = load_generator(tmp_path / "run")
    x = _pictures()
    with torch.no_grad():
        want, got = ref.eval()(x), g(x)
    assert float((want - got).abs().max()) <= 1e-5
    assert float(want.std()) > 0.05  # the check means something


def test_sample_stats_match_the_reference_test_py_without_eval(tmp_path):
    ref, path = _saved(tmp_path)
    import_pix2pix_reference(path, tmp_path / "run", norm_stats="sample")
    g, run = load_generator(tmp_path / "run")
    assert run.arch.norm_stats == "sample"
    x = _pictures(3)
    with torch.no_grad():
        got = g(x)
        running = ref.eval()(x)
    want = sample_stats_forward(ref, x)
    assert float((want - got).abs().max()) <= 1e-5
    assert float((want - running).abs().max()) > 1e-2  # the two modes really differ


@pytest.mark.slow
@pytest.mark.parametrize("norm_stats", ["running", "sample"])
def test_onnx_fp32_and_fp16_reproduce_the_reference(tmp_path, norm_stats):
    import onnxruntime as ort

    from gandeploy.export.pipeline import export_run

    ref, path = _saved(tmp_path)
    res = CliRunner().invoke(main, ["import", "pix2pix-reference", str(path), "--out", str(tmp_path / "run"),
                                    "--image-size", str(SIZE), "--norm-stats", norm_stats])
    assert res.exit_code == 0, res.output
    assert "dropout off" in res.output
    out = export_run(tmp_path / "run", tmp_path / "export", fp16=True, max_batch=2, min_size=(SIZE, SIZE),
                     opt_size=(SIZE, SIZE), max_size=(SIZE, 2 * SIZE)).out_dir
    x = _pictures(2, seed=5)
    wide = _pictures(1, seed=6).repeat(1, 1, 1, 2)[:, :, :, : 2 * SIZE]  # a 128x256 picture
    for pictures in (x, torch.cat([wide, -wide])):
        with torch.no_grad():
            want = (sample_stats_forward(ref, pictures) if norm_stats == "sample" else ref.eval()(pictures)).numpy()
        for file, tol in (("model.onnx", 1e-4), ("model.fp16.onnx", FP16_MAX_ABS)):
            session = ort.InferenceSession(str(out / file), providers=["CPUExecutionProvider"])
            got = session.run(None, {"image": pictures.numpy()})[0]
            err = float(np.abs(got - want).max())
            assert err <= tol, (file, norm_stats, err)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parity"]["onnxruntime"]["max_abs"] <= 1e-4
