"""``gandeploy evaluate RUN --compare-runs OTHER``: bicubic | RUN | OTHER | original crops of the held-out photos,
with per-panel crop PSNR-Y and whole-picture scores equal to ``gandeploy evaluate`` of each run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gandeploy.cli import main
from gandeploy.data.photos import HELD_OUT_PHOTOS
from gandeploy.evaluation.evaluate import EvalConfig, evaluate
from gandeploy.evaluation.sr_eval import FIGURE_CROP, FIGURE_ZOOM, held_out_pictures, make_lr
from gandeploy.metrics.sr_metrics import bicubic_upscale, psnr_ssim_y
from gandeploy.training.importers import run_import
from sr_reference_nets import BasicSRRRDBNet, randomised, save_like_basicsr


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two tiny x4 RRDBNets (different weights) imported as run dirs."""
    tmp = tmp_path_factory.mktemp("srcmp")
    runs = []
    for seed in (0, 1):
        ref = randomised(BasicSRRRDBNet(3, 3, scale=4, num_feat=4, num_block=1, num_grow_ch=2), seed=seed, std=0.02)
        save_like_basicsr(ref, tmp / f"net{seed}.pth", ema=ref)
        run_import("esrgan", tmp / f"net{seed}.pth", tmp / f"run{seed}")
        runs.append(tmp / f"run{seed}")
    return runs


def test_compare_runs_writes_crops_figure_and_json(two_runs, tmp_path):
    a, b = two_runs
    res = CliRunner().invoke(main, ["evaluate", str(a), "--compare-runs", str(b), "--real", "photos",
                                    "--report", str(tmp_path / "docs")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "docs" / "sr-crops.json").read_text())
    assert data["panels"] == ["bicubic", "esrgan (run0)", "esrgan (run1)", "original"]
    whole = [evaluate(r, cfg=EvalConfig(real="photos")).summary for r in (a, b)]
    for got, want in zip(data["targets"], whole):
        assert got["model"] == pytest.approx(want["model"]) and got["bicubic"] == pytest.approx(want["bicubic"])
    assert [row["picture"] for row in data["crops"]] == list(HELD_OUT_PHOTOS)
    name, hr = held_out_pictures("photos", 4, 3, None)[0]  # the crop PSNR, computed here from the pictures
    side = min(FIGURE_CROP, hr.shape[1], hr.shape[2])
    top, left = (hr.shape[1] - side) // 2, (hr.shape[2] - side) // 2
    box = (slice(None), slice(top, top + side), slice(left, left + side))
    bic = bicubic_upscale(make_lr(hr, 4), 4)
    assert data["crops"][0]["psnr_y"]["bicubic"] == pytest.approx(psnr_ssim_y(bic[box], hr[box], 0)["psnr"])
    assert data["crops"][0]["psnr_y"]["esrgan (run0)"] != data["crops"][0]["psnr_y"]["esrgan (run1)"]
    with Image.open(tmp_path / "docs" / "sr-crops.png") as img:
        assert img.width >= 4 * side * FIGURE_ZOOM and img.height >= len(HELD_OUT_PHOTOS) * side * FIGURE_ZOOM
        pixels = np.asarray(img.convert("RGB"))
    assert pixels.std() > 10  # pictures, not a blank canvas
    assert "esrgan (run1): PSNR-Y" in res.output


def test_compare_runs_errors_are_one_line(two_runs, tmp_path):
    a, _ = two_runs
    res = CliRunner().invoke(main, ["evaluate", str(a), "--compare-runs", str(tmp_path / "nope"), "--real", "photos",
                                    "--report", str(tmp_path / "r")])
    assert res.exit_code != 0 and "--compare-runs: " in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["evaluate", str(a), "--compare-runs", str(a), "--backend", "onnxruntime"])
    assert res.exit_code != 0 and "--compare-runs compares" in res.output
