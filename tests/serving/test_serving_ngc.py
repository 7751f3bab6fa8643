"""``gandeploy repo --flavour ngc``: the release table, the plan-version guard, plan-only generators, and the
image-to-image limits derived per axis from the TensorRT profile."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.errors import UserInputError
from gandeploy.manifest import MANIFEST_FILE, file_entry
from gandeploy.serving import configs as C
from gandeploy.serving import ngc
from gandeploy.serving.backends import gd_pictures as pictures
from gandeploy.serving.tiling import pipeline_settings
from gandeploy.serving.exports import load_export
from gandeploy.serving.repository import build_repository

DEFAULT_TRT = ngc.RELEASES[ngc.DEFAULT_RELEASE].tensorrt


def with_plan(exports: dict[str, Path], name: str, dest: Path, version: str | None,
              profile: dict | None = None) -> Path:
    """A copy of a tiny export with a stand-in model.plan registered the way export_run registers a build."""
    out = Path(shutil.copytree(exports[name], dest / name))
    (out / "model.plan").write_bytes(b"serialized-engine-bytes")
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    manifest["files"]["model.plan"] = file_entry(out / "model.plan", "tensorrt")
    manifest["tensorrt"] = {"built": True, "version": version, "profile": profile or {}}
    if version is None:
        del manifest["tensorrt"]["version"]
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    return out


def test_release_table_and_errors() -> None:
    release = ngc.get_release(None)
    assert release.release == ngc.DEFAULT_RELEASE == "24.10" and release.triton == "2.51.0"
    assert release.image == "nvcr.io/nvidia/tritonserver:24.10-py3"
    with pytest.raises(UserInputError, match="--triton-release.*Choices: .*24.10"):
        ngc.get_release("24.13")
    with pytest.raises(UserInputError, match="--triton-release must look like 24.10"):
        ngc.get_release("latest")


@pytest.mark.parametrize(("built", "target", "ok"), [("10.5.0", "10.5.0.18", True), ("10.5.0.18", "10.5.0.18", True),
                                                      ("10.6.0.26", "10.5.0.18", False), ("11.4.0", "10.5.0.18", False),
                                                      ("", "10.5.0.18", False)])
def test_plan_version_rule(built: str, target: str, ok: bool) -> None:
    assert ngc.same_plan_version(built, target) is ok


def test_plan_choice_reasons() -> None:
    release = ngc.get_release("24.10")
    files = {"files": {"model.plan": {}}}
    assert not ngc.plan_choice({"files": {}}, release).use_plan
    assert "does not record" in ngc.plan_choice(files, release).reason
    foreign = ngc.plan_choice({**files, "tensorrt": {"version": "11.4.0.106"}}, release)
    assert not foreign.use_plan and "11.4.0.106" in foreign.reason and "10.5.0.18" in foreign.reason
    assert "--triton-release" in foreign.reason and "tensorrt==10.5.0" in foreign.reason
    assert ngc.plan_choice({**files, "tensorrt": {"version": "10.5.0"}}, release).use_plan


def test_matching_plan_is_the_only_generator(exports: dict[str, Path], tmp_path: Path) -> None:
    cyc = with_plan(exports, "cyclegan-tiny", tmp_path, DEFAULT_TRT)
    out = build_repository([exports["cgan-tiny"], cyc], tmp_path / "ngc", flavour="ngc").root
    gen = C.read_config(out / "cyclegan-tiny_generator")
    assert gen.platform == "tensorrt_plan" and gen.default_model_filename == "model.plan"
    assert sorted(p.name for p in (out / "cyclegan-tiny_generator" / "1").iterdir()) == ["model.plan"]
    assert list(gen.input[0].dims) == [3, -1, -1] and gen.HasField("dynamic_batching")
    assert not (out / "cyclegan-tiny_generator_trt").exists()  # no unused ONNX Runtime twin on the GPU
    assert C.read_config(out / "cyclegan-tiny").parameters["generator_model"].string_value == "cyclegan-tiny_generator"
    cgan = C.read_config(out / "cgan-tiny_generator")  # no plan: native ONNX Runtime
    assert cgan.platform == "onnxruntime_onnx" and list(cgan.input[1].reshape.shape) == []
    ens = C.read_config(out / "cgan-tiny")  # ngc sampling keeps the ensemble around the native generator
    assert ens.platform == "ensemble" and [s.model_name for s in ens.ensemble_scheduling.step] == [
        "cgan-tiny_seed", "cgan-tiny_generator", "cgan-tiny_postprocess"]
    record = json.loads((out / "cyclegan-tiny" / "gandeploy.json").read_text())
    assert record["triton_release"] == "24.10"
    assert record["models"]["cyclegan-tiny_generator"]["role"] == "generator_trt"


def test_foreign_plan_falls_back_to_onnx_with_a_warning(exports: dict[str, Path], tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    cyc = with_plan(exports, "cyclegan-tiny", tmp_path, "10.8.0.43")
    with caplog.at_level(logging.WARNING):
        out = build_repository([cyc], tmp_path / "ngc", flavour="ngc").root
    gen = C.read_config(out / "cyclegan-tiny_generator")
    assert gen.platform == "onnxruntime_onnx"
    assert sorted(p.name for p in (out / "cyclegan-tiny_generator" / "1").iterdir()) == ["model.onnx"]
    assert "TensorRT 10.8.0.43" in caplog.text and "24.10" in caplog.text
    # the release whose TensorRT built it serves the plan
    out = build_repository([cyc], tmp_path / "ngc25", flavour="ngc", triton_release="25.01").root
    assert C.read_config(out / "cyclegan-tiny_generator").platform == "tensorrt_plan"


def test_cli_takes_the_release_and_names_the_flag(exports: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["repo", str(exports["mlp-tiny"]), "--out", str(tmp_path / "r"), "--flavour", "ngc",
                               "--triton-release", "23.01"])
    assert bad.exit_code == 1 and "--triton-release" in bad.output and "24.10" in bad.output
    assert not (tmp_path / "r").exists()
    ok = runner.invoke(main, ["repo", str(exports["cyclegan-tiny"]), "--out", str(tmp_path / "r"), "--flavour",
                              "ngc", "--triton-release", "24.10"])
    assert ok.exit_code == 0, ok.output
    assert "/dev/shm" in ok.output and "docker compose" in ok.output


def test_tiles_follow_a_non_square_profile(exports: dict[str, Path], tmp_path: Path) -> None:
    profile = {"image": [[1, 3, 8, 16], [1, 3, 32, 32], [8, 3, 32, 64]]}  # H <= 32, W <= 64
    cyc = with_plan(exports, "cyclegan-tiny", tmp_path, DEFAULT_TRT, profile)
    export = load_export(cyc)
    limits = ngc.pipeline_limits(export.manifest.data, export.contract.io.inputs)
    assert (limits.min_height, limits.min_width, limits.max_height, limits.max_width) == (8, 16, 32, 64)
    settings = pipeline_settings(export.manifest.data, export.contract, tile=1000, overlap=4)
    assert (settings.plan.tile_height, settings.plan.tile_width) == (32, 64)  # --tile above the profile: clamped
    with pytest.raises(UserInputError, match="--tile 16 leaves no room"):
        pipeline_settings(export.manifest.data, export.contract, tile=16, overlap=8)
    out = build_repository([cyc], tmp_path / "ngc", flavour="ngc", tile=1000, tile_overlap=4).root
    params = C.read_config(out / "cyclegan-tiny").parameters
    assert {k: int(params[k].string_value) for k in ("tile_height", "tile_width", "min_height", "min_width")} == {
        "tile_height": 32, "tile_width": 64, "min_height": 8, "min_width": 16}
    # every tile the pipeline cuts lands inside the profile, whatever the picture's shape
    for h, w in [(200, 200), (30, 500), (500, 30), (1, 1), (33, 65), (9, 7), (64, 32)]:
        ph, pw = pictures.padded_size(h, w, 4, (8, 16))
        tiles = [(r, c) for r in pictures.axis_tiles(ph, 32, 4) for c in pictures.axis_tiles(pw, 64, 4)]
        th, tw = min(32, ph), min(64, pw)
        assert 8 <= th <= 32 and 16 <= tw <= 64 and th % 4 == 0 and tw % 4 == 0, (h, w, th, tw)
        assert all(r[0] % 4 == 0 and c[0] % 4 == 0 and r[0] + th <= ph and c[0] + tw <= pw for r, c in tiles)


def test_shm_is_sized_from_the_largest_batch(exports: dict[str, Path]) -> None:
    manifest = load_export(exports["cyclegan-tiny"]).manifest.data  # batch 8, max 64x64, 3 -> 3 channels
    assert ngc.shm_bytes(manifest) == int(2 * (8 * 3 * 64 * 64 * 4) * ngc.SHM_MARGIN)
    assert ngc.shm_bytes(manifest, instances=2) == 2 * ngc.shm_bytes(manifest)
