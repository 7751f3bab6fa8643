"""The parity suite: every registry model × every backend available here, incl. the served ones (one server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from parity_helpers import TINY
from PIL import Image

from gandeploy.cli import main
from gandeploy.errors import BackendUnavailable
from gandeploy.evaluation.parity.parity import run_parity
from gandeploy.registry import MODELS

pytestmark = pytest.mark.e2e
ALWAYS = {"onnxruntime", "onnxruntime-fp16", "triton", "triton-ensemble"}


@pytest.fixture(scope="module")
def server(tiny_exports: dict[str, Path]) -> Iterator[object]:
    """One real tritonserver serving every tiny export (module scope)."""
    from gandeploy.evaluation.served import local_server

    try:
        with local_server(list(tiny_exports.values())) as running:
            yield running
    except BackendUnavailable as exc:
        pytest.skip(f"tritonserver unavailable: {exc}")


def test_registry_is_covered() -> None:
    assert set(TINY) == set(MODELS), "add a tiny config for every registry model to tests/parity/conftest.py"


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_backend_matches_torch(model: str, tiny_exports: dict[str, Path], server: object) -> None:
    report = run_parity(tiny_exports[model], url=server.http_url, protocol="http")  # type: ignore[attr-defined]
    table = "\n".join(f"{r.backend} {r.case.label()} {r.diff} {r.error} {r.breaches}" for r in report.rows)
    assert report.passed, table
    assert set(report.compared) >= ALWAYS, report.skipped
    assert "tensorrt" in report.compared or report.skipped["tensorrt"]  # never silently dropped
    batches = {r.case.batch for r in report.rows}
    assert len(batches) >= 2
    if report.task == "translation":
        sizes = {r.case.hw for r in report.rows}
        assert any(h != w for h, w in sizes), sizes  # a non-square size is covered
    fp16 = [r.diff for r in report.rows if r.backend == "onnxruntime-fp16"]
    assert all(d is not None and d.max_abs > 0 for d in fp16)  # really the FP16 graph, not the FP32 one
    ens = [r for r in report.rows if r.backend == "triton-ensemble"]
    assert {r.kind for r in ens} == ({"float"} if model == "mlp" else {"uint8"})


def test_cli_against_running_server(tiny_exports: dict[str, Path], server: object, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["parity", str(tiny_exports["cyclegan"]), "--url", server.http_url,  # type: ignore[attr-defined]
                                       "--report", str(out), "--batch-sizes", "1,2", "--sizes", "32x32,24x40"])
    assert result.exit_code == 0, result.output
    assert "parity passed" in result.output and "Next: gandeploy bench" in result.output
    data = json.loads((out / "parity.json").read_text())
    assert data["passed"] and {tuple(r["hw"]) for r in data["rows"]} == {(32, 32), (24, 40)}
    assert "tensorrt" in data["skipped"] or "tensorrt" in data["compared"]
    assert "| triton-ensemble" in (out / "parity.md").read_text()
    with Image.open(out / "parity_cyclegan.png") as png:
        assert png.size[0] > 300 and png.size[1] > 300


def test_grpc_protocol(tiny_exports: dict[str, Path], server: object) -> None:
    report = run_parity(tiny_exports["cgan"], ["triton", "triton-ensemble"], batch_sizes=(3,),
                        url=server.grpc_url, protocol="grpc")  # type: ignore[attr-defined]
    assert report.passed and report.compared == ["triton", "triton-ensemble"]
    assert np.isfinite(report.rows[0].diff.max_abs)  # type: ignore[union-attr]


def test_served_bench_and_sweeps(tiny_exports: dict[str, Path], server: object, perf_analyzer: object) -> None:
    """The benchmark harness and both concurrency sweeps against the real server (shapes, never speed); the
    perf_analyzer sweep really runs (the test skips, visibly, where perf_analyzer cannot start)."""
    from gandeploy.evaluation.bench.bench import run_bench
    from gandeploy.evaluation.bench.perf_analyzer import python_sweep, sweep_export
    from gandeploy.evaluation.bench.roofline import Roofline
    from gandeploy.manifest import load_manifest

    export = tiny_exports["cyclegan"]
    roof = Roofline(gflops=100.0, threads=2, sizes=(64,), per_size={"64": 100.0})
    report = run_bench(export, ["triton", "triton-ensemble"], batch_sizes=(1, 2), url=server.http_url,  # type: ignore[attr-defined]
                       warmup=1, reps=2, roofline=roof)
    assert {(p.backend, p.batch) for p in report.points} == {(k, b) for k in ("triton", "triton-ensemble")
                                                             for b in (1, 2)}
    manifest = load_manifest(export)
    # expected_ms: windows of a request count, steadier than 0.5 s windows on a busy machine
    swept = sweep_export(manifest, server.http_url, hw=(32, 32), concurrency=(1, 2),  # type: ignore[attr-defined]
                         measurement_ms=500, expected_ms=500)
    for model in ("cyclegan_generator", "cyclegan"):
        entry = swept[model]
        assert "points" in entry, entry
        assert [p["concurrency"] for p in entry["points"]] == [1, 2] and entry["gain"]["1"] == 1.0, entry
    fallback = python_sweep(tiny_exports["dcgan"], server.http_url, concurrency=(1, 2), seconds=0.5)  # type: ignore[attr-defined]
    for entry in fallback.values():
        assert entry["tool"] == "python client" and all(p["throughput"] > 0 for p in entry["points"])
