"""``gandeploy evaluate`` beyond one summary: both directions of an image-to-image run dir (B→A from the declared
domains of its second generator, on a run dir and on a G_B export alike), ``--generator``, and InfoGAN's
per-code rows (the Hungarian code → digit mapping on the evaluated samples themselves)."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gandeploy.evaluation.evaluate import EvalConfig, evaluate
from gandeploy.evaluation.sampling import as_delivered

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))
from parity_helpers import SIZES, TINY  # noqa: E402

METRICS = ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage")
KEYS = (*METRICS, "n", "features", "backend")
CYC_CFG = EvalConfig(n=10, real="digits2inverted", kid_subsets=5, kid_subset_size=50)


@pytest.fixture(scope="module")
def cyc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny CycleGAN run dir holding G_A and G_B, and an export of its G_B."""
    from gandeploy.evaluation.bench.suite import make_run
    from gandeploy.export.pipeline import export_run

    root = tmp_path_factory.mktemp("rows")
    run = make_run(root / "cyc", "cyclegan", TINY["cyclegan"], every_generator=True)
    export = export_run(run, root / "export-gb", generator="G_B", fp16=False, trt=False, max_batch=8,
                        **SIZES["cyclegan"]).out_dir  # type: ignore[arg-type]
    return {"run": run, "export": export}


def _held_out(size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    from gandeploy.data import open_dataset

    ds = open_dataset("digits2inverted", "cyclegan", split="test", augment=None, data_root=None, image_size=size,
                      channels=channels)
    return ds.test_batch(10**9)


def test_run_dir_scores_both_directions(cyc) -> None:
    from gandeploy.training.checkpoint import load_generator

    res = evaluate(cyc["run"], None, cfg=CYC_CFG)
    arch = TINY["cyclegan"]
    held_a, held_b = _held_out(arch.image_size, arch.input_nc)
    fwd, rev = res.summary, res.reverse.summary
    assert fwd["direction"].startswith("A→B") and fwd["generator"] == "G_A"
    assert rev["direction"].startswith("B→A") and rev["generator"] == "G_B"
    assert fwd["n"] == len(held_a) and fwd["n_real"] == len(held_b)
    assert rev["n"] == len(held_b) and rev["n_real"] == len(held_a)  # B→A: every held-out B picture translated
    assert all(math.isfinite(s[m]) for s in (fwd, rev) for m in METRICS)
    # the reverse ran G_B on held-out B and was scored against held-out A
    g_b, _ = load_generator(cyc["run"], key="G_B")
    with torch.no_grad():
        want = as_delivered(g_b(held_b).numpy())
    assert np.abs(res.reverse.fake - want).max() <= 1 / 127.5 + 1e-6
    np.testing.assert_array_equal(res.reverse.real, held_a.numpy())
    assert fwd["fid"] != rev["fid"]  # two different generators, two different real sets
    data = res.to_json()
    assert all(k in data for k in KEYS) and all(k in data["reverse"] for k in KEYS)
    assert data["fid"] == fwd["fid"] and data["reverse"]["fid"] == rev["fid"]  # top level keeps meaning A→B


def test_g_b_export_on_onnxruntime_equals_run_dir_with_generator_g_b(cyc) -> None:
    ort = evaluate(cyc["export"], "onnxruntime", cfg=CYC_CFG)
    ref = evaluate(cyc["run"], None, cfg=CYC_CFG, generator="G_B")
    assert ort.summary["generator"] == ref.summary["generator"] == "G_B"
    assert ort.summary["direction"] == ref.summary["direction"] and ort.summary["direction"].startswith("B→A")
    assert ort.reverse is None and ref.reverse is None  # one generator each: one direction
    assert ort.summary["n"] == ref.summary["n"] and ort.summary["n_real"] == ref.summary["n_real"]
    assert np.abs(ort.fake - ref.fake).max() <= 1 / 127.5 + 1e-6  # uint8-delivered: at most one level apart
    for m in METRICS:
        assert ort.summary[m] == pytest.approx(ref.summary[m], rel=1e-3, abs=1e-4), m
    tor = evaluate(cyc["export"], "torch", cfg=CYC_CFG)  # the export's own generator.pt, also scored B→A
    assert tor.summary["direction"] == ref.summary["direction"] and np.array_equal(tor.fake, ref.fake)


def test_cli_both_directions_and_generator_errors(cyc, tmp_path) -> None:
    from gandeploy.cli import main

    out = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["evaluate", str(cyc["run"]), "--real", "digits2inverted", "--kid-subsets", "5",
                                    "--kid-subset-size", "50", "--json", str(out), "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert "A→B (translated held-out A vs real held-out B), G_A" in res.output
    assert "B→A (translated held-out B vs real held-out A), G_B" in res.output
    data = json.loads(out.read_text())
    assert data["direction"].startswith("A→B") and data["reverse"]["direction"].startswith("B→A")
    md = (tmp_path / "rep" / "evaluate.md").read_text()
    assert "| A→B |" in md and "| B→A |" in md
    from PIL import Image

    with Image.open(tmp_path / "rep" / "evaluate.png") as fig:
        assert fig.height > fig.width / 2  # two rows: A→B above B→A

    bad = CliRunner().invoke(main, ["evaluate", str(cyc["run"]), "--generator", "G_C", "--real", "digits2inverted"])
    assert bad.exit_code == 1 and "--generator" in bad.output and "G_A, G_B" in bad.output
    assert "Traceback" not in bad.output
    other = CliRunner().invoke(main, ["evaluate", str(cyc["export"]), "--generator", "G_A"])
    assert other.exit_code == 1 and "--generator G_A" in other.output and "holds generator G_B" in other.output


def test_infogan_per_code_rows(tmp_path, caplog) -> None:
    from gandeploy.metrics.classifier import classify_digits
    from gandeploy.evaluation.bench.suite import make_run

    run = make_run(tmp_path / "info", "infogan", TINY["infogan"])
    k = TINY["infogan"].n_cat
    n = 20 * k
    res = evaluate(run, None, cfg=EvalConfig(n=n, real="digits", kid_subsets=5, kid_subset_size=20))
    rows = res.per_code
    assert res.per_class == [] and [r["code"] for r in rows] == list(range(k))
    mapped = [r["mapped_class"] for r in rows]
    assert len(set(mapped)) == len(mapped) and set(mapped) <= set(range(10))  # one-to-one into the digits
    assert sum(r["n_fake"] for r in rows) == n and all(r["n_fake"] == n // k for r in rows)
    assert all(math.isfinite(r[m]) for r in rows for m in METRICS)
    # rows score against the real items of the mapped digit, and the shares are the judge's on these samples
    from gandeploy.data.digits import load_split

    _, labels = load_split("test", TINY["infogan"].image_size)
    assert [r["n_real"] for r in rows] == [int((labels == m).sum()) for m in mapped]
    judged = classify_digits(torch.from_numpy(res.fake))[0].numpy()
    codes = np.arange(n) % k  # seeds 0..n-1, code = seed mod K
    assert [r["share_judged_as_mapped"] for r in rows] == [float((judged[codes == r["code"]] == r["mapped_class"])
                                                                  .mean()) for r in rows]
    # the Hungarian mapping matches at least as many samples as any other one-to-one mapping tried
    best = sum(int((judged[codes == c] == m).sum()) for c, m in enumerate(mapped))
    rng = np.random.default_rng(0)
    for perm in [rng.permutation(10)[:k] for _ in range(200)]:
        assert best >= sum(int((judged[codes == c] == m).sum()) for c, m in enumerate(perm))
    assert res.code_mapping["accuracy"] == pytest.approx(best / n)
    assert res.to_json()["per_code"] == rows

    logger = logging.getLogger("gandeploy")  # the CLI's set-up stops propagation: listen on it directly
    logger.addHandler(caplog.handler)
    try:
        pix = evaluate(run, None, cfg=EvalConfig(n=40, real="digits", features="pixels", kid_subsets=5,
                                                 kid_subset_size=20))
    finally:
        logger.removeHandler(caplog.handler)
    assert pix.per_code == [] and "needs the digits judge" in caplog.text
