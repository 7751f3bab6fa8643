"""The issue's "Done when" chain on the real tritonserver, from checkpoints saved the way upstream saves them:
a BasicSR RRDBNet x2 (``params`` + ``params_ema``) and a Real-ESRGAN SRVGGNetCompact x4, built by the upstream
reference nets (tests/sr/sr_reference_nets.py, no gandeploy code) →
``gandeploy import auto`` → ``export --fp16`` → ``repo --tile 64`` → served → ``gandeploy upscale`` on pictures of
odd sizes (1x1, 37x53, and one cut into at least 4x4 tiles) → each PNG equals the *upstream network's* output on
the same picture (uint8 through its [0, 1] range) within one level on at least 99.9 % of pixels, worst pixel at
most 2 levels.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gandeploy.cli import main
from gandeploy.manifest import load_manifest
from gandeploy.serving.backends.gd_pictures import axis_tiles, round_up
from gandeploy.wire import encode_png
from gandeploy.serving.tiling import pipeline_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sr"))
from sr_reference_nets import BasicSRRRDBNet, SRVGGNetCompact, randomised, save_like_basicsr  # noqa: E402

pytestmark = pytest.mark.e2e
LOG = logging.getLogger(__name__)
TILE = 64
# picture name -> (H, W): one pixel, odd sizes, and one cut into at least 4x4 tiles of TILE at either scale
PICTURES = {"one": (1, 1), "odd": (37, 53), "large": (263, 271)}


def upstream_nets() -> dict[str, tuple[torch.nn.Module, int]]:
    """name -> (upstream network in eval mode, the size multiple its inference pads to), tiny widths."""
    ema = randomised(BasicSRRRDBNet(3, 3, scale=2, num_feat=8, num_block=1, num_grow_ch=4), seed=21, std=0.1)
    with torch.no_grad():  # outputs around mid-grey (std ~20 levels) rather than clipped to black
        ema.conv_last.bias += 0.5
    return {
        "rrdb-x2": (ema, 2),
        "srvgg-x4": (randomised(SRVGGNetCompact(3, 3, num_feat=8, num_conv=3, upscale=4), seed=22), 1),
    }


def save_upstream(name: str, net: torch.nn.Module, path: Path) -> None:
    """BasicSR saves params + params_ema (inference uses params_ema); Real-ESRGAN's released SRVGG files hold
    ``params`` only."""
    if name == "rrdb-x2":
        raw = randomised(BasicSRRRDBNet(3, 3, scale=2, num_feat=8, num_block=1, num_grow_ch=4), seed=23)
        save_like_basicsr(raw, path, ema=net)
    else:
        torch.save({"params": net.state_dict()}, path)


def upstream_upscale(net: torch.nn.Module, multiple: int, picture: np.ndarray) -> np.ndarray:
    """Real-ESRGAN's ``RealESRGANer`` on the whole picture: uint8 / 255, reflect-pad bottom/right to the model's
    multiple (x2: 2), run, crop, ``clamp(0, 1) * 255`` rounded. uint8 [H, W, 3] → [sH, sW, 3]."""
    h, w = picture.shape[:2]
    x = picture.astype(np.float32).transpose(2, 0, 1) / 255.0
    ph, pw = -h % multiple, -w % multiple
    x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > 1 else "edge")
    with torch.no_grad():
        y = net(torch.from_numpy(x)[None])[0].numpy()
    s = y.shape[1] // x.shape[1]
    y = y[:, :h * s, :w * s]
    return np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(1, 2, 0)


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, f"gandeploy {' '.join(args)}:\n{result.output}"
    return result.output


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Upstream checkpoints → import auto → export --fp16 → repo --tile 64 → one tritonserver."""
    from gandeploy.serving.server import TritonServer, free_ports

    root = tmp_path_factory.mktemp("sr-upstream")
    nets = upstream_nets()
    imported = {}
    for name, (net, _) in nets.items():
        pth = root / f"{name}.pth"
        save_upstream(name, net, pth)
        imported[name] = cli("import", "auto", str(pth), "--out", str(root / "runs" / name))
        cli("export", str(root / "runs" / name), "--out", str(root / "export" / name), "--fp16", "--max-batch", "8")
    repo = root / "model_repository"
    cli("repo", *(str(root / "export" / n) for n in nets), "--out", str(repo), "--tile", str(TILE))
    ports = free_ports(3)
    with TritonServer(repo, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2],
                      log_file=root / "tritonserver.log", ready_timeout=240) as srv:
        yield {"root": root, "nets": nets, "imported": imported, "server": srv, "repo": repo}


def test_import_auto_names_the_layout_and_the_container(chain) -> None:
    assert "esrgan" in chain["imported"]["rrdb-x2"] and "params_ema" in chain["imported"]["rrdb-x2"]
    assert "srvgg" in chain["imported"]["srvgg-x4"]


@pytest.mark.parametrize("name", ["rrdb-x2", "srvgg-x4"])
def test_served_upscale_equals_the_upstream_network(chain, name: str) -> None:
    root, (net, multiple) = chain["root"], chain["nets"][name]
    rng = np.random.default_rng(5)
    src = root / f"in-{name}"
    src.mkdir()
    pictures = {}
    for pic, (h, w) in PICTURES.items():
        # smooth structure plus noise: real-looking content that reaches the borders of the value range
        ys, xs = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
        base = 0.5 + 0.45 * np.stack([np.sin(9 * xs + c) * np.cos(7 * ys - c) for c in range(3)], axis=2)
        pictures[pic] = np.clip(base * 255 + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        (src / f"{pic}.png").write_bytes(encode_png(pictures[pic]))
    served_name = json.loads((root / "export" / name / "manifest.json").read_text())["name"]
    export = load_manifest(root / "export" / name)
    params = pipeline_settings(export.data, export.contract, tile=TILE).params()  # what repo --tile 64 wrote
    h, w = PICTURES["large"]
    tiles = [len(axis_tiles(round_up(n, multiple), params[k], params["tile_overlap"]))
             for n, k in ((h, "tile_height"), (w, "tile_width"))]
    assert params["tile_height"] == params["tile_width"] == TILE and min(tiles) >= 4, (params, tiles)
    assert params["min_height"] == params["min_width"] == multiple  # no padding beyond the size rule
    served, fp16 = root / f"out-{name}", root / f"out-{name}-fp16"
    files = [str(src / f"{p}.png") for p in pictures]
    cli("upscale", served_name, *files, "--out", str(served), "--url", chain["server"].url("grpc"))
    # the FP16 file export --fp16 wrote (what TensorRT builds from), in-process with the same tiles
    cli("upscale", served_name, *files, "--out", str(fp16), "--export", str(root / "export" / name),
        "--backend", "onnxruntime-fp16", "--tile", str(TILE))
    figures = {}
    for where, out in (("served", served), ("fp16 tiled", fp16)):
        for pic, picture in pictures.items():
            got = np.asarray(Image.open(out / f"{pic}.png"))
            want = upstream_upscale(net, multiple, picture)
            assert got.shape == want.shape, pic
            diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
            figures[where, pic] = (float((diff <= 1).mean()), int(diff.max()))
    line = f"{name} ({tiles[0]}x{tiles[1]} tiles of {TILE}, overlap {params['tile_overlap']}): " + "; ".join(f"{w} {p} {PICTURES[p][0]}x{PICTURES[p][1]}: {100 * s:.3f} % within one "
                                   f"level, worst {m}" for (w, p), (s, m) in figures.items())
    print(line)
    LOG.info(line)
    for share, worst in figures.values():
        assert share >= 0.999 and worst <= 2, line


def test_bench_image_rows_served_and_tiles_on_off(chain) -> None:
    """``bench EXPORT --image-sizes ... --url``: megapixels per second of the bare runtime, the pipeline
    in-process with tiles on and off, and the served NAME with its repository's tiles (64 here). 256x256 and
    64x64 keep it short (1024x1024 at x4 is a 4096x4096 PNG per call: seconds each on 2 cores)."""
    root = chain["root"]
    export = root / "export" / "srvgg-x4"
    report = root / "bench-srvgg"
    output = cli("bench", str(export), "--image-sizes", "64x64,256x256", "--backends", "onnxruntime",
                 "--url", chain["server"].url("grpc"), "--protocol", "grpc", "--reps", "1", "--warmup", "0", "--report", str(report))
    data = json.loads((report / "bench-images.json").read_text())
    rows = {(r["backend"], tuple(r["hw"])): r for r in data["rows"]}
    name = load_manifest(export).name
    labels = sorted({b for b, _ in rows})
    served = [b for b in labels if b.startswith(f"served {name}, tiles {TILE}+")]
    tiled = [b for b in labels if b.startswith("onnxruntime pipeline, tiles ") and not b.endswith("off")]
    assert served and tiled and "onnxruntime pipeline, tiles off" in labels, (labels, data["skipped"])
    for label in ("onnxruntime", served[0], tiled[0], "onnxruntime pipeline, tiles off"):
        for hw in ((64, 64), (256, 256)):
            row = rows[label, hw]
            assert row["scale"] == 4 and row["output_mp_s"] == pytest.approx(16 * row["input_mp_s"], rel=1e-3)
            assert row["input_mp_s"] > 0 and row["pct_roofline"] is not None
    print(output)
