"""INT8 as a backend of the format table: parity judges it by the distribution verdict, in-process sampling and
bench open it by the table, ``repo --precision int8`` serves ``model.int8.onnx`` through ``onnx_file``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gandeploy.errors import ExportError, UserInputError
from gandeploy.evaluation.parity.int8_verdict import judge_for
from gandeploy.evaluation.parity.parity import run_parity
from gandeploy.export.onnx2int8 import Int8Verdict
from gandeploy.export.pipeline import export_run
from gandeploy.formats import FORMATS
from gandeploy.serving.local import LOCAL_BACKENDS, local_runtime
from gandeploy.serving.repository import build_repository
from gandeploy.tolerances import tolerance_for

from export_helpers import make_run_dir


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("int8")
    run = make_run_dir(root / "run", "dcgan")
    export_run(run, root / "exp", int8=True, int8_seeds=16,
               int8_judge=lambda p, io, c, r: judge_for(p, io, c, r.dataset, n=128))
    assert (root / "exp" / "model.int8.onnx").is_file()
    return root / "exp"


def test_table_row() -> None:
    fmt = FORMATS["onnxruntime-int8"]
    assert (fmt.file, fmt.runtime, fmt.precision) == ("model.int8.onnx", "onnxruntime", "int8")
    assert "onnxruntime-int8" in LOCAL_BACKENDS


def test_parity_row_is_the_distribution_verdict(int8_export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = run_parity(int8_export, ["onnxruntime-int8"])
    rows = [r for r in report.rows if r.backend == "onnxruntime-int8"]
    assert rows and all(r.passed for r in rows)
    assert report.reference["onnxruntime-int8_verdict"]["test"] == "distribution"
    # the per-pixel error is reported, and FP16's bound would not hold it: the verdict, not a pixel bound, decides
    assert max(r.diff.max_abs for r in rows) > tolerance_for("fp16").max_abs  # type: ignore[operator,union-attr]

    import gandeploy.evaluation.parity.parity as parity

    monkeypatch.setattr(parity, "_int8_verdict",
                        lambda *a: Int8Verdict(False, "distribution", {}, "KID 0.2 beyond its std 0.01"))
    failed = run_parity(int8_export, ["onnxruntime-int8"])
    assert not failed.passed and "distribution: KID" in failed.failures[0].breaches[0]


def test_in_process_sampling_opens_int8(int8_export: Path) -> None:
    contract, rt = local_runtime(int8_export, "onnxruntime-int8")
    with rt:
        out = rt.run(contract.generator_feeds(np.arange(3)))[contract.io.output_names[0]]
    assert out.shape[0] == 3 and np.isfinite(out).all()


def test_repo_precision_int8_serves_the_int8_file(int8_export: Path, tmp_path: Path) -> None:
    build_repository([int8_export], tmp_path / "repo", precision="int8")
    configs = list((tmp_path / "repo").glob("*/config.pbtxt"))
    served = [c for c in configs if "onnx_file" in c.read_text()]
    assert served and all('"model.int8.onnx"' in c.read_text() for c in served)
    assert all((c.parent / "1" / "model.int8.onnx").is_file() for c in served)
    with pytest.raises(UserInputError, match="--precision"):
        build_repository([int8_export], tmp_path / "repo2", precision="int4")


def test_repo_precision_int8_without_int8_names_the_flag(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", "dcgan")
    export_run(run, tmp_path / "exp")
    assert json.loads((tmp_path / "exp" / "manifest.json").read_text())["int8"]["written"] is False
    with pytest.raises(ExportError, match="--int8"):
        build_repository([tmp_path / "exp"], tmp_path / "repo", precision="int8")


@pytest.mark.e2e
def test_live_triton_int8_pixels_equal_the_local_int8_backend(int8_export: Path, tmp_path: Path) -> None:
    """``repo --precision int8`` on the real tritonserver: seeds through tritonclient give the pixels the local
    ``onnxruntime-int8`` backend gives (one uint8 level at most), and differ from the FP32 export's."""
    from gandeploy.models.io import to_uint8
    from gandeploy.serving import client as tc
    from gandeploy.serving.server import TritonServer

    build_repository([int8_export], tmp_path / "repo", precision="int8")
    contract, rt = local_runtime(int8_export, "onnxruntime-int8")
    seeds = [0, 5, 11]
    with rt:
        local = to_uint8(rt.run(contract.generator_feeds(np.asarray(seeds)))[contract.io.output_names[0]],
                         contract.output_range)
    _, fp32 = local_runtime(int8_export, "onnxruntime")
    with fp32:
        plain = to_uint8(fp32.run(contract.generator_feeds(np.asarray(seeds)))[contract.io.output_names[0]],
                         contract.output_range)
    name = json.loads((int8_export / "manifest.json").read_text())["name"]
    with TritonServer(tmp_path / "repo", http_port=0, grpc_port=0, metrics_port=0,
                      log_file=tmp_path / "tritonserver.log") as server:
        served = tc.sample(name, seeds, url=server.grpc_url)
    assert served.shape == local.shape and served.dtype == np.uint8
    assert int(np.abs(served.astype(np.int16) - local.astype(np.int16)).max()) <= 1
    assert np.abs(served.astype(np.int16) - plain.astype(np.int16)).max() > 1  # it is the INT8 file that served
