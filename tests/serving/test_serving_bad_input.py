"""The bad-input catalog against the real server: every bad request gets an INVALID_ARG-class error naming the
problem (HTTP 400 / gRPC INVALID_ARGUMENT), good requests in the same batch still succeed, and the server
stays READY and keeps answering."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from gandeploy.serving.client import RequestRejected, TritonClient

pytestmark = pytest.mark.e2e


def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


GOOD_PNG = png_bytes(np.random.default_rng(0).integers(0, 255, (24, 24, 3), dtype=np.uint8))


def bomb_png() -> bytes:
    """A 5000x5000 picture (25 M pixels, above the 16.8 M default limit) that compresses to a few KB."""
    return png_bytes(np.zeros((5000, 5000), np.uint8))


def gif_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="GIF")
    return buf.getvalue()


def images(*blobs: bytes) -> dict[str, np.ndarray]:
    return {"image_bytes": np.array([[b] for b in blobs], dtype=np.object_)}


SEEDS = {"seed": np.array([[1]], np.int64)}
CONT = np.zeros((1, 2), np.float32)
# (case id, model, inputs, the text the error must contain)
CATALOG: list[tuple[str, str, Callable[[], dict[str, np.ndarray]], str]] = [
    ("wrong-dtype", "dcgan-tiny", lambda: {"seed": np.array([[1.0]], np.float32)}, "data-type"),
    ("wrong-shape", "dcgan-tiny", lambda: {"seed": np.array([[1, 2]], np.int64)}, "unexpected shape"),
    ("batch-above-max", "dcgan-tiny", lambda: {"seed": np.arange(17, dtype=np.int64)[:, None]}, "batch-size"),
    ("empty-request", "dcgan-tiny", lambda: {}, "missing required input(s) ['seed']"),
    ("unknown-input", "dcgan-tiny", lambda: {**SEEDS, "noise": np.zeros((1, 1), np.float32)}, "noise"),
    ("negative-seed", "dcgan-tiny", lambda: {"seed": np.array([[4], [-1]], np.int64)}, "'seed' must be in"),
    ("missing-label", "cgan-tiny", lambda: SEEDS, "label"),
    ("label-too-big", "cgan-tiny", lambda: {**SEEDS, "label": np.array([[3]], np.int64)}, "'label' must be in [0, 2]"),
    ("label-negative", "cgan-tiny", lambda: {**SEEDS, "label": np.array([[-1]], np.int64)}, "'label' must be in"),
    ("label-wrong-dtype", "cgan-tiny", lambda: {**SEEDS, "label": np.array([[1]], np.int32)}, "data-type"),
    ("truncation-zero", "dcgan-tiny", lambda: {**SEEDS, "truncation": np.array([[0.0]], np.float32)},
     "'truncation' must be a finite number >= 0.02"),
    ("truncation-tiny", "dcgan-tiny", lambda: {**SEEDS, "truncation": np.array([[1e-9]], np.float32)},
     "'truncation' must be a finite number >= 0.02"),  # was accepted, and hung the model instance forever
    ("truncation-negative", "cgan-tiny", lambda: {**SEEDS, "label": np.array([[1]]),
                                                  "truncation": np.array([[-0.5]], np.float32)}, "'truncation' must"),
    ("truncation-nan", "dcgan-tiny", lambda: {**SEEDS, "truncation": np.array([[np.nan]], np.float32)},
     "'truncation' holds NaN"),
    ("truncation-wrong-dtype", "dcgan-tiny", lambda: {**SEEDS, "truncation": np.array([[1]], np.int64)}, "data-type"),
    ("code-too-big", "infogan-tiny", lambda: {**SEEDS, "code": np.array([[10]]), "continuous": CONT},
     "'code' must be in [0, 9]"),
    ("code-missing", "infogan-tiny", lambda: {**SEEDS, "continuous": CONT}, "code"),
    ("continuous-inf", "infogan-tiny", lambda: {**SEEDS, "code": np.array([[1]]),
                                                "continuous": np.array([[np.inf, 0]], np.float32)},
     "'continuous' holds NaN or infinite"),
    ("continuous-wrong-shape", "infogan-tiny", lambda: {**SEEDS, "code": np.array([[1]]),
                                                        "continuous": np.zeros((1, 3), np.float32)}, "unexpected shape"),
    ("raw-code-out-of-range", "infogan-tiny_generator",
     lambda: {"z": np.zeros((1, 8), np.float32), "code": np.array([[12]]), "continuous": CONT}, "'code' must be in"),
    ("raw-continuous-nan", "infogan-tiny_generator",
     lambda: {"z": np.zeros((1, 8), np.float32), "code": np.array([[1]]),
              "continuous": np.array([[0, np.nan]], np.float32)}, "'continuous' holds NaN"),
    ("raw-label-out-of-range", "cgan-tiny_generator",
     lambda: {"z": np.zeros((1, 8), np.float32), "label": np.array([[7]], np.int64)}, "'label' must be in"),
    ("raw-nan-latent", "dcgan-tiny_generator", lambda: {"z": np.full((1, 8), np.nan, np.float32)}, "NaN"),
    ("raw-image-not-multiple-of-4", "cyclegan-tiny_generator",
     lambda: {"image": np.zeros((1, 3, 10, 12), np.float32)}, "multiples of 4"),
    ("raw-image-wrong-channels", "cyclegan-tiny_generator",
     lambda: {"image": np.zeros((1, 1, 12, 12), np.float32)}, "unexpected shape"),
    ("image-empty-bytes", "cyclegan-tiny", lambda: images(b""), "empty"),
    ("image-not-an-image", "cyclegan-tiny", lambda: images(b"hello, I am text"), "not a PNG or JPEG"),
    ("image-corrupt", "cyclegan-tiny", lambda: images(bytes(np.random.default_rng(1).integers(0, 256, 300,
                                                                                               dtype=np.uint8))),
     "not a PNG or JPEG"),
    ("image-truncated-png", "cyclegan-tiny", lambda: images(GOOD_PNG[: len(GOOD_PNG) // 2]), "truncated"),
    ("image-truncated-jpeg", "cyclegan-tiny",
     lambda: images(png_bytes(np.full((40, 40, 3), 99, np.uint8), "JPEG")[:200]), "truncated"),
    ("image-gif", "cyclegan-tiny", lambda: images(gif_bytes()), "must be PNG or JPEG, got GIF"),
    ("image-decompression-bomb", "cyclegan-tiny", lambda: images(bomb_png()), "above the limit"),
    ("image-bad-among-good", "cyclegan-tiny", lambda: images(GOOD_PNG, b"junk"), "picture 1 of 2"),
    ("image-wrong-dtype", "cyclegan-tiny", lambda: {"image_bytes": np.zeros((1, 1), np.float32)}, "data-type"),
]


@pytest.mark.parametrize("case, model, make, text", CATALOG, ids=[c[0] for c in CATALOG])
def test_bad_request_is_invalid_arg(server, protocol: str, case: str, model: str,
                                    make: Callable[[], dict[str, np.ndarray]], text: str) -> None:
    inputs = make()
    outputs = {"cyclegan-tiny": ["image_bytes"], "dcgan-tiny": ["image"], "cgan-tiny": ["image"],
               "infogan-tiny": ["image"]}.get(model, ["output"])
    with TritonClient(server.url(protocol), protocol) as client:
        with pytest.raises(RequestRejected) as info:
            client.infer(model, inputs, outputs)
        assert info.value.invalid_argument, f"{case}: status {info.value.status}: {info.value}"
        assert text in str(info.value), str(info.value)
        assert client.server_ready()


def test_huge_seed_is_valid(server, protocol: str) -> None:
    """Seeds are documented as 0 .. 2**63 - 1: the largest one is served like any other."""
    with TritonClient(server.url(protocol), protocol) as client:
        out = client.infer("dcgan-tiny", {"seed": np.array([[2**63 - 1], [0]], np.int64)}, ["image"])["image"]
    assert out.shape == (2, 32, 32, 3) and out.dtype == np.uint8


def test_bad_requests_do_not_spoil_their_batch(server, protocol: str) -> None:
    """Good and bad requests arriving together (dynamically batched): each bad one fails alone."""
    def call(i: int) -> str:
        with TritonClient(server.url(protocol), protocol) as client:
            try:
                if i % 2:
                    client.infer("cyclegan-tiny", images(b"garbage" if i % 4 == 1 else GOOD_PNG[:60]),
                                 ["image_bytes"])
                else:
                    out = client.infer("cyclegan-tiny", images(GOOD_PNG), ["image_bytes"])["image_bytes"]
                    assert Image.open(io.BytesIO(out[0, 0])).size == (24, 24)
                label = 5 if i % 3 == 0 else 1
                client.infer("cgan-tiny", {"seed": np.array([[i]], np.int64), "label": np.array([[label]])}, ["image"])
                return "ok" if i % 2 == 0 and label == 1 else "unexpected success"
            except RequestRejected as exc:
                return "rejected" if exc.invalid_argument and (i % 2 or i % 3 == 0) else f"wrong error: {exc}"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(24)))
    assert results.count("ok") == sum(1 for i in range(24) if i % 2 == 0 and i % 3), results
    assert set(results) <= {"ok", "rejected"}, results


def test_seed_only_and_truncated_requests_share_a_batch(server, protocol: str) -> None:
    """Requests with and without the optional ``truncation`` arrive together; a bad t fails alone, and a tiny
    one (1e-9, which once looped forever and stalled every request batched with it) is refused at once while
    the smallest accepted t (0.02 as FP32) is served."""
    bad = {2: -1.0, 5: 1e-9}

    def call(i: int) -> str:
        body = {"seed": np.array([[i]], np.int64)}
        if i % 3:
            body["truncation"] = np.array([[(0.5, 0.02)[i % 2] if i % 3 == 1 else bad[i % 6]]], np.float32)
        with TritonClient(server.url(protocol), protocol) as client:
            try:
                out = client.infer("dcgan-tiny", body, ["image"])["image"]
                return "ok" if out.shape == (1, 32, 32, 3) and i % 3 != 2 else "unexpected success"
            except RequestRejected as exc:
                return "rejected" if exc.invalid_argument and i % 3 == 2 and "truncation" in str(exc) else str(exc)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(18)))
    assert results == ["rejected" if i % 3 == 2 else "ok" for i in range(18)], results


def test_server_still_ready_and_answering(server, protocol: str) -> None:
    assert server.is_ready()
    assert set(server.model_states().values()) == {"READY"}
    with TritonClient(server.url(protocol), protocol) as client:
        out = client.infer("cgan-tiny", {"seed": np.array([[0]], np.int64), "label": np.array([[2]], np.int64)},
                           ["image"])["image"]
        png = client.infer("cyclegan-tiny", images(GOOD_PNG), ["image_bytes"])["image_bytes"]
    assert out.shape == (1, 32, 32, 1)
    assert Image.open(io.BytesIO(png[0, 0])).size == (24, 24)
