"""INT8 export (onnx2int8.py + evaluation/parity/int8_verdict.py): accepted by distribution / PSNR, or refused with a reason.

Registry-wide: a tiny model of every family is exported with ``--int8``; it passes, or is refused with a reason
and writes no model.int8.onnx. A planted layer that breaks INT8 (one activation channel 10^4 times the others,
read by nothing: FP32 is unchanged, but per-tensor 8-bit steps of 40 erase every other channel) must be kept
float by the error search, or INT8 refused — never a silently worse model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from gandeploy.evaluation.parity.int8_verdict import judge_for, psnr
from gandeploy.export.onnx2int8 import always_float, name_nodes, quantize_accepted, quantize_int8
from gandeploy.export.pipeline import export_run
from gandeploy.registry import MODELS

from export_helpers import make_run_dir

N = 128  # judged seeds: enough for KID's std on tiny models, seconds on a CPU


def _judge(fp32_path, io, contract, run):  # type: ignore[no-untyped-def]
    return judge_for(fp32_path, io, contract, run.dataset, n=N)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_int8_export_passes_or_is_refused_with_reason(tmp_path: Path, model: str) -> None:
    run = make_run_dir(tmp_path / "run", model)
    result = export_run(run, tmp_path / "exp", int8=True, int8_judge=_judge, int8_seeds=16)
    q = result.manifest["int8"]
    path = tmp_path / "exp" / "model.int8.onnx"
    assert q["tries"], q
    if q["written"]:
        assert path.is_file() and "model.int8.onnx" in result.manifest["files"]
        assert q["verdict"]["passed"] is True
        io = MODELS[model].io(MODELS[model].config_cls(**MODELS[model].tiny))
        assert q["verdict"]["test"] == ("psnr" if io.image_input is not None else "distribution")
        graph = name_nodes(onnx.load(str(tmp_path / "exp" / "model.onnx"))).graph
        must = set(always_float(name_nodes(onnx.load(str(tmp_path / "exp" / "model.onnx")))))
        outputs = {o.name for o in graph.output}
        assert {n.name for n in graph.node if set(n.output) & outputs} <= must  # the output node stays float
        assert {n.name for n in graph.node if n.op_type in ("InstanceNormalization", "Softmax")} <= must
        assert must <= {k["node"] for k in q["kept_float"]}
    else:
        assert not path.exists() and "model.int8.onnx" not in result.manifest["files"]
        assert q["reason"] and "refused" in q["reason"]
    manifest = json.loads((tmp_path / "exp" / "manifest.json").read_text())
    assert manifest["int8"]["written"] == q["written"]
    assert "INT8" in (tmp_path / "exp" / "README.md").read_text()


def _planted_run(tmp_path: Path) -> Path:
    """A tiny DCGAN whose first ReLU output has one channel at 10^4, zeroed by every weight that reads it."""
    run = make_run_dir(tmp_path / "run", "dcgan")
    ckpt = run / "checkpoints" / "latest.pt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    g = state["models"]["G"]
    g["main.1.bias"][0] = 1e4  # BatchNorm beta: channel 0 after the ReLU is ~10^4
    g["main.3.weight"][0] = 0.0  # the next ConvTranspose ignores channel 0: FP32 output unchanged
    torch.save(state, ckpt)
    return run


def test_planted_outlier_is_kept_float_or_refused(tmp_path: Path) -> None:
    run = _planted_run(tmp_path)
    result = export_run(run, tmp_path / "exp", int8=True, int8_judge=_judge, int8_seeds=16)
    q = result.manifest["int8"]
    assert q["tries"][0]["passed"] is False, "plain INT8 of the planted model must fail the distribution test"
    if q["written"]:
        assert q["kept_float_by_search"], "passed only by keeping the planted layer float"
        assert len(q["tries"]) > 1 and q["verdict"]["passed"]
    else:
        assert "unpaired KID" in q["reason"] and not (tmp_path / "exp" / "model.int8.onnx").exists()
    assert (tmp_path / "exp" / "model.onnx").is_file(), "the FP32 export stands either way"


def test_refusal_writes_nothing(tmp_path: Path) -> None:
    """A judge that never passes: no model.int8.onnx, no stray temporary file, the reason is the judge's."""
    from gandeploy.export.onnx2int8 import Int8Verdict

    run = make_run_dir(tmp_path / "run", "dcgan")
    export_run(run, tmp_path / "exp")
    fp32 = tmp_path / "exp" / "model.onnx"
    feeds = [{"z": np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)}]
    res = quantize_accepted(fp32, tmp_path / "exp" / "model.int8.onnx", feeds,
                            lambda p: Int8Verdict(False, "distribution", {}, "planted refusal"), max_tries=2)
    assert not res.written and "planted refusal" in (res.reason or "")
    assert sorted(p.name for p in (tmp_path / "exp").glob("*.onnx")) == ["model.onnx"]


def test_psnr_verdict_figures() -> None:
    a = np.zeros((1, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] = 255
    assert psnr(a, a) == float("inf")
    assert abs(psnr(a, b) - 10 * np.log10(48)) < 1e-9


def test_quantized_model_is_qdq(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", "dcgan")
    export_run(run, tmp_path / "exp")
    feeds = [{"z": np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)}]
    quantize_int8(tmp_path / "exp" / "model.onnx", tmp_path / "q.onnx", feeds)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_cli_int8_calibration_seeds_and_bad_value(tmp_path: Path) -> None:
    """``export --int8 --calibration N``: N calibration seeds, recorded; N = 0 is a one-line error naming the flag."""
    from click.testing import CliRunner

    from gandeploy.cli import main

    run = make_run_dir(tmp_path / "run", "mlp")
    res = CliRunner().invoke(main, ["export", str(run), "--out", str(tmp_path / "exp"), "--int8",
                                    "--calibration", "8"])
    assert res.exit_code == 0, res.output
    q = json.loads((tmp_path / "exp" / "manifest.json").read_text())["int8"]
    assert q["calibrated_on"] == "seeds 0..7"
    assert ("INT8: accepted" in res.output) == q["written"]
    bad = CliRunner().invoke(main, ["export", str(run), "--out", str(tmp_path / "exp2"), "--int8",
                                    "--calibration", "0"])
    assert bad.exit_code != 0 and "--calibration" in bad.output and "Traceback" not in bad.output


def test_quantizer_failure_refuses_int8_not_the_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gandeploy.export.onnx2int8 as step

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("planted: unsupported op")

    monkeypatch.setattr(step, "quantize_int8", broken)
    run = make_run_dir(tmp_path / "run", "mlp")
    result = export_run(run, tmp_path / "exp", int8=True, int8_judge=_judge, int8_seeds=8)
    q = result.manifest["int8"]
    assert not q["written"] and "could not quantize" in q["reason"] and "planted" in q["reason"]
    assert (tmp_path / "exp" / "model.onnx").is_file() and not (tmp_path / "exp" / "model.int8.onnx").exists()


def test_bench_names_the_reason_of_a_refused_int8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bench`` (and ``make bench``) on an export whose INT8 was refused says why, not only that the file is missing."""
    import gandeploy.export.onnx2int8 as step
    from gandeploy.evaluation.bench.bench import run_bench

    monkeypatch.setattr(step, "quantize_int8", lambda *_a, **_k: (_ for _ in ()).throw(RuntimeError("planted op")))
    run = make_run_dir(tmp_path / "run", "mlp")
    export_run(run, tmp_path / "exp", int8=True, int8_judge=_judge, int8_seeds=8)
    report = run_bench(tmp_path / "exp", ["onnxruntime-int8"], batch_sizes=(1,), warmup=1, reps=1)
    assert "planted op" in report.skipped["onnxruntime-int8"], report.skipped
