"""The benchmark harness on a tiny model with 2 repetitions (figures are checked for shape, never for speed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from gandeploy.cli import main
from gandeploy.evaluation.bench.bench import BenchReport, Point, run_bench, time_calls
from gandeploy.evaluation.bench.report import bench_text, write_bench_report
from gandeploy.evaluation.bench.roofline import Roofline
from gandeploy.models.dcgan import DCGANConfig

ROOF = Roofline(gflops=100.0, threads=2, sizes=(64,), per_size={"64": 100.0})  # a fixed ceiling: no SGEMM run


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gandeploy.evaluation.bench.suite import make_run
    from gandeploy.export.pipeline import export_run

    root = tmp_path_factory.mktemp("bench")
    run = make_run(root / "runs" / "tiny", "dcgan", DCGANConfig(nz=8, ngf=8, ndf=8, image_size=32))
    return export_run(run, root / "export" / "tiny", fp16=False, max_batch=8).out_dir


def test_time_calls_excludes_warmup() -> None:
    calls = []
    lat = time_calls(lambda: calls.append(1), warmup=3, reps=2)
    assert len(calls) == 5 and len(lat) == 2 and all(v >= 0 for v in lat)


def test_point_figures() -> None:
    p = Point("onnxruntime", 8, [10.0, 20.0, 30.0], gflop_per_item=0.5, roofline_gflops=100.0)
    assert p.p50_ms == 20.0 and p.throughput == pytest.approx(400.0)
    assert p.gflops == pytest.approx(200.0) and p.pct_roofline == pytest.approx(200.0)
    assert 29.0 < p.p99_ms <= 30.0 and p.to_json()["reps"] == 3


def test_run_bench_tiny(export_dir: Path, tmp_path: Path) -> None:
    report = run_bench(export_dir, ["torch", "onnxruntime", "onnxruntime-fp16", "tensorrt", "triton"],
                       batch_sizes=(1, 4), threads=1, warmup=1, reps=2, roofline=ROOF)
    assert {(p.backend, p.batch) for p in report.points} == {(b, n) for b in ("torch", "onnxruntime") for n in (1, 4)}
    assert all(len(p.latencies_ms) == 2 and p.throughput > 0 for p in report.points)
    assert report.gflop_per_item and report.gflop_per_item > 0
    assert all(p.pct_roofline is not None for p in report.points)
    assert report.point("torch", 4).vs_torch == 1.0  # type: ignore[union-attr]
    assert report.point("onnxruntime", 4).vs_torch is not None  # type: ignore[union-attr]
    # unavailable backends are listed with a reason, never dropped
    assert "re-export with --fp16" in report.skipped["onnxruntime-fp16"]
    assert report.skipped["tensorrt"] and "--url" in report.skipped["triton"]
    paths = write_bench_report([report], tmp_path)
    data = json.loads(paths[0].read_text())
    assert data["exports"][0]["points"][0]["reps"] == 2 and data["exports"][0]["threads"] == 1
    assert "| onnxruntime" in paths[1].read_text() and "% roofline" in bench_text(report)
    with Image.open(paths[2]) as png:
        assert png.format == "PNG" and png.size[0] > 200
    two_roofs = run_bench(export_dir, ["onnxruntime"], batch_sizes=(1,), threads=1, warmup=1, reps=1,
                          roofline=Roofline(100.0, 2, (64,), {"64": 100.0}, bandwidth_gbs=0.001))
    text = bench_text(two_roofs)  # a tiny memory roof: every row is memory-bound, and the report says both roofs
    assert "triad 0.0 GB/s" in text and "| memory |" in text and two_roofs.points[0].bound == "memory"


def test_bench_cli(export_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["bench", str(export_dir), "--backends", "torch,onnxruntime", "--batch-sizes",
                                       "2", "--reps", "2", "--warmup", "0", "--threads", "1", "--json",
                                       str(tmp_path / "b.json"), "--report", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "vs torch" in result.output and "Next: gandeploy parity" in result.output
    data = json.loads((tmp_path / "b.json").read_text())
    assert [p["batch"] for p in data["points"]] == [2, 2] and data["roofline"]["gflops"] > 0
    assert (tmp_path / "rep" / "bench.png").is_file()
    # perf_analyzer's --input-data beside the report, and the command that uses it among the notes
    written = json.loads((tmp_path / "rep" / "tiny.input-data.json").read_text())["data"]
    assert [set(entry) for entry in written] == [{"seed"}] * 8
    assert any(f"--input-data {tmp_path / 'rep' / 'tiny.input-data.json'}" in n for n in data["notes"])
    bare = CliRunner().invoke(main, ["bench", str(export_dir), "--backends", "onnxruntime", "--reps", "1",
                                     "--batch-sizes", "1", "--threads", "1", "--json",
                                     "--report", str(tmp_path / "rep2")])
    assert bare.exit_code == 0, bare.output
    assert json.loads(bare.stdout)["points"][0]["backend"] == "onnxruntime"  # stdout is pure JSON


def test_bench_cli_user_errors(export_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["bench", str(export_dir), "--backends", "torch", "--batch-sizes", "64"])
    assert result.exit_code != 0 and "--batch-sizes" in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["bench", str(export_dir), "--backends", "tourch"])
    assert result.exit_code != 0 and "did you mean 'torch'" in result.output.lower()


def _report(name: str, model: str, gflop: float, points: list[Point], served: dict | None = None) -> BenchReport:
    for p in points:
        p.gflop_per_item, p.roofline_gflops = gflop, ROOF.gflops
    return BenchReport(export_dir="x", name=name, model=model, task="t", hw=None, threads=2, roofline=ROOF,
                       gflop_per_item=gflop, points=points, served=served or {})


def test_speed_goals_verdicts_and_their_ceilings() -> None:
    """The goals are judged from the reports; each MISS says what the roofline allows."""
    from gandeploy.evaluation.bench.goals import check_goals

    # 1 GFLOP per item against a 100 GFLOP/s roofline: 100 items/s is 100 %
    dcgan = _report("dcgan64", "dcgan", 1.0, [Point("torch", 64, [1000.0] * 3),  # 64/s = 64 %
                                              Point("onnxruntime", 64, [800.0] * 3)],  # 80/s = 80 %
                    served={"dcgan64": {"tool": "perf_analyzer", "gain": {"8": 1.5},
                                        "points": [{"concurrency": 1, "throughput": 40.0},
                                                   {"concurrency": 8, "throughput": 60.0}]}})
    cyclegan = _report("cyclegan256", "cyclegan", 10.0, [Point("triton-ensemble", 1, [125.0] * 3)])  # 80 %
    goals = {g.name: g for g in check_goals(dcgan, cyclegan, 4.2)}
    roof = goals["DCGAN 64x64 batch sampling, % of roofline"]
    assert (roof.passed, roof.measured) == (True, "80.0 %")
    vs_torch = goals["DCGAN 64x64 batch sampling vs PyTorch eager"]
    assert (vs_torch.passed, vs_torch.measured) == (False, "1.25x")
    assert "torch eager itself runs at 64 % of the roofline, so 3x would need 192 %" in vs_torch.detail
    conc = goals["single-item sampling, concurrency 8 vs 1"]
    assert (conc.passed, conc.measured) == (False, "1.50x")
    assert "40/s at c=1, 60/s at c=8" in conc.detail and "caps any concurrency at 100/s = 2.5x c=1" in conc.detail
    served = goals["CycleGAN 256x256 served (PNG in -> PNG out), % of roofline"]
    assert (served.passed, served.measured) == (False, "80.0 %")  # the goal is 90 % now
    assert goals["serve ready"].passed is True and goals["serve ready"].line().startswith("[PASS] serve ready: 4.2 s")
    assert all(g.passed is None for g in check_goals(None, None, None))  # nothing measured: n/a, not MISS
