"""End to end against the real tritonserver: served outputs equal in-process ONNX Runtime, over HTTP and gRPC.

FP32 outputs of the raw generators match to 1e-5; uint8 pictures and translated PNGs to one level. Dynamic
batching is checked from the server's own statistics. The CLI client commands run against the same server.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from PIL import Image

from gandeploy.cli import main
from gandeploy.models.io import from_uint8, latents_from_seeds, to_uint8
from gandeploy.runtimes.base import open_runtime
from gandeploy.serving import client as tc
from gandeploy.manifest import load_manifest
from gandeploy.serving.backends import gd_pictures as pictures
from gandeploy.serving.configs import read_config

pytestmark = pytest.mark.e2e


def ort_run(export: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(export / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(["output"], feeds)[0]


def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def assert_within_one_level(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    assert int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) <= 1


def test_every_model_is_ready(server, repository: Path) -> None:
    states = server.model_states()
    expected = {p.name for p in repository.iterdir() if (p / "config.pbtxt").is_file()}
    assert set(states) == expected and set(states.values()) == {"READY"}
    assert {"cgan-tiny", "cgan-tiny_generator", "cyclegan-tiny", "cyclegan-tiny_generator"} <= expected


def test_cgan_ensemble_matches_onnxruntime(server, exports, protocol: str) -> None:
    seeds, labels = np.arange(5, 15), np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    served = tc.sample("cgan-tiny", seeds, labels, url=server.url(protocol), protocol=protocol)
    ref = to_uint8(ort_run(exports["cgan-tiny"], {"z": latents_from_seeds(seeds, 8), "label": labels}))
    assert served.shape == (10, 32, 32, 1)
    assert_within_one_level(served, ref)


def test_dcgan_ensemble_matches_onnxruntime_across_batches(server, exports, protocol: str) -> None:
    seeds = np.arange(0, 40)  # max batch 16: three concurrent requests
    served = tc.sample("dcgan-tiny", seeds, url=server.url(protocol), protocol=protocol, batch_size=16)
    ref = to_uint8(ort_run(exports["dcgan-tiny"], {"z": latents_from_seeds(seeds, 8)}))
    assert served.shape == (40, 32, 32, 3)
    assert_within_one_level(served, ref)


def test_same_seed_same_picture_any_batch(server, protocol: str) -> None:
    url = server.url(protocol)
    alone = tc.sample("dcgan-tiny", [123], url=url, protocol=protocol)
    among = tc.sample("dcgan-tiny", [7, 123, 9], url=url, protocol=protocol)
    assert_within_one_level(alone[0:1], among[1:2])


def test_points_model_serves_fp32_samples(server, exports, protocol: str) -> None:
    seeds = np.arange(0, 12)
    served = tc.sample("mlp-tiny", seeds, url=server.url(protocol), protocol=protocol)
    ref = ort_run(exports["mlp-tiny"], {"z": latents_from_seeds(seeds, 2)})
    assert served.dtype == np.float32 and served.shape == (12, 2)
    np.testing.assert_allclose(served, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["cgan-tiny", "dcgan-tiny", "cyclegan-tiny"])
def test_raw_generator_runtime_matches_onnxruntime_fp32(server, exports, protocol: str, name: str) -> None:
    rng = np.random.default_rng(0)
    if name == "cyclegan-tiny":
        feeds = {"image": rng.uniform(-1, 1, (3, 3, 24, 40)).astype(np.float32)}
    else:
        feeds = {"z": rng.standard_normal((6, 8)).astype(np.float32)}
        if name == "cgan-tiny":
            feeds["label"] = np.array([0, 1, 2, 2, 1, 0], np.int64)
    with open_runtime("triton", exports[name], url=server.url(protocol), protocol=protocol) as rt:
        served = rt.run(feeds)["output"]
        assert rt.describe()["model"] == f"{name}_generator"
    np.testing.assert_allclose(served, ort_run(exports[name], feeds), rtol=0, atol=1e-5)


def test_ensemble_runtime_gives_pictures(server, exports, protocol: str) -> None:
    with open_runtime("triton-ensemble", exports["cgan-tiny"], url=server.url(protocol), protocol=protocol) as rt:
        assert rt.input_names == ("seed", "truncation", "label")  # truncation is optional
        out = rt.run({"seed": np.arange(20), "label": np.zeros(20, np.int64)})["image"]  # 2 requests of <= 16
    ref = to_uint8(ort_run(exports["cgan-tiny"], {"z": latents_from_seeds(range(20), 8),
                                                   "label": np.zeros(20, np.int64)}))
    assert_within_one_level(out, ref)


def translation_reference(export: Path, repository: Path, image: np.ndarray) -> np.ndarray:
    """In-process: the documented pad / tile rule (the served tiling, from the pipeline's config), ONNX Runtime,
    stitch and crop back."""
    params = {k: int(v.string_value) for k, v in read_config(repository / "cyclegan-tiny").parameters.items()
              if k in ("min_height", "min_width", "tile_height", "tile_width", "tile_overlap")}
    contract = load_manifest(export).contract
    picture = pictures.decode_picture(png_bytes(image), max_pixels=1 << 30)
    job = pictures.Job(picture, contract.images.to_json(), params)
    pictures.run_jobs([job], lambda x: ort_run(export, {"image": x}), 8)
    return job.result()


def test_translation_matches_onnxruntime(server, exports, repository: Path, protocol: str) -> None:
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 255, hw + (3,), dtype=np.uint8) for hw in [(32, 32), (37, 50), (100, 60), (5, 7)]]
    out = tc.translate("cyclegan-tiny", [png_bytes(p) for p in images], url=server.url(protocol),
                       protocol=protocol)
    for picture, blob in zip(images, out, strict=True):
        served = np.asarray(Image.open(io.BytesIO(blob)))
        assert served.shape == picture.shape  # same size as the input
        assert_within_one_level(served, translation_reference(exports["cyclegan-tiny"], repository, picture))
    # a multiple-of-4 picture inside the size range runs untouched: check against the plain contract too
    plain = to_uint8(ort_run(exports["cyclegan-tiny"], {"image": from_uint8(images[0][None])}))[0]
    assert_within_one_level(np.asarray(Image.open(io.BytesIO(out[0]))), plain)


def test_translation_accepts_jpeg_and_grayscale(server, protocol: str) -> None:
    gray = np.random.default_rng(5).integers(0, 255, (20, 24), dtype=np.uint8)
    rgb = np.random.default_rng(6).integers(0, 255, (20, 24, 3), dtype=np.uint8)
    out = tc.translate("cyclegan-tiny", [png_bytes(gray), png_bytes(rgb, "JPEG")], url=server.url(protocol),
                       protocol=protocol)
    assert [Image.open(io.BytesIO(b)).size for b in out] == [(24, 20), (24, 20)]


def test_dynamic_batching_really_batches(server) -> None:
    """64 concurrent single-sample requests: the generator runs fewer batches than requests."""
    model = "dcgan-tiny_generator"
    with tc.TritonClient(server.grpc_url, "grpc") as client:
        before = client.statistics(model)
    z = np.random.default_rng(0).standard_normal((64, 1, 8)).astype(np.float32)
    errors: list[Exception] = []

    def worker(rows: range) -> None:
        try:
            with tc.TritonClient(server.grpc_url, "grpc") as c:
                for i in rows:
                    c.infer(model, {"z": z[i]}, ["output"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(range(k, 64, 16),)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with tc.TritonClient(server.grpc_url, "grpc") as client:
        after = client.statistics(model)
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    assert inferences == 64
    assert executions < inferences, f"{executions} executions for {inferences} requests: no batching"


def test_metadata_reports_the_contract(server, protocol: str) -> None:
    meta = tc.model_metadata("cgan-tiny", url=server.url(protocol), protocol=protocol)
    assert meta["platform"] == "python" and meta["max_batch_size"] == 16  # local flavour: one python step
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("seed", "INT64", [-1, 1]), ("truncation", "FP32", [-1, 1]), ("label", "INT64", [-1, 1])]
    contract = tc.served_contract("cgan-tiny", url=server.url(protocol), protocol=protocol)
    assert [t.name for t in contract.inputs if t.optional] == ["truncation"] and contract.num_classes == 3
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["outputs"]] == [("image", "UINT8", [-1, 32, 32, 1])]
    meta = tc.model_metadata("cyclegan-tiny", url=server.url(protocol), protocol=protocol)
    assert [(t["name"], t["datatype"]) for t in meta["inputs"] + meta["outputs"]] == [
        ("image_bytes", "BYTES"), ("image_bytes", "BYTES")]


def test_cli_sample_writes_grids(server, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "grid.png"
    result = runner.invoke(main, ["sample", "cgan-tiny", "--n", "4", "--seed", "3", "--out", str(out),
                                  "--url", server.http_url, "--protocol", "http"])
    assert result.exit_code == 0, result.output
    assert "Next:" in result.output and str(out) in result.output
    grid = np.asarray(Image.open(out))
    assert grid.shape == (3 * 34 + 2, 4 * 34 + 2)  # one row per class, seeds 3..6 in the columns
    ref = tc.sample("cgan-tiny", [3, 4, 5, 6], labels=2, url=server.grpc_url)
    assert_within_one_level(grid[2 + 2 * 34:2 + 2 * 34 + 32, 2:2 + 4 * 34].reshape(32, 4, 34)[:, :, :32]
                            .transpose(1, 0, 2)[..., None], ref)
    out2 = tmp_path / "label.png"
    result = runner.invoke(main, ["sample", "cgan-tiny", "--n", "9", "--label", "1", "--out", str(out2),
                                  "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(out2)).shape == (3 * 34 + 2, 3 * 34 + 2)
    result = runner.invoke(main, ["sample", "mlp-tiny", "--n", "50", "--out", str(tmp_path / "pts.npy"),
                                  "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "pts.npy").shape == (50, 2)


def test_cli_translate_writes_pngs_and_reports_failures(server, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i, hw in enumerate([(32, 32), (21, 30), (64, 48)]):
        Image.fromarray(np.full(hw + (3,), 40 * i, np.uint8)).save(src / f"p{i}.png")
    result = CliRunner().invoke(main, ["translate", "cyclegan-tiny", str(src), "--out", str(tmp_path / "out"),
                                       "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.png", "p1.png", "p2.png"]
    assert Image.open(tmp_path / "out" / "p1.png").size == (30, 21)
    # issue 22 item 12: pictures of another size than the export's 32x32 are translated with a warning
    warning = next(line for line in result.output.splitlines() if line.startswith("warning:"))
    assert "p1.png (21x30)" in warning and "p2.png (64x48)" in warning and "p0.png" not in warning
    assert "32x32" in warning and "garbled" in warning
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = CliRunner().invoke(main, ["translate", "cyclegan-tiny", str(src / "broken.png"), str(src / "p0.png"),
                                       "--out", str(tmp_path / "out2"), "--url", server.http_url,
                                       "--protocol", "http"])
    assert result.exit_code == 1
    assert "broken.png" in result.output and "1/2" in result.output
    assert (tmp_path / "out2" / "p0.png").is_file()


def test_cli_models_marks_optional_inputs(server) -> None:
    """Issue 22 item 12: 'gandeploy models' listed truncation like a required input."""
    result = CliRunner().invoke(main, ["models", "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    dcgan = lines[lines.index("dcgan-tiny  [READY, sampling]") + 1]
    assert dcgan.strip() == "inputs:  seed INT64 [-1, 1]; truncation FP32 [-1, 1] (optional)", dcgan


def test_cli_sample_infogan_codes_truncation_and_traverse(server, exports, tmp_path: Path) -> None:
    """--code / --continuous / --truncation reach the served model exactly; --traverse draws one row per
    category with continuous code I swept from -2 to 2; flags a model does not take name themselves."""
    from gandeploy.cli.sample import TRAVERSE_VALUES
    from gandeploy.manifest import load_manifest

    runner = CliRunner()
    contract = load_manifest(exports["infogan-tiny"]).contract
    out = tmp_path / "codes.npy"
    result = runner.invoke(main, ["sample", "infogan-tiny", "--n", "3", "--seed", "4", "--code", "3",
                                  "--continuous", "0.5,-1", "--truncation", "0.7", "--out", str(out),
                                  "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    feeds = contract.generator_feeds([4, 5, 6], code=3, continuous=[0.5, -1], truncation=0.7)
    assert_within_one_level(np.load(out), to_uint8(ort_run(exports["infogan-tiny"], feeds)))
    traverse = tmp_path / "traverse.npy"
    result = runner.invoke(main, ["sample", "infogan-tiny", "--traverse", "1", "--seed", "9", "--out", str(traverse),
                                  "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    grid = np.load(traverse)  # [10 categories * 9 steps, 32, 32, 1], row by row
    cols = len(TRAVERSE_VALUES)
    codes = np.zeros((10 * cols, 2), np.float32)
    codes[:, 1] = np.tile(TRAVERSE_VALUES, 10)
    feeds = contract.generator_feeds([9] * 10 * cols, code=np.repeat(np.arange(10), cols), continuous=codes)
    assert_within_one_level(grid, to_uint8(ort_run(exports["infogan-tiny"], feeds)))
    png = tmp_path / "traverse.png"
    result = runner.invoke(main, ["sample", "infogan-tiny", "--traverse", "0", "--out", str(png),
                                  "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    h, w = np.asarray(Image.open(png)).shape[:2]
    assert h > 10 * 34 and w > cols * 34  # the grid plus its row and column labels
    for args, flag in ((["--label", "1"], "--label"), (["--traverse", "2"], "--traverse"),
                       (["--code", "10"], "'code' must be in"), (["--continuous", "1"], "--continuous")):
        result = runner.invoke(main, ["sample", "infogan-tiny", "--out", str(tmp_path / "x.png"), "--url",
                                      server.grpc_url, *args])
        assert result.exit_code == 1 and flag in result.output, result.output
    result = runner.invoke(main, ["sample", "dcgan-tiny", "--code", "1", "--url", server.grpc_url])
    assert result.exit_code == 1 and "--code does not apply" in result.output, result.output


def test_cli_sample_truncation_sweep(server, exports, tmp_path: Path) -> None:
    """--truncation-sweep: one row per t, the same seeds and labels (seed % classes) in every row; each row equals
    the in-process generator on the truncated latents; bad values and conflicting flags are errors."""
    from gandeploy.manifest import load_manifest

    runner = CliRunner()
    contract = load_manifest(exports["cgan-tiny"]).contract
    out = tmp_path / "sweep.npy"
    result = runner.invoke(main, ["sample", "cgan-tiny", "--n", "4", "--seed", "2", "--truncation-sweep",
                                  "0.25,1,2", "--out", str(out), "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    grid = np.load(out)  # [3 rows * 4 seeds, H, W, C]
    assert grid.shape[0] == 12
    for row, t in enumerate((0.25, 1.0, 2.0)):
        seeds = [2, 3, 4, 5]
        feeds = contract.generator_feeds(seeds, label=np.array(seeds) % 3, truncation=t)
        assert_within_one_level(grid[4 * row:4 * row + 4], to_uint8(ort_run(exports["cgan-tiny"], feeds)))
    png = tmp_path / "sweep.png"
    assert runner.invoke(main, ["sample", "cgan-tiny", "--n", "4", "--truncation-sweep", "0.5,1", "--out", str(png),
                                "--url", server.grpc_url]).exit_code == 0
    assert np.asarray(Image.open(png)).shape[1] > 4 * 34  # the grid plus its row labels
    for args, needle in ((["--truncation-sweep", "0,1"], "numbers >= 0.02"), (["--truncation-sweep", "a"], "numbers"),
                         (["--truncation-sweep", "1", "--truncation", "1"], "drop --truncation")):
        result = runner.invoke(main, ["sample", "cgan-tiny", "--url", server.grpc_url, "--out",
                                      str(tmp_path / "x.png"), *args])
        assert result.exit_code == 1 and needle in result.output, result.output
    result = runner.invoke(main, ["sample", "cyclegan-tiny", "--truncation-sweep", "1", "--url", server.grpc_url])
    assert result.exit_code == 1 and "image-to-image" in result.output, result.output


def test_cli_sample_interpolate(server, exports, tmp_path: Path) -> None:
    """--interpolate A:B --steps K: K frames through the served raw generator; the ends are the served pictures
    of seeds A and B, every frame is ONNX Runtime on the slerped latents; bad pairs name the flag."""
    from gandeploy.serving.interpolation import interpolation_feeds
    from gandeploy.manifest import load_manifest
    from gandeploy.serving.client import sample

    runner = CliRunner()
    contract = load_manifest(exports["cgan-tiny"]).contract
    out = tmp_path / "strip.npy"
    result = runner.invoke(main, ["sample", "cgan-tiny", "--interpolate", "3:11", "--steps", "5", "--label", "2",
                                  "--out", str(out), "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    strip = np.load(out)  # [5, H, W, C]
    ends = sample("cgan-tiny", [3, 11], label=2, url=server.grpc_url)
    assert_within_one_level(strip[[0, -1]], ends)
    feeds = interpolation_feeds(contract, 3, 11, 5, {"label": 2})
    raw = {k: (v.reshape(-1) if v.dtype == np.int64 else v) for k, v in feeds.items()}  # [N, 1] → [N] for ORT
    assert_within_one_level(strip, to_uint8(ort_run(exports["cgan-tiny"], raw)))
    for bad in ("3", "a:b", "-1:2"):
        result = runner.invoke(main, ["sample", "cgan-tiny", "--interpolate", bad, "--url", server.grpc_url])
        assert result.exit_code == 1 and "--interpolate" in result.output, result.output


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_local_inference_equals_the_served_model(server, exports, tmp_path: Path, backend: str) -> None:
    """sample / translate --export DIR --backend KEY run the same contract in-process: the pictures equal the
    served ones (within a level: torch is another runtime), bad pictures fail alone, flags name themselves."""
    runner = CliRunner()
    local = tmp_path / "local.npy"
    args = ["--n", "4", "--seed", "7", "--label", "1", "--truncation", "0.8"]
    result = runner.invoke(main, ["sample", "cgan-tiny", *args, "--export", str(exports["cgan-tiny"]),
                                  "--backend", backend, "--out", str(local)])
    assert result.exit_code == 0 and "in-process" in result.output, result.output
    served = tc.sample("cgan-tiny", range(7, 11), label=1, truncation=0.8, url=server.grpc_url)
    assert_within_one_level(np.load(local), served)

    src = tmp_path / "in"
    src.mkdir()
    picture = (np.arange(40 * 36 * 3).reshape(40, 36, 3) % 251).astype(np.uint8)
    Image.fromarray(picture).save(src / "p.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = runner.invoke(main, ["translate", "cyclegan-tiny", str(src / "p.png"), str(src / "broken.png"),
                                  "--export", str(exports["cyclegan-tiny"]), "--backend", backend,
                                  "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "broken.png" in result.output, result.output  # the bad one fails alone
    mine = np.asarray(Image.open(tmp_path / "out" / "p.png"))
    theirs = np.asarray(Image.open(io.BytesIO(tc.translate("cyclegan-tiny", [(src / "p.png").read_bytes()],
                                                           url=server.grpc_url)[0])))
    assert mine.shape == theirs.shape == picture.shape
    assert_within_one_level(mine[None], theirs[None])


def test_local_inference_errors(exports, tmp_path: Path) -> None:
    runner = CliRunner()
    for args, needle in ((["sample", "cgan-tiny", "--export", str(exports["cgan-tiny"]), "--backend", "triton"],
                          "--backend must be one of"),
                         (["sample", "x", "--export", str(exports["cyclegan-tiny"])], "image-to-image"),
                         (["sample", "x", "--export", str(exports["cgan-tiny"]), "--backend", "onnxruntime-fp16"],
                          "re-export with --fp16"),
                         (["translate", "x", str(tmp_path), "--export", str(exports["cgan-tiny"])], "no picture files")):
        result = runner.invoke(main, [*args, "--out", str(tmp_path / "o.png")] if args[0] == "sample" else args)
        assert result.exit_code in (1, 2) and needle in result.output, result.output
