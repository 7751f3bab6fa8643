"""``gandeploy evaluate`` on served models (real tritonserver): the served distribution is the exported one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from gandeploy.evaluation.compare import compare
from gandeploy.evaluation.evaluate import EvalConfig, evaluate

pytestmark = pytest.mark.e2e

CFG = EvalConfig(n=96, real="digits", kid_subsets=10, kid_subset_size=48)


def test_served_name_gives_the_exported_samples(server, exports) -> None:
    served = evaluate("cgan-tiny", cfg=CFG, url=server.grpc_url, protocol="grpc")
    local = evaluate(exports["cgan-tiny"], "onnxruntime", cfg=CFG)
    assert served.summary["backend"] == "served"
    assert np.abs(served.fake - local.fake).max() <= 1 / 127.5 + 1e-6  # one uint8 level at most
    assert [r["class"] for r in served.per_class] == [0, 1, 2]  # classes from the served config, seeds mod 3
    assert served.summary["fid"] == pytest.approx(local.summary["fid"], rel=0.02)


def test_compare_includes_the_served_raw_generator(server, exports, tmp_path) -> None:
    comp = compare(exports["cgan-tiny"], ["onnxruntime", "onnxruntime-fp16", "triton"],  # no FP16 file here
                   cfg=EvalConfig(n=96, real="digits", kid_subsets=10, kid_subset_size=48, per_class=False),
                   url=server.grpc_url, protocol="grpc")
    rows = {r["backend"]: r for r in comp.rows}
    assert set(rows) == {"onnxruntime", "triton"}, comp.skipped
    assert "fp16" in comp.skipped["onnxruntime-fp16"]  # listed with the reason
    assert rows["triton"]["max_abs_vs_reference"] <= 1 / 127.5 + 1e-6
    assert rows["triton"]["kid_within_std"]


def test_cli_on_a_served_model(server, tmp_path) -> None:
    from gandeploy.cli import main

    out = tmp_path / "served.json"
    res = CliRunner().invoke(main, ["evaluate", "mlp-tiny", "--url", server.http_url, "--protocol", "http",
                                    "--real", "ring8", "--n", "200", "--kid-subsets", "5", "--json", str(out),
                                    "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["features"] == "pixels" and data["n"] == 200 and data["backend"] == "served"


def test_served_model_evaluates_against_its_recorded_data_set(server, tmp_path, monkeypatch) -> None:
    """The served model's config records its run's data set (as its model card does): no --real needed, and
    the report goes to its own folder, not the one an evaluation of the export writes."""
    from gandeploy.cli import main

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["evaluate", "mlp-tiny", "--url", server.http_url, "--protocol", "http",
                                    "--n", "200", "--kid-subsets", "5"])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "reports/evaluate/mlp-tiny-served/evaluate.json").read_text())
    assert data["real"] == "ring8 (held-out split)" and data["backend"] == "served"


def test_served_translation_model_scores_like_its_export(server, exports) -> None:
    """An image-to-image model is scored by name on the server too, through the PNG round trip users make. The
    held-out inputs are floats that the PNG rounds to uint8 levels (in-process runs take them unrounded), so a
    few pixels move by more than one level; the scores stay the same."""
    cfg = EvalConfig(n=64, real="digits2inverted", kid_subsets=5, kid_subset_size=32)
    served = evaluate("cyclegan-tiny", cfg=cfg, url=server.grpc_url, protocol="grpc")
    local = evaluate(exports["cyclegan-tiny"], "onnxruntime", cfg=cfg)
    assert served.summary["backend"] == "served"
    assert served.fake.shape == local.fake.shape
    diff = np.abs(served.fake - local.fake)
    assert np.mean(diff <= 1 / 127.5 + 1e-6) >= 0.99 and diff.max() <= 4 / 127.5 + 1e-6, diff.max()
    assert served.summary["fid"] == pytest.approx(local.summary["fid"], rel=0.02, abs=1e-3)
