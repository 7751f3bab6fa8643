"""``gandeploy evaluate`` on super-resolution models: PSNR / SSIM on Y of the whole held-out photos beside
bicubic, equal to an independent computation with the upstream network; the same on an ONNX export; chosen by
the declared IO."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.data.photos import HELD_OUT_PHOTOS, held_out_pairs
from gandeploy.errors import UserInputError
from gandeploy.evaluation.evaluate import EvalConfig, evaluate
from gandeploy.evaluation.sr_eval import SRResult, default_metrics, resolve_metrics
from gandeploy.metrics.sr_metrics import bicubic_upscale, psnr_ssim_y
from gandeploy.registry import get_model
from gandeploy.training.importers import run_import
from sr_reference_nets import BasicSRRRDBNet, randomised, save_like_basicsr


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """A tiny Real-ESRGAN-layout x4 RRDBNet near the identity + upsampling, imported as a run dir."""
    tmp = tmp_path_factory.mktemp("sr")
    ref = randomised(BasicSRRRDBNet(3, 3, scale=4, num_feat=4, num_block=1, num_grow_ch=2), seed=0, std=0.02)
    save_like_basicsr(ref, tmp / "tiny_x4.pth", ema=ref)
    run_import("esrgan", tmp / "tiny_x4.pth", tmp / "run")
    return tmp / "run", ref


def _independent(ref: torch.nn.Module) -> tuple[list[dict], list[dict]]:
    """Scores computed here, from the upstream network and the held-out photos, without gandeploy's evaluator."""
    model, bic = [], []
    for _name, lr, hr in held_out_pairs(4):  # [1, 3, h, w] / [1, 3, H, W] in [0, 1]
        with torch.no_grad():
            out = ref(lr).clamp(0, 1)
        to_u8 = lambda t: np.rint(t[0].numpy() * 255).clip(0, 255).astype(np.uint8)  # noqa: E731
        hr_u8, lr_u8 = to_u8(hr), to_u8(lr)
        model.append(psnr_ssim_y(to_u8(out), hr_u8, 4))
        bic.append(psnr_ssim_y(bicubic_upscale(lr_u8, 4), hr_u8, 4))
    return model, bic


def test_run_dir_scores_equal_an_independent_computation(imported):
    run_dir, ref = imported
    result = evaluate(run_dir, cfg=EvalConfig(real="photos"))
    assert isinstance(result, SRResult)
    s = result.summary
    assert s["n"] == len(HELD_OUT_PHOTOS) and s["crop_border"] == 4 and s["metrics"] == ["psnr", "ssim"]
    assert [r["picture"] for r in result.per_picture] == list(HELD_OUT_PHOTOS)
    model, bic = _independent(ref)
    for row, m, b in zip(result.per_picture, model, bic):
        assert row["psnr"] == pytest.approx(m["psnr"], abs=1e-6) and row["ssim"] == pytest.approx(m["ssim"], abs=1e-8)
        assert row["bicubic_psnr"] == pytest.approx(b["psnr"], abs=1e-9)
    assert 20 < s["bicubic"]["psnr"] < 40  # bicubic x4 on natural photos
    assert s["gain_over_bicubic"]["psnr"] == pytest.approx(s["model"]["psnr"] - s["bicubic"]["psnr"])


def test_onnx_export_scores_like_torch(imported, tmp_path):
    run_dir, _ = imported
    res = CliRunner().invoke(main, ["export", str(run_dir), "--out", str(tmp_path / "export"), "--max-batch", "2",
                                    "--min-size", "16x16", "--max-size", "192x192"])
    assert res.exit_code == 0, res.output
    torch_row = evaluate(run_dir, cfg=EvalConfig(real="photos")).summary["model"]
    onnx_row = evaluate(tmp_path / "export", "onnxruntime", cfg=EvalConfig(real="photos")).summary["model"]
    assert onnx_row["psnr"] == pytest.approx(torch_row["psnr"], abs=0.01)
    assert onnx_row["ssim"] == pytest.approx(torch_row["ssim"], abs=1e-4)


def test_cli_writes_json_markdown_and_figure(imported, tmp_path):
    run_dir, _ = imported
    res = CliRunner().invoke(main, ["evaluate", str(run_dir), "--real", "photos", "--metric", "psnr",
                                    "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert "PSNR" in res.output and "bicubic" in res.output
    data = json.loads((tmp_path / "rep" / "evaluate.json").read_text())
    assert set(data["model"]) == {"psnr"} and "psnr" in data["bicubic"] and len(data["per_picture"]) == 3
    md = (tmp_path / "rep" / "evaluate.md").read_text()
    assert "| bicubic |" in md and "| model |" in md
    from PIL import Image

    with Image.open(tmp_path / "rep" / "evaluate.png") as fig:
        assert fig.width >= 3 * 96 and fig.height >= 3 * 96


def test_metrics_follow_the_declared_io():
    sr_io = get_model("srvgg").io(get_model("srvgg").config_cls(upscale=2))
    gan_io = get_model("dcgan").io(get_model("dcgan").config_cls())
    cyc_io = get_model("cyclegan").io(get_model("cyclegan").config_cls())
    assert default_metrics(sr_io) == ("psnr", "ssim")
    assert default_metrics(gan_io) == ("fid",) and default_metrics(cyc_io) == ("fid",)  # scale 1: distributions
    assert resolve_metrics(("ssim",), sr_io) == ("ssim",)
    with pytest.raises(UserInputError, match="does not upscale"):
        resolve_metrics(("psnr",), cyc_io)
    with pytest.raises(UserInputError, match="takes no picture"):
        resolve_metrics(("psnr",), gan_io)
    with pytest.raises(UserInputError, match="one at a time"):
        resolve_metrics(("psnr", "fid"), sr_io)
    with pytest.raises(UserInputError, match="choose from"):
        resolve_metrics(("lpips",), sr_io)


def test_cli_error_is_one_line(tmp_path):
    torch.save({"params": {"conv_first.weight": torch.zeros(4, 3, 3, 3)}}, tmp_path / "odd.pth")
    res = CliRunner().invoke(main, ["import", "auto", str(tmp_path / "odd.pth"), "--out", str(tmp_path / "run")])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and "closest is esrgan" in res.output


def test_imported_model_without_data_set_asks_for_real(imported):
    run_dir, _ = imported
    with pytest.raises(UserInputError, match="--real"):
        evaluate(run_dir, cfg=EvalConfig())


def test_training_quality_line_and_evaluate_agree(imported):
    """The run's closing PSNR line (sr_psnr) and 'evaluate' measure the same thing the same way."""
    from gandeploy.metrics.sr_psnr import psnr_vs_bicubic
    from gandeploy.training.checkpoint import load_generator

    run_dir, _ = imported
    generator, run = load_generator(run_dir)
    io = get_model(run.model).io(run.arch)
    line = psnr_vs_bicubic(generator.eval(), held_out_pairs(4), 4, io.size_multiple, io.outputs[0].value_range)
    summary = evaluate(run_dir, cfg=EvalConfig(real="photos", metrics=("psnr",))).summary
    assert line.model == pytest.approx(summary["model"]["psnr"], abs=0.01)
    assert line.bicubic == pytest.approx(summary["bicubic"]["psnr"], abs=0.01)


def test_folder_held_out_pictures_are_scored_whole(imported, tmp_path):
    from PIL import Image

    run_dir, _ = imported
    rng = np.random.default_rng(0)
    (tmp_path / "pics").mkdir()
    for i in range(10):  # the 10th is held out
        Image.fromarray(rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)).save(tmp_path / "pics" / f"p{i}.png")
    result = evaluate(run_dir, cfg=EvalConfig(real=f"folder:{tmp_path / 'pics'}"))
    assert [r["picture"] for r in result.per_picture] == ["p9.png"]
    assert result.per_picture[0]["size"] == [36, 44]  # cut to multiples of the scale, not cropped to a square
