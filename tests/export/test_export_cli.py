"""``gandeploy export``: the table and next command on success; clean errors naming the flag or file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.runtimes.tensorrt_rt import unavailable_reason

TRT_REASON = unavailable_reason()


def _invoke(*args: str | Path):
    return CliRunner().invoke(main, ["export", *map(str, args)])


def test_cli_export_fp16_prints_table_and_next_command(run_factory, tmp_path: Path) -> None:
    run = run_factory("cgan")
    out = tmp_path / "export" / "cgan-tiny"
    out.mkdir(parents=True)
    (out / "model.plan").write_bytes(b"stale plan from an earlier export")
    result = _invoke(run, "--out", out, "--fp16", "--max-batch", "3", "--generator", "G")
    assert result.exit_code == 0, result.output
    text = result.output
    assert "artifact" in text and "max abs err" in text and "mean abs err" in text
    for name in ("model.onnx", "model.fp16.onnx", "config.json"):
        assert name in text
    assert f"Next: gandeploy repo {out}" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["max_batch"] == 3 and manifest["source_run"] == str(run)
    assert manifest["parity"]["onnxruntime"]["batch_sizes"] == [1, 3]
    if TRT_REASON:  # --fp16 without TensorRT: say so plainly, still exit 0, drop the stale plan
        assert "skipped" in text and manifest["tensorrt"] == {"built": False, "reason": TRT_REASON}
        assert not (out / "model.plan").exists()


def test_default_out_is_export_slash_run_name(run_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_factory("mlp", name="points")
    monkeypatch.chdir(tmp_path)
    result = _invoke(run, "--max-batch", "2")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "export" / "points" / "manifest.json").read_text())
    assert manifest["name"] == "points" and "model.fp16.onnx" not in manifest["files"]
    assert "Next: gandeploy repo export/points" in result.output


def _clean_error(result, *needles: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_missing_run_dir(tmp_path: Path) -> None:
    _clean_error(_invoke(tmp_path / "nope"), "config.json", "nope")


def test_run_dir_without_config(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _clean_error(_invoke(tmp_path / "empty"), "config.json")


def test_corrupt_checkpoint(run_factory) -> None:
    run = run_factory("dcgan")
    (run / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint at all")
    _clean_error(_invoke(run), "latest.pt", "corrupt")


def test_missing_checkpoint(run_factory) -> None:
    run = run_factory("dcgan")
    shutil.rmtree(run / "checkpoints")
    _clean_error(_invoke(run), "checkpoint")


@pytest.mark.parametrize(("args", "needles"), [
    (["--min-size", "30x30"], ["--min-size", "multiples of 4"]),
    (["--opt-size", "abc"], ["--opt-size"]),
    (["--min-size", "128x128", "--max-size", "64x64"], ["--min-size", "--max-size"]),
    (["--min-size", "128x128", "--opt-size", "64x64"], ["--min-size", "--opt-size"]),
    (["--opt-size", "512x512", "--max-size", "256x256"], ["--opt-size", "--max-size"]),
    (["--max-batch", "0"], ["--max-batch"]),
    (["--generator", "G_C"], ["--generator", "G_A", "G_B"]),
    (["--opset", "3"], ["--opset"]),
])
def test_bad_options_for_cyclegan(run_factory, args: list[str], needles: list[str]) -> None:
    _clean_error(_invoke(run_factory("cyclegan"), *args), *needles)


def test_size_flags_rejected_for_sampling_models(run_factory) -> None:
    _clean_error(_invoke(run_factory("dcgan"), "--max-size", "64x64"), "--max-size", "image-to-image")


def test_out_is_a_file(run_factory, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    _clean_error(_invoke(run_factory("dcgan"), "--out", tmp_path / "file"), "file")


@pytest.mark.skipif(TRT_REASON is None, reason="TensorRT and a GPU are present here")
def test_explicit_trt_without_tensorrt_fails_with_reason(run_factory, tmp_path: Path) -> None:
    out = tmp_path / "x"
    _clean_error(_invoke(run_factory("dcgan"), "--trt", "--out", out), "--trt", "TensorRT", TRT_REASON)
    assert not (out / "manifest.json").exists()
