"""The TensorRT INT8 engine (``tensorrt-int8``, ``model.int8.plan``) without TensorRT: the format table and every
backend list carry it, an ``--int8`` export records why it was skipped, ``--backend tensorrt-int8`` names that
reason in one line, the loader chain is the strongly typed one with the export's profile, the engine is accepted
by the judge that accepted ``model.int8.onnx``, and ``repo --flavour ngc --precision int8`` plans the plan.

The build itself needs TensorRT and a GPU (test_export_tensorrt.py, marked ``tensorrt``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from export_helpers import make_run_dir

from gandeploy.cli import main
from gandeploy.errors import UserInputError
from gandeploy.evaluation.parity.int8_verdict import judge_for
from gandeploy.export import tensorrt_builds
from gandeploy.export.onnx2trt import engine_loader, qdq_problems
from gandeploy.export.pipeline import export_run
from gandeploy.formats import FORMATS
from gandeploy.manifest import MANIFEST_FILE, file_entry, load_manifest, unbuilt_reason
from gandeploy.runtimes.base import artifact_path
from gandeploy.runtimes.onnxruntime_rt import OnnxRuntimeRuntime
from gandeploy.runtimes.tensorrt_rt import unavailable_reason
from gandeploy.serving import configs as C
from gandeploy.serving import ngc
from gandeploy.serving.local import LOCAL_BACKENDS
from gandeploy.serving.repository import build_repository

KEY = "tensorrt-int8"


def _judge(p: Path, io: object, c: object, r: object) -> object:
    return judge_for(p, io, c, r.dataset, n=128)  # type: ignore[arg-type,attr-defined]


def _export(root: Path, **options: object) -> Path:
    run = make_run_dir(root / "run", "dcgan")
    export_run(run, root / "exp", int8=True, int8_seeds=16, int8_judge=_judge, max_batch=8, **options)  # type: ignore[arg-type]
    assert (root / "exp" / "model.int8.onnx").is_file()
    return root / "exp"


@pytest.fixture(scope="module")
def symmetric(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DCGAN with an accepted INT8 model in TensorRT's form (int8, zero point 0, float biases)."""
    return _export(tmp_path_factory.mktemp("sym"), int8_symmetric=True)


@pytest.fixture()
def no_tensorrt() -> str:
    reason = unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT and a GPU are present here")
    return reason


def test_table_row_and_every_backend_list() -> None:
    fmt = FORMATS[KEY]
    assert (fmt.file, fmt.runtime, fmt.device, fmt.precision, fmt.record) == (
        "model.int8.plan", "tensorrt", "cuda", "int8", "tensorrt_int8")
    from gandeploy.cli.evaluate import BACKEND_CHOICES
    from gandeploy.evaluation.bench.bench import DEFAULT_BACKENDS as BENCH
    from gandeploy.evaluation.parity.parity import DEFAULT_BACKENDS as PARITY

    assert KEY in LOCAL_BACKENDS and KEY in BENCH and KEY in PARITY and KEY in BACKEND_CHOICES
    runner = CliRunner()
    for command in (["sample", "--help"], ["translate", "--help"], ["bench", "--help"], ["parity", "--help"]):
        result = runner.invoke(main, command, terminal_width=400)
        assert result.exit_code == 0 and KEY in result.output, (command, result.output)


def test_int8_export_records_why_the_engine_was_skipped(symmetric: Path, no_tensorrt: str) -> None:
    manifest = json.loads((symmetric / MANIFEST_FILE).read_text())
    engine = manifest["tensorrt_int8"]
    assert engine["built"] is False and engine["reason"] == no_tensorrt
    assert engine["qdq"] == {"tensorrt_compatible": True, "problems": []}  # TensorRT would take this ONNX
    assert "model.int8.plan" not in manifest["files"] and KEY not in manifest["parity"]
    assert manifest["int8"]["activations"] == "int8 symmetric (MinMax)" and manifest["int8"]["bias"] == "float"
    assert unbuilt_reason(manifest, KEY) == no_tensorrt
    assert f"`model.int8.plan`): not built ({no_tensorrt})" in (symmetric / "README.md").read_text()


def test_default_int8_is_refused_by_tensorrts_rules_with_the_flag_to_fix_it(tmp_path: Path) -> None:
    """The default uint8 asymmetric QDQ (int32 biases) breaks TensorRT's symmetric INT8: the manifest says so even
    where TensorRT is absent, and on a GPU the export would refuse the engine naming --int8-symmetric."""
    exp = _export(tmp_path)
    problems = qdq_problems(exp / "model.int8.onnx")
    assert any("uint8" in p for p in problems) and any("zero point" in p for p in problems)
    assert any("int32" in p for p in problems)  # quantized biases: onnx/onnx-tensorrt#850
    manifest = json.loads((exp / MANIFEST_FILE).read_text())
    assert manifest["tensorrt_int8"]["qdq"] == {"tensorrt_compatible": False, "problems": problems}
    assert qdq_problems(exp / "model.onnx") == []

    from gandeploy.export.onnx2int8 import Int8Result

    accepted = Int8Result(True, exp / "model.int8.onnx", [], [], [], None)
    gate = tensorrt_builds.int8_gate(accepted, None, None)  # what a TensorRT machine would record
    assert gate is not None and not gate["built"]
    assert "explicit-quantization rules" in gate["reason"] and "--int8-symmetric" in gate["reason"]
    assert tensorrt_builds.int8_gate(accepted, False, None)["reason"] == "disabled with --no-trt"  # type: ignore[index]
    refused = Int8Result(False, None, [], [], [], None, reason="KID moved")
    assert tensorrt_builds.int8_gate(refused, None, None)["reason"] == "INT8 refused: KID moved"  # type: ignore[index]


def test_backend_tensorrt_int8_names_the_reason_in_one_line(symmetric: Path, no_tensorrt: str,
                                                            tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["sample", "x", "--export", str(symmetric), "--backend", KEY, "--n", "2",
                                       "--out", str(tmp_path / "o.png")])
    assert result.exit_code == 1 and no_tensorrt in result.output, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    from gandeploy.evaluation.parity.parity import run_parity

    report = run_parity(symmetric, ["onnxruntime-int8", KEY])
    assert report.skipped[KEY] == f"not built at export: {no_tensorrt}"
    assert report.passed and {r.backend for r in report.rows} == {"onnxruntime-int8"}


def test_missing_plan_message_reads_the_manifest(symmetric: Path, tmp_path: Path) -> None:
    """Where TensorRT runs but the export built no engine, opening it says why the export skipped it."""
    exp = Path(shutil.copytree(symmetric, tmp_path / "exp"))
    manifest = json.loads((exp / MANIFEST_FILE).read_text())
    manifest["tensorrt_int8"] = {"built": False, "reason": "INT8 refused for TensorRT: KID moved"}
    (exp / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(UserInputError, match="no model.int8.plan .*not built at export: INT8 refused for TensorRT"):
        artifact_path(exp, KEY)
    del manifest["tensorrt_int8"]  # an export made before the INT8 engine existed
    assert "exported before" in str(unbuilt_reason(manifest, KEY))


def test_loader_chain_is_strongly_typed_with_the_exports_profile(symmetric: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """build_tensorrt_int8 hands the INT8 ONNX, the export's profile and the shared cache to build_engine, whose
    Polygraphy chain is strongly typed with no INT8 flag and no calibrator (explicit quantization)."""
    seen: dict[str, object] = {}

    def capture(onnx_path: Path, plan: Path, profile: dict, *, timing_cache: Path, extra_caches: tuple) -> None:
        seen.update(onnx=onnx_path, plan=plan, profile=profile, cache=timing_cache)
        raise tensorrt_builds.ExportError("stop after the arguments")

    monkeypatch.setattr(tensorrt_builds, "build_engine", capture)
    manifest = load_manifest(symmetric)
    record, entry = tensorrt_builds.build_tensorrt_int8(symmetric / "model.int8.onnx", tmp_path / "exp", manifest.io, 8,
                                                        None, lambda c: None, [], (-1.0, 1.0), lambda p: None)  # type: ignore[arg-type,return-value]
    assert record == {"built": False, "reason": "TensorRT could not build model.int8.plan: stop after the arguments"}
    assert entry is None
    profile = tensorrt_builds.tensorrt_profile(manifest.io, 8, None)
    assert seen == {"onnx": symmetric / "model.int8.onnx", "plan": tmp_path / "exp" / "model.int8.plan",
                    "profile": profile, "cache": tmp_path / ".tensorrt" / "timing.cache"}
    loader = engine_loader(symmetric / "model.int8.onnx", profile, timing_cache=tmp_path / "c", load_cache=False,
                           workspace_bytes=1 << 30, pool_key="WORKSPACE")
    assert loader._network.strongly_typed is True and loader._network.path == str(symmetric / "model.int8.onnx")
    assert loader._config.int8 is False and loader._config.calibrator is None and loader._config.fp16 is False
    assert [p["z"].max for p in loader._config.profiles] == [(8, 8)]


class Shifted(OnnxRuntimeRuntime):
    """The same INT8 model with a planted fault: every output moved by half the range."""

    def run(self, inputs: dict) -> dict:  # type: ignore[override]
        return {k: np.clip(v + 1.0, -1.0, 1.0) for k, v in super().run(inputs).items()}


class Unloadable(OnnxRuntimeRuntime):
    """An engine this GPU cannot load (TensorRTRuntime raises ExportError then)."""

    def __init__(self, key: str, path: Path, **_: object) -> None:
        raise UserInputError(f"cannot load '{path}' here (planted)")


@pytest.mark.parametrize("runtime", [OnnxRuntimeRuntime, Shifted, Unloadable])
def test_engine_is_accepted_by_the_judge_that_accepted_the_onnx(symmetric: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                runtime: type) -> None:
    """The acceptance of build_tensorrt_int8 on CPU: the engine's place is taken by ONNX Runtime running the very
    QDQ model TensorRT compiles (the build step only copies it); the judge is the export's own. A faithful engine
    is recorded with its verdict and pixel figures; a planted fault, or an engine that cannot load, is refused and
    its file deleted."""
    class Built:  # the fields of onnx2trt.TrtBuild that the record copies
        version, gpu, seconds, timing_cache_reused = "none (CPU test)", "none", 0.0, False
        profile: dict = {}
        workspace_bytes = device_memory_bytes = 0

    def copy(onnx_path: Path, plan: Path, profile: dict, *, timing_cache: Path, extra_caches: tuple) -> Built:
        shutil.copyfile(onnx_path, plan)
        return Built()

    monkeypatch.setattr(tensorrt_builds, "build_engine", copy)
    manifest = load_manifest(symmetric)
    io, contract = manifest.io, manifest.contract
    judge = judge_for(symmetric / "model.onnx", io, contract, None, n=128)
    from gandeploy.export import validate
    from gandeploy.runtimes.base import open_runtime

    out = tmp_path / "exp"
    out.mkdir()
    with open_runtime("torch", symmetric) as ref:
        refs = validate.references(ref, io, validate.check_cases(8, None), 0)
    pair = (io.inputs, io.outputs)
    record, entry = tensorrt_builds.build_tensorrt_int8(symmetric / "model.int8.onnx", out, io, 8, None, judge, refs,
                                                        io.outputs[0].value_range,
                                                        lambda plan: runtime(KEY, plan, io=pair))
    if runtime is Unloadable:
        assert not record["built"] and "could not run model.int8.plan" in record["reason"] and "planted" in record["reason"]
        assert entry is None and not (out / "model.int8.plan").exists()
        return
    assert entry is not None and entry["verdict"]["test"] == "distribution" and entry["max_abs"] > 0
    if runtime is OnnxRuntimeRuntime:
        assert record["built"] and record["verdict"]["passed"] and entry["passed"]
        assert (out / "model.int8.plan").is_file()
    else:
        assert not record["built"] and record["reason"].startswith("INT8 refused for TensorRT: INT8 moves")
        assert not entry["passed"] and not (out / "model.int8.plan").exists()


@pytest.mark.parametrize("runtime", [OnnxRuntimeRuntime, Shifted])
def test_parity_judges_the_runtime_it_opened(symmetric: Path, runtime: type) -> None:
    """``parity`` runs the INT8 verdict on the backend's own runtime (a TensorRT engine is no ONNX file), in
    batches within the export's max batch."""
    from gandeploy.evaluation.parity.parity import _int8_verdict

    contract = load_manifest(symmetric).contract
    with runtime(KEY, symmetric / "model.int8.onnx", io=(contract.io.inputs, contract.io.outputs)) as rt:
        verdict = _int8_verdict(symmetric, contract, rt)
    assert verdict.test == "distribution" and verdict.passed is (runtime is OnnxRuntimeRuntime), verdict


def test_ngc_precision_int8_plans_the_int8_plan(symmetric: Path, tmp_path: Path) -> None:
    """Planning only: a stand-in model.int8.plan registered as export_run registers a build."""
    exp = Path(shutil.copytree(symmetric, tmp_path / "dcgan-int8"))
    (exp / "model.int8.plan").write_bytes(b"stand-in engine bytes, never served")
    manifest = json.loads((exp / MANIFEST_FILE).read_text())
    manifest["files"]["model.int8.plan"] = file_entry(exp / "model.int8.plan", KEY)
    trt = ngc.RELEASES[ngc.DEFAULT_RELEASE].tensorrt
    manifest["tensorrt_int8"] = {"built": True, "version": trt}
    (exp / MANIFEST_FILE).write_text(json.dumps(manifest))
    name = manifest["name"]

    out = build_repository([exp], tmp_path / "int8", flavour="ngc", precision="int8").root
    gen = C.read_config(out / f"{name}_generator")
    assert gen.platform == "tensorrt_plan" and gen.default_model_filename == "model.int8.plan"
    assert sorted(p.name for p in (out / f"{name}_generator" / "1").iterdir()) == ["model.int8.plan"]

    out = build_repository([exp], tmp_path / "fp32", flavour="ngc").root  # fp32: the FP16 engine, not built here
    gen = C.read_config(out / f"{name}_generator")
    assert gen.platform == "onnxruntime_onnx" and gen.default_model_filename == "model.onnx"

    choice = ngc.plan_choice(manifest, ngc.get_release("25.01"), KEY)  # another container: the ONNX, and why
    assert not choice.use_plan and choice.plan == "model.int8.plan" and trt in choice.reason
    out = build_repository([exp], tmp_path / "foreign", flavour="ngc", precision="int8", triton_release="25.01").root
    gen = C.read_config(out / f"{name}_generator")
    assert gen.platform == "onnxruntime_onnx" and gen.default_model_filename == "model.int8.onnx"


def test_int8_symmetric_needs_int8(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", "dcgan")
    result = CliRunner().invoke(main, ["export", str(run), "--int8-symmetric", "--out", str(tmp_path / "e")])
    assert result.exit_code == 2 and "--int8" in result.output and not (tmp_path / "e").exists()
