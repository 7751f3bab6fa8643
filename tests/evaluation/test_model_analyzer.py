"""Triton Model Analyzer as the serving-knob sweep: its config, its results read back, and one real run.

The real run starts NVIDIA's model-analyzer in local launch mode with the bundled tritonserver and
perf_analyzer on a tiny DCGAN (2 settings x 2 concurrency levels, short windows).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gandeploy.errors import BackendUnavailable
from gandeploy.evaluation.bench import model_analyzer as MA
from gandeploy.evaluation.bench.knobs import Knobs, grid
from gandeploy.models.dcgan import DCGANConfig


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gandeploy.evaluation.bench.suite import make_run
    from gandeploy.export.pipeline import export_run

    root = tmp_path_factory.mktemp("ma")
    run = make_run(root / "runs" / "tiny", "dcgan", DCGANConfig(nz=8, ngf=8, ndf=8, image_size=32))
    return export_run(run, root / "export" / "tiny", fp16=False, max_batch=8).out_dir


def test_config_searches_the_grid_on_cpu(tmp_path: Path) -> None:
    cfg = MA.analyzer_config(tmp_path / "repo", "m", grid((1, 2), (1, 2), (0, 500)), out=tmp_path,
                             input_data=tmp_path / "in.json", tritonserver=Path("/ts"), backend_dir=Path("/b"),
                             perf_analyzer=Path("/pa"), ld_library_path="/lib", ports=(1, 2, 3),
                             concurrency=(1, 8), measurement_ms=700)
    search = cfg["profile_models"]["m"]
    assert search["cpu_only"] and cfg["triton_launch_mode"] == "local" and cfg["run_config_search_disable"]
    params = search["model_config_parameters"]
    assert params["instance_group"] == [{"kind": "KIND_CPU", "count": [1, 2]}]
    assert params["dynamic_batching"]["max_queue_delay_microseconds"] == [0, 500]
    assert params["parameters"]["intra_op_threads"]["string_value"] == ["1", "2"]
    assert cfg["perf_analyzer_flags"] == {"input-data": str(tmp_path / "in.json"), "measurement-interval": 700}
    assert cfg["triton_server_flags"]["backend-directory"] == "/b" and cfg["triton_grpc_endpoint"].endswith(":2")


def test_missing_tool_is_an_error_in_the_result(export_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def absent() -> Path:
        raise BackendUnavailable("triton-model-analyzer is not installed: pip install 'gandeploy[bench]'")

    monkeypatch.setattr(MA, "find_model_analyzer", absent)
    result = MA.run_model_analyzer(export_dir, [Knobs()], tmp_path)
    assert result.error and "not installed" in result.error and not result.rows
    written = json.loads((tmp_path / "model_analyzer.json").read_text())
    assert written["error"] == result.error and written["format"] == MA.FORMAT
    assert "did not run: triton-model-analyzer is not installed" in MA.analyzer_table("x", result)


@pytest.mark.slow
@pytest.mark.e2e
def test_model_analyzer_runs_for_real(export_dir: Path, tmp_path: Path) -> None:
    try:
        MA.find_model_analyzer()
        from gandeploy.evaluation.bench.perf_analyzer import find_perf_analyzer
        from gandeploy.serving.triton_install import find_tritonserver

        find_perf_analyzer()
        find_tritonserver()
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    result = MA.run_model_analyzer(export_dir, grid((1, 2), (1,), (0,)), tmp_path, concurrency=(1, 2),
                                   measurement_ms=300, timeout_s=540)
    assert result.error is None, result.error
    measured = {(r.knobs.instances, r.knobs.threads, r.knobs.delay_us) for r in result.rows}
    assert {(1, 1, 0), (2, 1, 0)} <= measured  # both settings of the search (plus the repository default)
    for row in result.rows:
        assert set(row.points) == {1, 2}
        assert all(p["throughput"] > 0 and p["p99_ms"] > 0 for p in row.points.values())
    # perf_analyzer got the contract's seeds: a user-facing model refuses random int64 seeds
    data = json.loads((tmp_path / "model-analyzer" / "input-data.json").read_text())
    assert [set(entry) for entry in data["data"]] == [{"seed"}] * len(data["data"])
    assert json.loads((tmp_path / "model_analyzer.json").read_text())["rows"]
    assert "| 2 | 1 | 0 |" in MA.analyzer_table("tiny", result, (1, 2))
