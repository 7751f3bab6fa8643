"""Super-resolution export: the declared size rule and scale, pixel-unshuffle as SpaceToDepth, value ranges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from gandeploy.diffs import compare_float
from gandeploy.errors import UserInputError
from gandeploy.export.onnx_rewrite import max_rank, space_to_depth
from gandeploy.export.pipeline import export_run
from gandeploy.export.torch2onnx import export_onnx
from gandeploy.models.io import GeneratorIO, image_input, image_output

from export_helpers import make_run_dir
from sr_nets import TinySR, TinySRConfig, _io, register_sr  # noqa: F401 - register_sr is a fixture


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _ops(path: Path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.mark.parametrize(("unshuffle", "scale", "sizes"), [
    (2, 2, ((34, 50), (512, 768))),  # BasicSR's x2 RRDBNet: odd-but-even and large sizes
    (4, 1, ((36, 52), (64, 96))),  # its x1 model: pixel-unshuffle by 4
])
def test_pixel_unshuffle_exports_as_space_to_depth(tmp_path: Path, unshuffle: int, scale: int,
                                                   sizes: tuple[tuple[int, int], ...]) -> None:
    cfg = TinySRConfig(unshuffle=unshuffle, scale=scale)
    torch.manual_seed(0)
    net = TinySR(cfg).eval()
    info = export_onnx(net, _io(cfg), tmp_path / "model.onnx")
    assert info.space_to_depth == 1
    graph = onnx.load(str(tmp_path / "model.onnx"))
    ops = [n.op_type for n in graph.graph.node]
    assert "SpaceToDepth" in ops and "Transpose" not in ops and "Gather" not in ops  # reorder folded into the conv
    assert max_rank(graph) == 4  # no 6-D reshape left for TensorRT
    session = _session(tmp_path / "model.onnx")
    for h, w in sizes:
        x = np.random.default_rng(h).random((1, 3, h, w), dtype=np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        out = session.run(None, {"image": x})[0]
        assert out.shape == (1, 3, scale * h, scale * w)
        assert float(np.abs(out - ref).max()) < 1e-5


class UnshuffleOnly(nn.Module):
    """``F.pixel_unshuffle`` with no convolution after it: the channel reorder must become a Gather."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return nn.functional.pixel_unshuffle(image, 2) * 2.0  # [N, 4C, H/2, W/2]


def test_pixel_unshuffle_without_a_following_conv_is_reordered_by_gather(tmp_path: Path) -> None:
    io = GeneratorIO((image_input(3, multiple=2),), (image_output(12),))
    path = tmp_path / "model.onnx"
    export_onnx(UnshuffleOnly(), io, path)
    ops = _ops(path)
    assert "SpaceToDepth" in ops and "Gather" in ops and max_rank(onnx.load(str(path))) == 4
    x = np.random.default_rng(0).random((2, 3, 34, 50), dtype=np.float32)
    expected = nn.functional.pixel_unshuffle(torch.from_numpy(x), 2).numpy() * 2.0
    np.testing.assert_array_equal(_session(path).run(None, {"image": x})[0], expected)


def test_rewrite_leaves_graphs_without_unshuffle_alone() -> None:
    from onnx import helper

    node = helper.make_node("Transpose", ["x"], ["y"], perm=[0, 1, 3, 2])
    model = helper.make_model(helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1, 2, 3, 4])],
                                                [helper.make_tensor_value_info("y", 1, [1, 2, 4, 3])]))
    assert space_to_depth(model) == 0 and [n.op_type for n in model.graph.node] == ["Transpose"]


def test_compare_float_reads_the_declared_value_range() -> None:
    ref = np.full((1, 3, 4, 4), 102 / 255, np.float32)  # exactly level 102
    off = ref + np.float32(1 / 255)  # one uint8 level in (0, 1)
    diff = compare_float(ref, off, (0.0, 1.0))
    assert diff.uint8_max == 1
    assert diff.max_abs == pytest.approx(2 / 255, rel=1e-3)  # in tanh-space units: twice the raw difference
    assert compare_float(ref, off).uint8_max <= 1  # read as [-1, 1]: half a level


@pytest.mark.usefixtures("register_sr")
def test_export_run_follows_the_declared_size_rule_and_scale(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "runs" / "sr", "tiny-sr", unshuffle=2, scale=2)
    with pytest.raises(UserInputError, match=r"--min-size.*multiples of 2"):
        export_run(run, tmp_path / "bad", min_size=(33, 50))
    result = export_run(run, tmp_path / "export", min_size=(34, 50), opt_size=(34, 50), max_size=(64, 96),
                        max_batch=2)
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["image_sizes"] == {"min": [34, 50], "opt": [34, 50], "max": [64, 96]}
    assert manifest["output_sizes"] == {"min": [68, 100], "opt": [68, 100], "max": [128, 192]}
    assert manifest["exporter"]["space_to_depth"] == 1
    assert manifest["outputs"][0]["scale"] == 2 and manifest["inputs"][0]["value_range"] == [0.0, 1.0]
    cases = manifest["parity"]["onnxruntime"]["cases"]
    assert all(c["hw"][0] % 2 == 0 and c["hw"][1] % 2 == 0 for c in cases) and manifest["parity"]["onnxruntime"]["passed"]
    out = _session(result.out_dir / "model.onnx").run(None, {"image": np.zeros((1, 3, 34, 50), np.float32)})[0]
    assert out.shape == (1, 3, 68, 100)


@pytest.mark.parametrize("scale", [2, 1])
def test_rrdbnet_pixel_unshuffle_matches_pytorch_through_onnx_runtime(tmp_path: Path, scale: int) -> None:
    """The registry's RRDBNet (BasicSR keys, pixel-unshuffle by 4 / scale): SpaceToDepth, no 6-D tensor, equal to
    PyTorch at an odd-but-even size and a large one."""
    from gandeploy.models.esrgan import ESRGANConfig, RRDBNet, SPEC

    cfg = ESRGANConfig(scale=scale, num_feat=4, num_block=1, num_grow_ch=4, num_feat_d=4, image_size=16)
    torch.manual_seed(0)
    net = RRDBNet(cfg).eval()
    io = SPEC.io(cfg)
    assert export_onnx(net, io, tmp_path / "model.onnx").space_to_depth == 1
    assert "SpaceToDepth" in _ops(tmp_path / "model.onnx") and max_rank(onnx.load(str(tmp_path / "model.onnx"))) == 4
    session = _session(tmp_path / "model.onnx")
    k = io.size_multiple
    for h, w in ((34 // k * k + (k if 34 % k else 0), 50 // k * k + (k if 50 % k else 0)), (512, 768)):
        x = np.random.default_rng(h).random((1, 3, h, w), dtype=np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        out = session.run(None, {"image": x})[0]
        assert out.shape == (1, 3, scale * h, scale * w)
        assert float(np.abs(out - ref).max()) < 1e-4
