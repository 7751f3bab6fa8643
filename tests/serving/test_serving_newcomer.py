"""What a newcomer hits when serving (issue 12), against the real tritonserver: the curl bodies of docs/serving.md
over HTTP, base64 pictures, files the client commands must not clobber, models added while serving, 'gandeploy models',
the served model card."""

from __future__ import annotations

import base64
import json
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.serving import client as tc
from gandeploy.serving.backends import gd_pictures as pictures
from gandeploy.serving.client import RequestRejected, TritonClient

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
SERVING_DOC = README.parent / "docs" / "serving.md"  # the HTTP (curl) section moved here from the README
NP = {"INT64": np.int64, "FP32": np.float32, "UINT8": np.uint8}


def readme_requests() -> list[tuple[str, str]]:
    """(model name, JSON body) of every curl call in docs/serving.md's HTTP section, exactly as written."""
    text = SERVING_DOC.read_text()
    section = text[text.index("## Calling the server over HTTP"):text.index("## The ONNX contract")]
    calls = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for command in re.findall(r"curl .*?-d '(?:[^']*)'", block, re.S):
            name = re.search(r"/v2/models/([\w.-]+)/infer", command).group(1)
            calls.append((name, re.search(r"-d '([^']*)'", command, re.S).group(1)))
    return calls


def tiny_name(readme_name: str) -> str:
    """The README's cgan-digits / dcgan-digits / mlp-ring8 / infogan-digits / cyclegan-digits2inverted → this suite's
    tiny models."""
    return readme_name.split("-")[0] + "-tiny"


def post(url: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - a local test server
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {}, exc.read()


def test_readme_curl_bodies_work_over_http(server) -> None:
    """Item 3: the README had no curl example and a base64 picture was refused as 'not a PNG or JPEG'."""
    calls = readme_requests()
    assert {tiny_name(n) for n, _ in calls} == {"cgan-tiny", "dcgan-tiny", "mlp-tiny", "infogan-tiny",
                                                "cyclegan-tiny"}
    for name, body in calls:
        request = json.loads(body)  # the README's body is valid JSON
        model = tiny_name(name)
        status, headers, raw = post(f"http://{server.http_url}/v2/models/{model}/infer", body.encode())
        assert status == 200, (name, raw[:300])
        # the same inputs through the SDK's binary path (gRPC) must give the same answer
        feeds = {}
        for t in request["inputs"]:
            if t["datatype"] == "BYTES":
                feeds[t["name"]] = np.array([[base64.b64decode(d)] for d in t["data"]], dtype=np.object_)
            else:
                feeds[t["name"]] = np.array(t["data"], NP[t["datatype"]]).reshape(t["shape"])
        with TritonClient(server.grpc_url, "grpc") as client:
            outputs = [t["name"] for t in client.metadata(model)["outputs"]]
            want = client.infer(model, feeds, outputs)
        if "inference-header-content-length" in headers:  # binary output, cut out as the README says
            n = int(headers["inference-header-content-length"])
            header = json.loads(raw[:n])
            size = struct.unpack("<I", raw[n:n + 4])[0]
            png = raw[n + 4:]
            assert header["outputs"][0]["parameters"]["binary_data_size"] == size + 4 == len(png) + 4
            assert png.startswith(pictures.PNG_MAGIC) and png == bytes(want["image_bytes"].reshape(-1)[0])
            continue
        for out in json.loads(raw)["outputs"]:
            got = np.array(out["data"], NP[out["datatype"]]).reshape(out["shape"])
            np.testing.assert_allclose(got, want[out["name"]], rtol=0, atol=1e-6)


def test_base64_image_bytes_are_decoded_binary_stays() -> None:
    """Item 3: base64 text (and a data: URL) decodes to the picture; raw bytes pass through untouched."""
    png = base64.b64decode(readme_requests()[-1][1].split('"data": ["')[1].split('"')[0])
    assert pictures.from_base64(png) is png or pictures.from_base64(png) == png
    assert pictures.from_base64(base64.b64encode(png)) == png
    assert pictures.from_base64(b"data:image/png;base64," + base64.b64encode(png)) == png
    assert pictures.decode_picture(base64.b64encode(png), max_pixels=1 << 20).pixels.shape[:2] == (16, 16)
    with pytest.raises(pictures.PictureError, match="corrupt or truncated GIF"):
        pictures.decode_picture(base64.b64encode(b"GIF89a..."), max_pixels=1 << 20)


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (no pixel data: what a decompression bomb's header looks like)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return pictures.PNG_MAGIC + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        chunk(b"IEND", b"")


def test_huge_picture_is_too_large_not_corrupt(server) -> None:
    """Smaller: a 30000² image was called corrupt; it is too large, and the message gives the limit."""
    with pytest.raises(RequestRejected) as err:
        tc.translate("cyclegan-tiny", [_png_header(30000, 30000)], url=server.grpc_url)
    message = str(err.value)
    assert "too large" in message and "30000x30000" in message and str(4096 * 4096) in message
    assert "corrupt" not in message and err.value.invalid_argument


def test_translate_never_overwrites_its_input(server, tmp_path: Path) -> None:
    """Item 4: 'translate x.png --out DIR' overwrote DIR/x.png, the input."""
    picture = tmp_path / "x.png"
    picture.write_bytes(base64.b64decode(readme_requests()[-1][1].split('"data": ["')[1].split('"')[0]))
    before = picture.read_bytes()
    result = CliRunner().invoke(main, ["translate", "cyclegan-tiny", str(picture), "--out", str(tmp_path),
                                       "--url", server.grpc_url])
    assert result.exit_code == 1 and "would overwrite the input" in result.output, result.output
    assert picture.read_bytes() == before
    result = CliRunner().invoke(main, ["translate", "cyclegan-tiny", str(picture), "--out", str(tmp_path / "out"),
                                       "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "x.png").read_bytes().startswith(pictures.PNG_MAGIC)


def test_sample_next_hint_keeps_label_and_new_file(server, tmp_path: Path, monkeypatch) -> None:
    """Item 5: 'sample --label 7 --out sevens.png' hinted a command without --label, into the same file."""
    out = tmp_path / "sevens.png"
    result = CliRunner().invoke(main, ["sample", "cgan-tiny", "--n", "4", "--label", "2", "--out", str(out),
                                       "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    hint = next(line for line in result.output.splitlines() if line.startswith("Next: "))
    assert hint == f"Next: gandeploy sample cgan-tiny --n 4 --seed 4 --label 2 --out {tmp_path / 'sevens-4.png'}"
    # smaller: the default output is samples/NAME.png (git-ignored), not grid.png in the repository root
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["sample", "dcgan-tiny", "--n", "2", "--url", server.grpc_url])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "samples" / "dcgan-tiny.png").is_file() and not (tmp_path / "grid.png").exists()
    for path in ("samples/dcgan-tiny.png", "translated/x.png"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=README.parent, check=False)
        assert ignored.returncode in (0, 128), path  # 128: not a git checkout (nothing to ignore)


def test_served_model_card(repository: Path) -> None:
    """Model card: README.md in the user-facing model's dir, with the served tensors, hashed like the rest."""
    from gandeploy.serving.repository import verify_repository

    card = (repository / "cgan-tiny" / "README.md").read_text()
    assert card.startswith("# cgan-tiny") and "## Served by Triton as `cgan-tiny`" in card
    for needle in ("| input | `seed` | int64 |", "| input | `label` | int64 |", "| output | `image` | uint8 |",
                   "## Tensor contract", "## Parity with PyTorch", "## Intended use"):
        assert needle in card, needle
    records = verify_repository(repository)
    assert "README.md" in records["cgan-tiny"]["models"]["cgan-tiny"]["files"]


def test_models_added_while_serving_and_listed(exports, tmp_path: Path, ports: list[int]) -> None:
    """Item 10: a model built into a served repository stayed 'unknown', and the error listed nothing."""
    from gandeploy.serving.repository import build_repository
    from gandeploy.serving.server import TritonServer

    repo = tmp_path / "model_repository"
    build_repository([exports["dcgan-tiny"]], repo)
    with TritonServer(repo, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2], poll_seconds=1,
                      log_file=tmp_path / "triton.log", ready_timeout=240) as server:
        with TritonClient(server.grpc_url, "grpc") as client:
            with pytest.raises(RequestRejected) as err:
                client.infer("mlp-tiny", {"seed": np.array([[0]], np.int64)}, ["sample"])
        assert "served here: dcgan-tiny" in str(err.value) and "gandeploy models" in str(err.value)

        build_repository([exports["mlp-tiny"]], repo)  # 'gandeploy repo' into the served repository
        deadline = time.monotonic() + 240  # the server's own ready budget: a loaded machine loads slowly
        while time.monotonic() < deadline and server.model_states().get("mlp-tiny") not in ("READY", "UNAVAILABLE"):
            time.sleep(0.5)
        assert server.model_states().get("mlp-tiny") == "READY", server.model_states()  # loaded, not just late
        points = tc.sample("mlp-tiny", [0, 1], url=server.grpc_url)
        assert points.shape == (2, 2) and points.dtype == np.float32

        result = CliRunner().invoke(main, ["models", "--url", server.http_url, "--protocol", "http"])
        assert result.exit_code == 0, result.output
        text = result.output
        assert "2 user-facing model(s)" in text and "dcgan-tiny  [READY" in text and "mlp-tiny  [READY" in text
        assert "inputs:  seed INT64 [-1, 1]" in text and "outputs: sample FP32 [-1, 2]" in text
        assert "outputs: image UINT8 [-1, 32, 32, 3]" in text and "dcgan-tiny_generator" in text  # internal


def test_results_are_printed_once(exports, tmp_path: Path) -> None:
    """Smaller: results were printed twice (stdout and stderr)."""
    done = subprocess.run([sys.executable, "-m", "gandeploy.cli", "repo", str(exports["mlp-tiny"]), "--out",
                           str(tmp_path / "repo")], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Built" in done.stdout and "model(s) for" not in done.stderr and "Built" not in done.stderr


def test_each_serve_gets_its_own_log(tmp_path: Path) -> None:
    """Smaller: every 'serve' appended to one log file."""
    from gandeploy.cli.serve import default_log_file

    first = default_log_file(tmp_path)
    first.write_text("one run")
    second = default_log_file(tmp_path)
    assert first != second and first.name.startswith("tritonserver-") and not second.exists()
