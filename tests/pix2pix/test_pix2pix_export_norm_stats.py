"""``gandeploy export RUN --norm-stats running|sample`` (issue 24: the test-time choice at export too): the same
run exported in either mode reproduces the reference network in the matching BatchNorm mode through ONNX Runtime
within 1e-4, the mode is recorded in manifest.json, config.json and the model card, and models without BatchNorm
are refused with one clear line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.errors import UserInputError
from gandeploy.export.pipeline import export_run
from gandeploy.models.common import with_norm_stats
from gandeploy.registry import get_model
from gandeploy.training.pretrained_pix2pix import import_pix2pix_reference
from pix2pix_reference_nets import define_unet, sample_stats_forward, warm_up

SIZE = 128  # unet_128


def _imported(tmp_path, norm="batch"):
    ref = warm_up(define_unet(3, 3, 4, "unet_128", norm=norm, use_dropout=True, seed=7, init_gain=0.1), SIZE)
    path = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), path)
    import_pix2pix_reference(path, tmp_path / "run", image_size=SIZE)  # imported in the default mode: running
    return ref


def _ort(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x.numpy()})[0]


def test_export_in_both_modes_reproduces_the_reference(tmp_path):
    ref = _imported(tmp_path)
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(11)) * 2 - 1
    with torch.no_grad():
        want = {"running": ref.eval()(x).numpy(), "sample": sample_stats_forward(ref, x).numpy()}
    assert float(np.abs(want["running"] - want["sample"]).max()) > 1e-2  # the two modes really differ
    sizes = {"min_size": (SIZE, SIZE), "opt_size": (SIZE, SIZE), "max_size": (SIZE, SIZE)}
    out = {"running": export_run(tmp_path / "run", tmp_path / "exp-running", max_batch=2, **sizes).out_dir}
    res = CliRunner().invoke(main, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "exp-sample"),
                                    "--norm-stats", "sample", "--max-batch", "2", "--min-size", f"{SIZE}x{SIZE}",
                                    "--opt-size", f"{SIZE}x{SIZE}", "--max-size", f"{SIZE}x{SIZE}"])
    assert res.exit_code == 0, res.output
    assert "Test-time BatchNorm: sample" in res.output
    out["sample"] = tmp_path / "exp-sample"
    for mode, export_dir in out.items():
        got = _ort(export_dir / "model.onnx", x)
        err = float(np.abs(got - want[mode]).max())
        assert err <= 1e-4, (mode, err)
        manifest = json.loads((export_dir / "manifest.json").read_text())
        assert manifest["norm_stats"]["mode"] == mode
        assert json.loads((export_dir / "config.json").read_text())["arch"]["norm_stats"] == mode
        assert f"Test-time BatchNorm: {mode}" in (export_dir / "README.md").read_text()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["arch"]["norm_stats"] == "running"  # run kept


def test_models_without_batchnorm_are_refused(tmp_path):
    _imported(tmp_path, norm="instance")
    res = CliRunner().invoke(main, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "exp"),
                                    "--norm-stats", "sample"])
    assert res.exit_code != 0
    assert "--norm-stats" in res.output and "no BatchNorm layer" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "exp").exists()  # refused before anything was written
    dcgan = get_model("dcgan")
    with pytest.raises(UserInputError, match="--norm-stats: DCGANConfig has no BatchNorm test-time choice"):
        with_norm_stats(dcgan.config_cls(), "sample", dcgan.build_generator)
