"""FP16 that never returns a black picture: planted overflow caught at export, layers kept in FP32 by measurement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from gandeploy.diffs import compare_float
from gandeploy.errors import UserInputError
from gandeploy.export.calibration import calibration_inputs
from gandeploy.export.fp16_safety import safe_fp16, scan_overflow
from gandeploy.export.onnx2fp16 import convert_fp16
from gandeploy.export.pipeline import export_run
from gandeploy.export.torch2onnx import export_onnx
from gandeploy.models.io import GeneratorIO

from export_helpers import make_run_dir
from sr_nets import RANGE, OverflowSR, TinySR, TinySRConfig, _io, register_sr  # noqa: F401 - register_sr is a fixture

GAIN = 1e5  # first feature map up to ~3e5: past FP16's 65504


def _fp16_arithmetic(path: Path, x: np.ndarray) -> np.ndarray:
    """The FP16 graph evaluated with real FP16 arithmetic (ONNX's reference evaluator computes in numpy
    float16; ONNX Runtime on x86 CPUs runs most FP16 kernels in FP32, hiding overflow)."""
    with np.errstate(all="ignore"):
        return ReferenceEvaluator(str(path)).run(None, {"image": x})[0]


@pytest.fixture(scope="module")
def overflow_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GeneratorIO, OverflowSR]:
    cfg = TinySRConfig(scale=2, gain=GAIN)
    torch.manual_seed(0)
    net = OverflowSR(cfg).eval()
    path = tmp_path_factory.mktemp("overflow") / "model.onnx"
    export_onnx(net, _io(cfg), path)
    return path, _io(cfg), net


def test_planted_overflow_is_caught_and_kept_in_fp32(overflow_onnx, tmp_path: Path) -> None:
    path, io, net = overflow_onnx
    calib = calibration_inputs(io, side=24)
    x = calib.feeds[0]["image"]
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()

    convert_fp16(path, tmp_path / "plain.onnx")  # the type-based block list alone: broken
    plain = _fp16_arithmetic(tmp_path / "plain.onnx", x)
    assert not np.isfinite(plain).all() or compare_float(ref, plain, RANGE).uint8_max > 2

    kept, largest = scan_overflow(onnx.load(str(path)), calib.feeds)
    assert largest > 65504 and kept
    result, safety = safe_fp16(path, tmp_path / "safe.onnx", calib.feeds, measured_on=calib.measured_on,
                               value_range=RANGE)
    assert result is not None and safety.passed and safety.fallback is None
    assert set(kept) == set(safety.overflow_nodes) <= set(result.kept_nodes)
    safe = _fp16_arithmetic(tmp_path / "safe.onnx", x)
    diff = compare_float(ref, safe, RANGE)
    assert np.isfinite(safe).all() and diff.uint8_max <= 2 and diff.max_abs <= 2e-2
    graph = onnx.load(str(tmp_path / "safe.onnx"))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer)  # still an FP16 model
    json.dumps(safety.to_json())  # goes into the manifest


@pytest.mark.usefixtures("register_sr")
def test_export_records_fp16_safety_and_receptive_field(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "runs" / "overflow", "overflow-sr", scale=2, gain=GAIN)
    result = export_run(run, tmp_path / "export", fp16=True, trt=False, min_size=(16, 16), opt_size=(32, 32),
                        max_size=(64, 64), max_batch=2)
    manifest = json.loads(result.manifest_path.read_text())
    fp16 = manifest["fp16"]
    assert fp16["kept_fp32_nodes"]["overflow"] and fp16["passed"] and fp16["max_fp32_activation"] > 65504
    assert "held-out photos" in fp16["calibration"]["measured_on"] and fp16["error"]["uint8_max"] <= 2
    assert manifest["parity"]["onnxruntime-fp16"]["passed"]
    field = manifest["receptive_field"]
    # 4 convolutions 3x3 (head, 3 body) + the tail's 3x3: at most 5 pixels; a sigmoid keeps it > 0
    assert 1 <= field["radius"] <= 5 and field["bounded"] and field["threshold_levels"] == 0.1
    card = (result.out_dir / "README.md").read_text()
    assert "Receptive field" in card and "kept in FP32 by measurement" in card


def test_calibration_dir_errors_name_the_flag(tmp_path: Path) -> None:
    io = _io(TinySRConfig())
    with pytest.raises(UserInputError, match="--calibration"):
        calibration_inputs(io, tmp_path / "missing")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UserInputError, match="broken.png"):
        calibration_inputs(io, tmp_path)


@pytest.mark.usefixtures("register_sr")
def test_cli_calibration_dir_feeds_fp16_check_and_receptive_field(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from PIL import Image

    from gandeploy.cli import main
    from gandeploy.export.calibration import shipped_photo

    pictures = tmp_path / "mine"
    pictures.mkdir()
    photo = shipped_photo("coffee")
    Image.fromarray(photo[:90, :70]).save(pictures / "a.png")
    Image.fromarray(photo[100:160, 200:300]).convert("L").save(pictures / "b.png")  # grey in: converted
    run = make_run_dir(tmp_path / "runs" / "sr", "tiny-sr", scale=2)
    out = tmp_path / "export"
    args = ["export", str(run), "--out", str(out), "--fp16", "--no-trt", "--max-batch", "1", "--min-size", "16x16",
            "--opt-size", "32x32", "--max-size", "64x64", "--calibration"]
    result = CliRunner().invoke(main, [*args, str(pictures)])
    assert result.exit_code == 0, result.output
    assert "Receptive field:" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert f"pictures in {pictures}" in manifest["fp16"]["calibration"]["measured_on"]
    assert manifest["fp16"]["calibration"]["inputs"] == 2 and manifest["receptive_field"]["measured_on"].startswith("a.png")
    bad = CliRunner().invoke(main, [*args, str(tmp_path / "nope"), "--force"])
    assert bad.exit_code != 0 and "--calibration" in bad.output and "Traceback" not in bad.output


def _spoiling(node: str, unless: str | None = None):
    """The real converter, then node ``node``'s weights scaled by 8 in the FP16 file unless ``unless`` (default:
    that node) was kept in FP32: a layer whose FP16 version is off, as a layer with bad FP16 rounding would be."""
    from onnx import numpy_helper

    def convert(src: Path, dst: Path, *, metadata=None, keep_nodes=()):
        result = convert_fp16(src, dst, metadata=metadata, keep_nodes=keep_nodes)
        if (unless or node) not in keep_nodes:
            model = onnx.load(str(dst))
            target = next(n for n in model.graph.node if n.name == node)
            weight = next(t for t in model.graph.initializer if t.name == target.input[1])
            weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * np.float16(8.0), weight.name))
            onnx.save(model, str(dst))
        return result

    return convert


def _convs(path: Path) -> list[str]:
    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]


def test_error_breach_bisects_to_the_layers_to_keep(tmp_path: Path) -> None:
    cfg = TinySRConfig(scale=2)
    torch.manual_seed(0)
    path = tmp_path / "model.onnx"
    export_onnx(TinySR(cfg).eval(), _io(cfg), path)
    calib = calibration_inputs(_io(cfg), side=16)
    second = _convs(path)[1]
    result, safety = safe_fp16(path, tmp_path / "fp16.onnx", calib.feeds, measured_on="test", value_range=RANGE,
                               convert=_spoiling(second))
    assert result is not None and safety.passed and safety.overflow_nodes == []
    assert safety.error_nodes[-1] == second and safety.conversions > 2  # the shortest prefix holding it
    assert second in result.kept_nodes


def test_fp16_falls_back_when_only_all_fp32_meets_the_tolerance(tmp_path: Path) -> None:
    cfg = TinySRConfig(scale=2)
    torch.manual_seed(0)
    path = tmp_path / "model.onnx"
    export_onnx(TinySR(cfg).eval(), _io(cfg), path)
    calib = calibration_inputs(_io(cfg), side=16)
    last = onnx.load(str(path)).graph.node[-1].name  # the final Sigmoid: only an all-FP32 graph keeps it
    result, safety = safe_fp16(path, tmp_path / "fp16.onnx", calib.feeds, measured_on="test", value_range=RANGE,
                               convert=_spoiling(_convs(path)[0], unless=last))
    assert result is None and "no FP16 model was written" in safety.fallback
    assert not (tmp_path / "fp16.onnx").exists()
