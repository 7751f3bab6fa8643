"""Super-resolution end to end on the real tritonserver: tiny SRVGG x4 and RRDBNet x2 exports, one repository and
one server for this module. Any size and kind of picture in, a PNG ``scale`` x its size out (greyscale, alpha,
16-bit kept), the output pixel limit refused from the header, tiled output equal to PyTorch on the whole picture.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gandeploy.cli import main
from gandeploy.config import RunConfig, save_run_config
from gandeploy.errors import RequestRejected
from gandeploy.registry import get_model
from gandeploy.serving import client as tc
from gandeploy.serving.backends import gd_pictures as pictures
from gandeploy.serving.local import local_translate
from gandeploy.wire import encode_png
from gandeploy.training.checkpoint import save_checkpoint

SR = {"srvgg-x4": ("srvgg", {}), "esrgan-x2": ("esrgan", {"scale": 2})}
MAX_PIXELS = 300_000  # the srvgg repository's limit: a 200x200 input (640,000 output pixels at x4) is refused
TILE = 32


@pytest.fixture(scope="module")
def sr_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from gandeploy.export.pipeline import export_run

    root = tmp_path_factory.mktemp("sr-exports")
    out = {}
    for name, (model, over) in SR.items():
        spec = get_model(model)
        arch = spec.config_cls(**{**spec.tiny, **over})
        torch.manual_seed(0)
        generator = spec.build_generator(arch)
        run = root / "runs" / name
        save_checkpoint(run / "checkpoints" / "latest.pt", {"step": 0, "epoch": 0, "models": {
            k: generator.state_dict() for k in spec.generator_keys}, "optimizers": {}, "extra": {}})
        save_run_config(run, RunConfig(model=model, arch=arch, source="imported:test"))
        out[name] = export_run(run, root / "export" / name, max_batch=8, min_size=(8, 8),
                               opt_size=(16, 16), max_size=(64, 64)).out_dir
    return out


@pytest.fixture(scope="module")
def sr_server(sr_exports: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from gandeploy.serving.repository import build_repository
    from gandeploy.serving.server import TritonServer, free_port

    repo = tmp_path_factory.mktemp("sr-repo") / "model_repository"
    build_repository([sr_exports["srvgg-x4"]], repo, max_pixels=MAX_PIXELS, tile=TILE)  # overlap: measured
    build_repository([sr_exports["esrgan-x2"]], repo)  # the default tile (the export's max size)
    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        ports += [port] if port not in ports else []
    with TritonServer(repo, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2],
                      log_file=repo.parent / "tritonserver.log", ready_timeout=240) as srv:
        yield srv


def encode(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def catalogue() -> dict[str, bytes]:
    """Unusual but valid pictures, by name."""
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (11, 13, 3), dtype=np.uint8)
    frames = [Image.fromarray(rng.integers(0, 256, (9, 10, 3), dtype=np.uint8)).convert("P") for _ in range(3)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=40)
    return {
        "odd-rgb": encode_png(rng.integers(0, 256, (37, 51, 3), dtype=np.uint8)),
        "one-pixel": encode_png(rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)),
        "grey": encode_png(rng.integers(0, 256, (9, 14, 1), dtype=np.uint8)),
        "rgba": encode_png(rng.integers(0, 256, (10, 12, 4), dtype=np.uint8)),
        "rgb16": encode_png(rng.integers(0, 65536, (7, 9, 3)).astype(np.uint16)),
        "grey16": encode_png(rng.integers(0, 65536, (6, 5, 1)).astype(np.uint16)),
        "palette": encode(Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=8)),
        "cmyk-jpeg": encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "animated-gif": gif.getvalue(),
    }


def read(blob: bytes) -> tuple[np.ndarray, int]:
    """(pixels as decoded at full depth, bit depth of the PNG)."""
    pic = pictures.decode_picture(blob, max_pixels=1 << 30)
    full = pic.pixels if pic.alpha is None else np.concatenate([pic.pixels, pic.alpha[:, :, None]], axis=2)
    return full, 16 if pic.maxval > 255 else 8


def test_every_kind_of_picture_comes_back_scale_times_its_size(sr_server, sr_exports) -> None:
    blobs = catalogue()
    served = tc.translate("srvgg-x4", list(blobs.values()), url=sr_server.url("grpc"), protocol="grpc")
    local = local_translate(sr_exports["srvgg-x4"], "onnxruntime", list(blobs.values()))
    expect_channels = {"grey": 1, "grey16": 1, "rgba": 4}
    for (name, blob), out, mine in zip(blobs.items(), served, local, strict=True):
        inp, in_bits = read(blob)
        got, bits = read(out)
        assert got.shape[:2] == (4 * inp.shape[0], 4 * inp.shape[1]), name
        assert got.shape[2] == expect_channels.get(name, 3), name
        assert bits == in_bits, name  # 16-bit in, 16-bit out
        ref, _ = read(mine)  # the in-process path: the same pipeline on ONNX Runtime
        level = 257 if bits == 16 else 1
        assert int(np.abs(got.astype(np.int64) - ref.astype(np.int64)).max()) <= level, name
    rgba_in, _ = read(blobs["rgba"])
    rgba_out, _ = read(served[list(blobs).index("rgba")])
    np.testing.assert_array_equal(rgba_out[:, :, 3], pictures.upscale_alpha(rgba_in[:, :, 3], 4, 255))


def test_the_size_rule_pads_and_crops_back(sr_server, sr_exports) -> None:
    from gandeploy.runtimes.base import open_runtime

    rng = np.random.default_rng(9)
    images = [rng.integers(0, 256, hw + (3,), dtype=np.uint8) for hw in [(5, 7), (1, 1), (33, 2), (16, 16)]]
    served = tc.translate("esrgan-x2", [encode_png(i) for i in images], url=sr_server.url("http"), protocol="http")
    with open_runtime("torch", sr_exports["esrgan-x2"]) as torch_rt:
        for image, blob in zip(images, served, strict=True):
            got = np.asarray(Image.open(io.BytesIO(blob)))
            assert got.shape == (2 * image.shape[0], 2 * image.shape[1], 3)
            job = pictures.Job(pictures.decode_picture(encode_png(image), max_pixels=1 << 20),
                               {**torch_rt_rules(sr_exports["esrgan-x2"])}, {"min_height": 8, "min_width": 8})
            pictures.run_jobs([job], lambda x: torch_rt.run({"image": x})["output"], 1)  # PyTorch, whole picture
            assert int(np.abs(got.astype(int) - job.result().astype(int)).max()) <= 1


def torch_rt_rules(export: Path) -> dict:
    from gandeploy.manifest import load_manifest

    return load_manifest(export).contract.images.to_json()


def test_output_limit_and_broken_pictures_are_refused_and_the_server_stays_ready(sr_server) -> None:
    url = sr_server.url("grpc")
    header_only = encode_png(np.zeros((200, 200, 3), np.uint8))[:33]  # IHDR says 200x200: 640,000 output pixels
    refused = tc.translate_many("srvgg-x4", [header_only, b"\x89PNG\r\n\x1a\n broken", b""], url=url)
    assert all(isinstance(r, RequestRejected) and r.invalid_argument for r in refused), refused
    assert "200x200 gives a 800x800 = 640000 pixel output (scale 4), above the limit of 300000" in str(refused[0])
    assert "image_bytes" in str(refused[1]) and "empty" in str(refused[2])
    ok = tc.translate("srvgg-x4", [encode_png(np.zeros((100, 100, 3), np.uint8))], url=url)  # 160,000: served
    assert Image.open(io.BytesIO(ok[0])).size == (400, 400)


def test_tiled_served_output_equals_the_whole_picture(sr_server, sr_exports, tmp_path: Path) -> None:
    from gandeploy.evaluation.parity.parity import run_parity
    from gandeploy.evaluation.parity.report import write_parity_report

    report = run_parity(sr_exports["srvgg-x4"], ["triton-ensemble"], url=sr_server.url("http"), protocol="http")
    tiled = report.tiled
    assert tiled is not None and tiled.candidate == "triton-ensemble"
    assert tiled.settings["tile"] == [TILE, TILE] and tiled.tiles[0] >= 4 and tiled.tiles[1] >= 4
    assert tiled.enforced, tiled.why_not_enforced  # the overlap covers the measured receptive field
    assert tiled.passed and tiled.share_within >= 0.999 and tiled.worst_levels <= 1, tiled.line()
    assert report.passed
    write_parity_report(report, tmp_path)
    data = json.loads((tmp_path / "parity.json").read_text())["tiled_vs_whole"]
    assert data["worst_pixel_yx"] == tiled.worst_pixel and "Tiled vs whole" in (tmp_path / "parity.md").read_text()
    print(tiled.line())  # the figures, for the report


def test_upscale_cli_writes_one_png_per_picture(sr_server, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for name, blob in list(catalogue().items())[:3]:
        (tmp_path / "in" / f"{name}.png").write_bytes(blob)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["upscale", "srvgg-x4", str(tmp_path / "in"), "--out", str(out),
                                       "--url", sr_server.url("grpc")])
    assert result.exit_code == 0, result.output
    assert "Upscaled 3/3" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["grey.png", "odd-rgb.png", "one-pixel.png"]
    assert Image.open(out / "one-pixel.png").size == (4, 4)
    clash = CliRunner().invoke(main, ["upscale", "srvgg-x4", str(tmp_path / "in" / "grey.png"), "--out",
                                      str(tmp_path / "in"), "--url", sr_server.url("grpc")])
    assert clash.exit_code != 0 and "would overwrite the input" in clash.output


def test_web_page_shows_sr_models_before_and_after(sr_server, tmp_path: Path) -> None:
    from gandeploy.ui.app import Backend, _kind, build_app, upscale_action

    backend = Backend(sr_server.url("http"), "http")
    models = {m.name: m for m in backend.models()}
    assert _kind(models["srvgg-x4"]) == "super-resolution x4" and _kind(models["esrgan-x2"]) == "super-resolution x2"
    build_app(backend, list(models.values()))  # the page builds with the upscale tabs
    upload = tmp_path / "small.png"
    picture = np.random.default_rng(11).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    upload.write_bytes(encode_png(picture))
    (before, after), result, status = upscale_action(backend, models["srvgg-x4"])(str(upload))
    assert before.size == after.size == result.size == (36, 24) and "9x6 → 36x24" in status
    np.testing.assert_array_equal(np.asarray(before), np.repeat(np.repeat(picture, 4, axis=0), 4, axis=1))
    served = tc.translate("srvgg-x4", [upload.read_bytes()], url=sr_server.url("http"), protocol="http")[0]
    np.testing.assert_array_equal(np.asarray(after), np.asarray(Image.open(io.BytesIO(served))))
    upload.write_bytes(b"not a picture")
    compare, result, status = upscale_action(backend, models["srvgg-x4"])(str(upload))
    assert compare is None and result is None and "image_bytes" in status


def test_tiles_without_overlap_fail_the_tiled_check(sr_exports) -> None:
    """The check can fail: tiles cut without the measured receptive field's overlap show seams."""
    from gandeploy.evaluation.parity.parity import run_parity

    report = run_parity(sr_exports["esrgan-x2"], ["onnxruntime"], batch_sizes=[1], tile=16, tile_overlap=0)
    tiled = report.tiled
    assert tiled.candidate == "onnxruntime (in-process)" and tiled.tiles == (4, 4) and tiled.enforced
    assert not tiled.passed and tiled.worst_levels > 1 and not report.passed, tiled.line()
    seamless = run_parity(sr_exports["esrgan-x2"], ["onnxruntime"], batch_sizes=[1], tile=32)  # measured overlap
    assert seamless.tiled.passed and seamless.passed, seamless.tiled.line()


def test_upscale_in_process_with_tiles_matches_the_server(sr_server, sr_exports, tmp_path: Path) -> None:
    picture = np.random.default_rng(12).integers(0, 256, (40, 46, 3), dtype=np.uint8)
    (tmp_path / "p.png").write_bytes(encode_png(picture))
    args = ["upscale", "esrgan-x2", str(tmp_path / "p.png"), "--out", str(tmp_path / "out")]
    local = CliRunner().invoke(main, [*args, "--export", str(sr_exports["esrgan-x2"]), "--tile", "24",
                                      "--tile-overlap", "8"])  # 3x3 tiles, the overlap covers radius 8
    assert local.exit_code == 0, local.output
    tiled = np.asarray(Image.open(tmp_path / "out" / "p.png"))
    served = tc.translate("esrgan-x2", [encode_png(picture)], url=sr_server.url("grpc"))[0]  # one whole tile
    assert tiled.shape == (80, 92, 3)
    assert int(np.abs(tiled.astype(int) - np.asarray(Image.open(io.BytesIO(served))).astype(int)).max()) <= 1
    refused = CliRunner().invoke(main, [*args, "--tile", "24", "--url", sr_server.url("grpc")])
    assert refused.exit_code != 0 and "--tile / --tile-overlap apply with --export" in refused.output
    odd = CliRunner().invoke(main, [*args, "--export", str(sr_exports["esrgan-x2"]), "--tile", "25"])
    assert odd.exit_code != 0 and "--tile must be a positive multiple of 2" in odd.output


def test_evaluate_scores_the_served_sr_model_like_its_export(sr_server, sr_exports, tmp_path: Path) -> None:
    """PSNR / SSIM of the served model (tiled on the server) equal the export's in-process scores on the whole
    held-out photos, beside the same bicubic row."""
    def scores(*args: str) -> dict:
        report = tmp_path / f"rep{len(list(tmp_path.iterdir()))}"
        res = CliRunner().invoke(main, ["evaluate", *args, "--real", "photos", "--metric", "psnr,ssim",
                                        "--report", str(report)])
        assert res.exit_code == 0, res.output
        return json.loads((report / "evaluate.json").read_text())

    served = scores("esrgan-x2", "--url", sr_server.http_url, "--protocol", "http")  # type: ignore[attr-defined]
    local = scores(str(sr_exports["esrgan-x2"]), "--backend", "onnxruntime")
    assert len(served["per_picture"]) == len(local["per_picture"]) == 3
    assert served["bicubic"] == local["bicubic"]
    assert abs(served["model"]["psnr"] - local["model"]["psnr"]) < 0.05, (served["model"], local["model"])
    assert abs(served["model"]["ssim"] - local["model"]["ssim"]) < 1e-3, (served["model"], local["model"])
