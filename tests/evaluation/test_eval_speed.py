"""The speed-issue bench pieces on tiny inputs: goal verdicts from fixed figures, the knob table, the training
loops run (figures are checked for shape, never for speed)."""

from __future__ import annotations

import pytest
import torch

from gandeploy.evaluation.bench.knobs import KnobRow, Knobs, best, grid, knobs_table
from gandeploy.evaluation.bench.speed_goals import SpeedFigures, speed_goals
from gandeploy.evaluation.bench.train_bench import TrainSpeed, examples_loop, gandeploy_loop


def _row(knobs: Knobs, c1: tuple[float, float], c8: tuple[float, float, float]) -> KnobRow:
    return KnobRow(knobs, {1: {"throughput": c1[0], "p50_ms": c1[1], "p99_ms": c1[1], "mean_batch": 1.0},
                           8: {"throughput": c8[0], "p50_ms": c8[1], "p99_ms": c8[1], "mean_batch": c8[2]}})


def test_speed_goal_verdicts_name_the_ratio_and_the_setting() -> None:
    k16 = [_row(Knobs(1, 2, 0), (1500.0, 0.55), (2400.0, 3.0, 5.6)),
           _row(Knobs(2, 1, 500), (900.0, 1.1), (2000.0, 4.0, 3.9))]
    k64 = [_row(Knobs(1, 2, 0), (300.0, 3.0), (400.0, 20.0, 6.2))]
    f = SpeedFigures(knobs16=k16, knobs64=k64, ort16_b1_ms=0.1, ort64={6: 500.0, 8: 520.0},
                     training=TrainSpeed(examples=50.0, gandeploy=55.0, gandeploy_compile=70.0, steps=8, batch=64,
                                         threads=2, compile_s=40.0))
    rate = next(g for g in speed_goals(f) if "ngf16, concurrency 8" in g.name)
    assert rate.passed is True and rate.measured.startswith("2400/s") and "--instances 1 --threads 2" in rate.detail
    share = next(g for g in speed_goals(f) if "% of in-process" in g.name)
    assert (share.passed, share.measured) == (False, "80.0 %") and "at batch 6" in share.detail  # 400 / 500
    lat = next(g for g in speed_goals(f) if "latency" in g.name)
    assert (lat.passed, lat.measured) == (True, "0.45 ms over")
    train = next(g for g in speed_goals(f) if "training" in g.name and "GPU" not in g.name)
    assert (train.passed, train.measured) == (True, "1.40x") and "eager 1.10x" in train.detail
    gpu = next(g for g in speed_goals(f) if "GPU" in g.name)
    assert gpu.passed is None and gpu.line().startswith("[n/a ]")
    nothing = speed_goals(SpeedFigures())
    assert len(nothing) == 5 and all(g.passed is None for g in nothing)


def test_knob_grid_best_and_table() -> None:
    settings = grid((1, 2), (1, 2), (0, 500))
    assert len(settings) == 8 and settings[0] == Knobs(1, 1, 0) and settings[-1] == Knobs(2, 2, 500)
    rows = [_row(Knobs(1, 1, 0), (100.0, 1.0), (300.0, 5.0, 4.0)),
            _row(Knobs(2, 1, 0), (90.0, 0.9), (350.0, 6.0, 3.0)),
            KnobRow(Knobs(2, 2, 0), skipped="perf_analyzer is not installed")]
    assert best(rows, 8).knobs == Knobs(2, 1, 0) and best(rows, 1, by="p50_ms").knobs == Knobs(2, 1, 0)
    table = knobs_table("tiny", rows)
    assert "| 1 | 1 | 0 | 100 | 1.00 | 1.0 | 300 | 5.00 | 4.0 |" in table and "skipped: perf_analyzer" in table
    assert best([rows[2]], 8) is None


def test_training_loops_run_on_a_tiny_dcgan() -> None:
    from gandeploy.data import open_dataset

    ds = open_dataset("digits", "gan", image_size=64, channels=1, split="train")
    batches = [ds.get_batch(torch.arange(8), torch.Generator().manual_seed(0))[0]]
    assert examples_loop(batches, 1, 1, ngf=4, ndf=4) > 0
    rate, warm = gandeploy_loop(ds, 1, 1, batch=8, ngf=4, ndf=4)
    assert rate > 0 and warm > 0


@pytest.mark.e2e
def test_knob_sweep_reports_each_setting(tmp_path, perf_analyzer) -> None:
    """One setting served for real and measured by perf_analyzer (the test skips, visibly, without it)."""
    from gandeploy.evaluation.bench.knobs import sweep_knobs
    from gandeploy.evaluation.bench.suite import make_run
    from gandeploy.export.pipeline import export_run
    from gandeploy.models.dcgan import DCGANConfig

    run = make_run(tmp_path / "run", "dcgan", DCGANConfig(nz=8, ngf=4, ndf=4, image_size=32))
    export = export_run(run, tmp_path / "export", fp16=False, max_batch=8).out_dir
    (row,) = sweep_knobs(export, [Knobs(1, 1, 0)], measurement_ms=500)
    assert row.skipped is None
    assert set(row.points) == {1, 8} and row.points[8]["throughput"] > 0 and row.points[8]["mean_batch"] >= 1


def test_make_bench_sweeps_by_model_analyzer_and_keeps_what_it_lacks(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path) -> None:
    """make bench's ngf16 grid: Model Analyzer's rows, then gandeploy's sweep only on its best settings (batch
    formed, p50); where Model Analyzer cannot run its error is kept and gandeploy's sweep does the whole grid."""
    import gandeploy.evaluation.bench.knobs as K
    import gandeploy.evaluation.bench.model_analyzer as MA
    from gandeploy.evaluation.bench.suite import _ngf16_knobs

    settings = grid((1, 2), (1,), (0, 500))
    measured = [KnobRow(k, {1: {"throughput": 100.0 + i, "avg_ms": 5.0 - i, "p99_ms": 9.0},
                            8: {"throughput": 300.0 - 10 * i, "avg_ms": 9.0, "p99_ms": 20.0}})
                for i, k in enumerate(settings)]
    calls: list[list[Knobs]] = []
    monkeypatch.setattr(K, "sweep_knobs", lambda export, s, log_dir=None: calls.append(list(s)) or [])
    monkeypatch.setattr(MA, "run_model_analyzer",
                        lambda export, s, work: MA.AnalyzerResult("m", ["model-analyzer"], rows=measured))
    f, tables = SpeedFigures(), []
    _ngf16_knobs(tmp_path, settings, tmp_path, f, tables)
    assert calls == [[settings[0], settings[-1]]]  # best c=8 throughput, lowest c=1 avg latency
    assert f.model_analyzer and f.model_analyzer["rows"] and "Model Analyzer" in tables[0]
    calls.clear()
    monkeypatch.setattr(MA, "run_model_analyzer", lambda export, s, work: MA.AnalyzerResult(
        "m", ["model-analyzer"], error="model-analyzer exit 1: TritonModelAnalyzerException: boom"))
    f, tables = SpeedFigures(), []
    _ngf16_knobs(tmp_path, settings, tmp_path, f, tables)
    assert calls == [settings] and "boom" in f.notes[0] and "did not run: model-analyzer exit 1" in tables[0]
    assert f.to_json()["model_analyzer"]["error"].endswith("boom")
