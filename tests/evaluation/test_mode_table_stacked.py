"""The stacked-digits rows of ``gandeploy mode-table``: modes of 1,000 and KL to uniform, right on planted
histograms, and a tiny table (a few steps, few samples) with the stacked columns."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.data.stacked import open_stacked_digits
from gandeploy.metrics import stacked_modes as sm

TINY = """model = "dcgan"
dataset = "stacked-digits"
[arch]
image_size = 32
channels = 3
nz = 8
ngf = 4
ndf = 4
[train]
steps = 3
batch_size = 16
checkpoint_every = 1000
monitor_every = 0
{extra}
"""


def test_uniform_histogram_has_every_mode_and_zero_kl() -> None:
    digits = np.array([(m // 100, m // 10 % 10, m % 10) for m in range(1000)] * 26)  # 26,000: 26 per mode
    counts = sm.mode_histogram(digits)
    stats = sm.StackedStats(tuple(int(c) for c in counts))
    assert counts.sum() == 26_000 and stats.modes_covered == 1000 and stats.kl == pytest.approx(0.0, abs=1e-12)


def test_one_mode_has_kl_log_1000() -> None:
    stats = sm.StackedStats(tuple(int(c) for c in sm.mode_histogram(np.tile([[3, 1, 4]], (26_000, 1)))))
    assert stats.modes_covered == 1 and stats.counts[314] == 26_000
    assert stats.kl == pytest.approx(math.log(1000))


def test_half_the_modes_equally_has_kl_log_2() -> None:
    counts = np.zeros(1000, dtype=np.int64)
    counts[::2] = 52
    assert sm.kl_to_uniform(counts) == pytest.approx(math.log(2))
    assert sm.StackedStats(tuple(int(c) for c in counts)).to_json()["modes"] == 500


def test_kl_splits_into_channel_kls_and_total_correlation() -> None:
    """Independent channels: the KL is the sum of the channels' KLs; copies of one channel: the rest is the total
    correlation."""
    rng = np.random.default_rng(0)
    skewed = rng.choice(10, size=(200_000, 3), p=[0.3] + [0.7 / 9] * 9)  # each channel draws 0 too often
    stats = sm.StackedStats(tuple(int(c) for c in sm.mode_histogram(skewed)))
    one = 0.3 * math.log(3.0) + 0.7 * math.log(0.7 / 9 * 10)  # KL of one channel to uniform
    assert stats.channel_kl == pytest.approx((one, one, one), abs=6e-3)  # sampling noise of 200,000
    assert stats.total_correlation == pytest.approx(0.0, abs=5e-3)
    same = np.repeat(rng.integers(0, 10, size=(50_000, 1)), 3, axis=1)  # R = G = B, each uniform
    stats = sm.StackedStats(tuple(int(c) for c in sm.mode_histogram(same)))
    assert stats.channel_kl == pytest.approx((0.0, 0.0, 0.0), abs=1e-3)
    assert stats.total_correlation == pytest.approx(math.log(100), abs=1e-3)  # 10 of 1,000 modes
    assert stats.to_json()["total_correlation"] == pytest.approx(stats.total_correlation)


def test_real_stacks_read_back_as_their_modes() -> None:
    """The judge reads the channels of real held-out stacks: most pictures land on their true mode."""
    x, y = open_stacked_digits(image_size=32).test_batch(500)
    digits, conf = sm.read_channels(x)
    assert digits.shape == (500, 3) and conf.shape == (500, 3)
    modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    assert float((modes == y).float().mean()) > 0.85  # judge ~97 % per channel (fitted on these digits)
    assert sm.stacked_stats(x).modes_covered > 300  # 500 draws of 1,000 uniform modes: ~390 distinct


def test_tiny_stacked_table_has_the_stacked_columns(tmp_path: Path) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "dcgan-stacked-digits.toml").write_text(TINY.format(extra=""))
    (recipes / "stacked-digits-best.toml").write_text(TINY.format(extra="pack = 2"))
    res = CliRunner().invoke(main, ["mode-table", "--datasets", "stacked-digits", "--seeds", "1", "--samples",
                                    "300", "--recipes", str(recipes), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "out" / "modes.json").read_text())
    assert [(r["row"], r["seed"]) for r in data["runs"]] == [("dcgan", 0), ("pacdcgan2", 0), ("best", 5)]
    for r in data["runs"]:
        assert r["n"] == 300 and r["n_modes"] == 1000 and 1 <= r["modes"] <= 300 and r["high_quality"] is None
        assert 0.0 <= r["reverse_kl"] <= math.log(1000) + 1e-9
    summary = {s["row"]: s for s in data["summary"]}
    assert summary["best"]["seed_list"] == [5] and summary["dcgan"]["hq_mean"] is None
    assert summary["dcgan"]["worst_seed"] == 0 and summary["dcgan"]["modes_min"] == data["runs"][0]["modes"]
    md = (tmp_path / "out" / "modes.md").read_text()
    assert "## stacked-digits (1,000 modes)" in md and "| row | samples | modes (worst seed: modes) | KL (max)" in md
    assert "99 modes / KL 3.40" in md and "1000 modes / KL 0.06" in md  # the papers' rows beside ours
    assert "## ring8" not in md and "Next: gandeploy train dcgan stacked-digits" in res.output


def test_stacked_rows_do_not_run_on_the_mixtures(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["mode-table", "--datasets", "ring8", "--rows", "pacdcgan2",
                                    "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "--rows" in res.output and "Traceback" not in res.output


def test_train_ends_with_the_stacked_quality_line(tmp_path: Path) -> None:
    """``gandeploy train dcgan stacked-digits`` ends with modes of 1,000 and KL (before: 'no measure is known')."""
    res = CliRunner().invoke(main, ["train", "dcgan", "stacked-digits", "--steps", "2", "--batch-size", "16",
                                    "--arch", "ngf=4", "--arch", "ndf=4", "--arch", "nz=8", "--arch", "channels=3",
                                    "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert "/1000 modes, KL " in res.output and "26000 samples" in res.output
    quality = json.loads((tmp_path / "run" / "quality.json").read_text())
    assert quality["measure"] == "modes of 1000" and quality["n"] == 26_000 and 0 <= quality["kl"] <= math.log(1000)


def test_real_stacks_cover_every_mode_with_a_small_kl(tmp_path: Path) -> None:
    out = sm.write_real_reference(tmp_path / "ref.json", n=5000)
    for split in ("train", "test"):
        assert out[split]["modes"] >= 990 and out[split]["reverse_kl"] < 0.2  # 5 per mode: ~0.1 from sampling
    assert json.loads((tmp_path / "ref.json").read_text())["train"]["n"] == 5000
