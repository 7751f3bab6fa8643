"""``gandeploy evaluate`` on tiny exports: role-based seed feeds, same samples on every backend, the JSON keys,
per-class rows, distribution parity FP32 vs FP16, point data and image-to-image models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gandeploy.errors import UserInputError
from gandeploy.evaluation.compare import compare
from gandeploy.evaluation.evaluate import EvalConfig, evaluate
from gandeploy.evaluation.sampling import generator_feeds
from gandeploy.models.io import (GeneratorIO, categorical_code, class_label, continuous_code, image_input, image_output,
                                 latent, latents_from_seeds)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))
from parity_helpers import make_export  # noqa: E402

KEYS = ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage", "n", "features", "backend")


def test_generator_feeds_follow_roles_not_names() -> None:
    from gandeploy.evaluation.cases import CASE_SALT

    io = GeneratorIO((latent(5, name="noise"), class_label(3, name="y"), categorical_code(4, name="c"),
                      continuous_code(2, -2.0, 2.0, name="k")), (image_output(1, 8, 8),))
    seeds = np.arange(10, 17)
    feeds = generator_feeds(io, seeds)
    np.testing.assert_array_equal(feeds["noise"], latents_from_seeds(seeds, 5))
    np.testing.assert_array_equal(feeds["y"], seeds % 3)
    np.testing.assert_array_equal(feeds["c"], seeds % 4)
    assert feeds["k"].shape == (7, 2) and feeds["k"].dtype == np.float32  # the training prior U(-2, 2)
    np.testing.assert_allclose(feeds["k"][0], np.random.default_rng(CASE_SALT + 10).uniform(-2.0, 2.0, 2), rtol=1e-6)
    again = generator_feeds(io, seeds)
    assert all(np.array_equal(feeds[k], again[k]) for k in feeds)
    np.testing.assert_array_equal(generator_feeds(io, seeds, classes=2)["y"], np.full(7, 2))
    np.testing.assert_array_equal(generator_feeds(io, seeds, classes=2)["noise"], feeds["noise"])
    with pytest.raises(UserInputError):
        generator_feeds(io, seeds, classes=3)  # out of range
    with pytest.raises(UserInputError, match="pictures"):
        generator_feeds(GeneratorIO((image_input(1),), (image_output(1),)), seeds)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evaluate")
    return {m: make_export(root, m) for m in ("cgan", "mlp")}


CFG = EvalConfig(n=300, real="digits", kid_subsets=30, kid_subset_size=100)


def test_same_seeds_same_samples_on_every_backend_and_per_class_rows(exports) -> None:
    torch_res = evaluate(exports["cgan"], "torch", cfg=CFG)
    ort_res = evaluate(exports["cgan"], "onnxruntime", cfg=CFG)
    assert all(k in ort_res.summary for k in KEYS)
    assert ort_res.summary["backend"] == "onnxruntime" and ort_res.summary["n"] == 300
    # uint8-delivered pixels: at most one level apart (ONNX vs eager rounding at a level boundary)
    assert np.abs(torch_res.fake - ort_res.fake).max() <= 1 / 127.5 + 1e-6
    assert abs(torch_res.summary["fid"] - ort_res.summary["fid"]) < 0.05 * torch_res.summary["fid"]
    assert [r["class"] for r in ort_res.per_class] == list(range(10))
    assert all(r["n_real"] >= 30 and r["n_fake"] == 30 for r in ort_res.per_class)
    # untrained generator: far from real digits
    assert ort_res.summary["fid"] > 10 and ort_res.summary["precision"] < 0.2


def test_fp32_and_fp16_distributions_match_within_kid_std(exports, tmp_path) -> None:
    from gandeploy.evaluation.eval_report import write_compare

    comp = compare(exports["cgan"], ["onnxruntime", "onnxruntime-fp16", "tensorrt"],
                   cfg=EvalConfig(n=400, real="digits", kid_subsets=50, kid_subset_size=100, per_class=False))
    assert comp.reference == "onnxruntime"
    fp16 = next(r for r in comp.rows if r["backend"] == "onnxruntime-fp16")
    ref = next(r for r in comp.rows if r["backend"] == "onnxruntime")
    assert fp16["kid_within_std"] is True
    assert abs(fp16["vs_real"]["kid_mean"] - ref["vs_real"]["kid_mean"]) <= ref["vs_real"]["kid_std"]
    assert fp16["vs_reference"]["fid"] < 0.01 * ref["vs_real"]["fid"]
    # the verdict uses independent samples (halves of the seeds); the paired KID is biased below zero
    unpaired = fp16["vs_reference_unpaired"]
    assert unpaired["n_real"] == unpaired["n_fake"] == 200 and abs(unpaired["kid_mean"]) <= unpaired["kid_std"] * 3
    if "tensorrt" not in [r["backend"] for r in comp.rows]:
        assert "tensorrt" in comp.skipped  # listed with its reason, never silently dropped
    md = (write_compare(comp, tmp_path)[1]).read_text()
    assert "onnxruntime-fp16" in md and "yes" in md


def test_cli_writes_json_report_and_figure(exports, tmp_path) -> None:
    from gandeploy.cli import main

    out = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["evaluate", str(exports["cgan"]), "--backend", "onnxruntime-fp16", "--n", "120",
                                    "--real", "digits", "--kid-subsets", "10", "--json", str(out),
                                    "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert all(k in data for k in KEYS) and data["backend"] == "onnxruntime-fp16" and data["n"] == 120
    assert len(data["per_class"]) == 10
    assert (tmp_path / "rep" / "evaluate.png").stat().st_size > 1000
    assert "| all |" in (tmp_path / "rep" / "evaluate.md").read_text()
    bad = CliRunner().invoke(main, ["evaluate", str(exports["cgan"]), "--n", "50"])
    assert bad.exit_code == 1 and "--real" in bad.output  # a random-init export records no data set


def test_points_use_pixel_features(exports) -> None:
    res = evaluate(exports["mlp"], "onnxruntime", cfg=EvalConfig(n=500, real="ring8", kid_subsets=10))
    assert res.summary["features"] == "pixels" and res.fake.shape == (500, 2)
    assert res.per_class == [] and res.summary["n_real"] == 500


def test_translation_is_scored_on_held_out_a_to_b(tmp_path) -> None:
    from gandeploy.evaluation.bench.suite import make_run
    from parity_helpers import TINY

    run = make_run(tmp_path / "cyc", "cyclegan", TINY["cyclegan"])
    res = evaluate(run, None, cfg=EvalConfig(n=10, real="digits2inverted", features="pixels", kid_subsets=5))
    assert res.summary["task"] == "translation" and res.summary["backend"] == "torch"
    # held-out A translated (n) against held-out B (n_real): same picture shape, counts of their own splits
    assert res.fake.shape[1:] == res.real.shape[1:] and res.summary["n"] == len(res.fake) > 100
    # this run dir keeps G_A only: no B→A block, and the JSON says why
    assert res.reverse is None and "G_B" in res.to_json()["reverse_skipped"]
