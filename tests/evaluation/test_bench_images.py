"""Megapixels per second for exports with a picture input: decided by declared IO, scale-aware, with a hook."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.errors import UserInputError
from gandeploy.evaluation.bench.megapixels import ImageRow, image_rows
from gandeploy.evaluation.bench.roofline import Roofline
from gandeploy.models.dcgan import DCGANConfig
from gandeploy.models.esrgan import ESRGANConfig

ROOF = Roofline(gflops=100.0, threads=1, sizes=(64,), per_size={"64": 100.0})  # a fixed ceiling: no SGEMM run


@pytest.fixture(scope="module")
def sr_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny x2 RRDBNet (pixel-unshuffle input, size rule 2) exported without FP16."""
    from gandeploy.evaluation.bench.suite import make_run
    from gandeploy.export.pipeline import export_run

    root = tmp_path_factory.mktemp("bench-sr")
    arch = ESRGANConfig(scale=2, num_feat=4, num_block=1, num_grow_ch=4, num_feat_d=4, image_size=16)
    run = make_run(root / "runs" / "x2", "esrgan", arch)
    return export_run(run, root / "export" / "x2", max_batch=1, min_size=(16, 16), opt_size=(16, 16),
                      max_size=(64, 64)).out_dir


def test_image_row_figures() -> None:
    row = ImageRow("onnxruntime", (1000, 1000), 4, [100.0, 200.0, 300.0], gflop=10.0, roofline_gflops=100.0)
    assert row.input_mp_s == pytest.approx(5.0) and row.output_mp_s == pytest.approx(80.0)
    assert row.pct_roofline == pytest.approx(50.0)


def test_rows_per_backend_and_size_with_the_declared_scale(sr_export: Path) -> None:
    calls: list[tuple[int, ...]] = []

    @contextlib.contextmanager
    def served_stand_in(export_dir: Path) -> Iterator:  # the hook: any runner of a uint8 picture
        yield lambda picture: calls.append(picture.shape)

    rows, skipped, roof = image_rows(sr_export, [(32, 32), (64, 48)], ["onnxruntime", "torch", "tensorrt"],
                                     warmup=0, reps=1, roofline=ROOF, openers={"served, tiles off": served_stand_in})
    assert roof is ROOF and "tensorrt" in skipped
    assert [(r.backend, r.hw) for r in rows] == [(b, hw) for b in ("onnxruntime", "torch", "served, tiles off")
                                                 for hw in ((32, 32), (64, 48))]
    assert all(r.scale == 2 and r.output_mp_s == pytest.approx(4 * r.input_mp_s) for r in rows)
    assert rows[1].gflop == pytest.approx(rows[0].gflop * 3)  # FLOPs scale with the input's area
    assert calls == [(32, 32, 3), (64, 48, 3)]


def test_sizes_follow_the_size_rule_and_a_picture_input(sr_export: Path, tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="multiples of 2"):
        image_rows(sr_export, [(33, 32)], roofline=False)
    from gandeploy.evaluation.bench.suite import make_run
    from gandeploy.export.pipeline import export_run

    run = make_run(tmp_path / "runs" / "dcgan", "dcgan", DCGANConfig(nz=8, ngf=8, ndf=8, image_size=32))
    sampling = export_run(run, tmp_path / "export" / "dcgan", max_batch=1).out_dir
    with pytest.raises(UserInputError, match="picture input"):
        image_rows(sampling, roofline=False)


def test_cli_image_sizes_writes_json(sr_export: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["bench", str(sr_export), "--image-sizes", "32x32", "--backends", "onnxruntime",
                                       "--reps", "1", "--warmup", "0", "--report", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r" / "bench-images.json").read_text())
    assert [(r["backend"], r["hw"]) for r in data["rows"]][::2] == [("onnxruntime", [32, 32]),
                                                                    ("onnxruntime pipeline, tiles off", [32, 32])]
    assert data["rows"][0]["output_mp_s"] > 0
    assert "MP/s out" in result.output
    assert np.isfinite(data["rows"][0]["input_mp_s"])


def test_pipeline_rows_tiles_on_and_off_give_the_same_picture(sr_export: Path) -> None:
    """The openers run the served pipeline's rules in-process (PNG in, tiles, PNG out); tiles on and off agree."""
    import io

    from PIL import Image

    from gandeploy.evaluation.bench.bench_pictures import pipeline_label, pipeline_opener

    picture = np.random.default_rng(3).integers(0, 256, (100, 90, 3), dtype=np.uint8)  # 3x2 tiles of 48
    outs = {}
    for tiled in (True, False):
        with pipeline_opener("onnxruntime", 1, tile=48, tiled=tiled)(sr_export) as run_picture:
            outs[tiled] = np.asarray(Image.open(io.BytesIO(run_picture(picture)))).astype(int)
    assert outs[True].shape == outs[False].shape == (200, 180, 3)
    assert np.abs(outs[True] - outs[False]).max() <= 1
    assert pipeline_label("onnxruntime", sr_export, tile=48, tiled=False) == "onnxruntime pipeline, tiles off"
    label = pipeline_label("onnxruntime", sr_export, tile=48)
    assert label.startswith("onnxruntime pipeline, tiles 48+"), label


def test_cli_image_sizes_adds_pipeline_rows_with_the_tile(sr_export: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["bench", str(sr_export), "--image-sizes", "32x32,64x48", "--backends",
                                       "onnxruntime", "--tile", "48", "--reps", "1", "--warmup", "0", "--report",
                                       str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "r" / "bench-images.json").read_text())["rows"]
    backends = [r["backend"] for r in rows]
    assert backends[:2] == ["onnxruntime", "onnxruntime"]
    assert backends[2].startswith("onnxruntime pipeline, tiles 48+") and backends[4:] == [
        "onnxruntime pipeline, tiles off"] * 2
    assert all(r["scale"] == 2 and r["output_mp_s"] > 0 and r["pct_roofline"] is not None for r in rows)
    misplaced = CliRunner().invoke(main, ["bench", str(sr_export), "--tile", "16"])
    assert misplaced.exit_code != 0 and "--tile / --tile-overlap apply with --image-sizes" in misplaced.output
