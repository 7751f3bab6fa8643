"""Every registered family, end to end: train a tiny model for a few steps, export it, build the repository,
serve all of them from ONE real tritonserver, send one request each through the SDK, run parity (PyTorch vs
ONNX Runtime vs the served generator vs the served ensemble), and send a bad value for EACH served input (and
each raw generator input): INVALID_ARG naming the input, the server still ready.

Driven by ``gandeploy.registry.MODELS`` (``spec.tiny``, ``spec.smoke_dataset``) and each export's
``ServedContract``: a newly registered family is covered without editing this file.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gandeploy.contract import ServedContract, ServedTensor
from gandeploy.evaluation.cases import case_io
from gandeploy.manifest import load_manifest
from gandeploy.models import io as gio
from gandeploy.registry import MODELS
from gandeploy.serving import client as tc
from gandeploy.serving.client import RequestRejected, TritonClient

pytestmark = pytest.mark.e2e

FAMILIES = sorted(MODELS)
MAX_BATCH = 4


def make_run(root: Path, model: str) -> Path:
    """A run dir of ``model`` trained for 2 steps on its smoke data set with its tiny architecture."""
    from gandeploy.training.api import train_run
    from gandeploy.training.task import TrainConfig

    spec = MODELS[model]
    train = TrainConfig(steps=2, batch_size=8, device="cpu", checkpoint_every=2, seed=0)
    return train_run(model, spec.smoke_dataset, train, root / model, arch=dict(spec.tiny))


def export_kwargs(model: str) -> dict[str, Any]:
    """Small export settings; image inputs get min/opt/max sizes around the tiny picture size."""
    spec = MODELS[model]
    cfg = spec.config_cls(**spec.tiny)
    kwargs: dict[str, Any] = {"max_batch": MAX_BATCH}
    if spec.io(cfg).by_role(gio.IMAGE):
        s = int(getattr(cfg, "image_size", 16))
        kwargs.update(min_size=(8, 8), opt_size=(s, s), max_size=(2 * s, 2 * s))
    return kwargs


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """model -> {"export": dir, "contract": ServedContract} for every registered family."""
    from gandeploy.export.pipeline import export_run

    root = tmp_path_factory.mktemp("registry")
    out: dict[str, dict[str, Any]] = {}
    for model in FAMILIES:
        export = export_run(make_run(root / "runs", model), root / "export" / model, **export_kwargs(model)).out_dir
        out[model] = {"export": export, "contract": load_manifest(export).contract}
    return out


@pytest.fixture(scope="module")
def server(built: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real tritonserver serving every family, on free ports."""
    from gandeploy.serving.repository import build_repository
    from gandeploy.serving.server import TritonServer, free_port

    repo = tmp_path_factory.mktemp("registry-repo") / "model_repository"
    build_repository([b["export"] for b in built.values()], repo)
    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        if port not in ports:
            ports.append(port)
    log = repo.parent / "tritonserver.log"
    with TritonServer(repo, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2], log_file=log,
                      ready_timeout=240) as srv:
        yield srv
    shutil.rmtree(repo.parent, ignore_errors=True)


@pytest.mark.parametrize("model", FAMILIES)
def test_one_request_through_the_sdk(server, built, model: str) -> None:
    contract: ServedContract = built[model]["contract"]
    served = tc.served_contract(model, url=server.grpc_url)
    assert served == contract  # the served model's own metadata carries the export's contract
    if contract.translation:
        from PIL import Image

        from gandeploy.evaluation.cases import test_image

        picture = test_image(0, (12, 20), contract.in_channels)
        png = tc.translate(model, [contract.request(images=picture[None])["image_bytes"][0, 0]], url=server.grpc_url)
        assert Image.open(io.BytesIO(png[0])).size == (20 * contract.scale, 12 * contract.scale)  # scale x the input
        return
    out = tc.sample(model, [0, 1, 2], url=server.grpc_url)
    want = contract.outputs[0]
    assert out.shape == (3, *want.dims) and out.dtype == (np.uint8 if want.dtype == "uint8" else np.float32)


@pytest.mark.parametrize("model", FAMILIES)
def test_parity_torch_ort_served_generator_and_ensemble(server, built, model: str) -> None:
    from gandeploy.evaluation.parity.parity import run_parity

    backends = ["onnxruntime", "triton", "triton-ensemble"]
    report = run_parity(built[model]["export"], backends, batch_sizes=[1, 3], url=server.http_url)
    assert report.compared == backends, report.skipped
    assert report.passed, [(r.backend, r.case.label(), r.error, r.breaches) for r in report.failures]


def bad_values(t: ServedTensor) -> list[tuple[np.ndarray, str]]:
    """Bad values for one served input, from its declaration (dtype, role, bounds) alone."""
    shape = (1, *t.dims)
    if t.dtype == "bytes":
        return [(np.array([[b"not a picture"]], dtype=np.object_), "is not a picture")]
    if t.dtype == "int64":
        if t.classes:
            return [(np.full(shape, t.classes, np.int64), "must be in"), (np.full(shape, -1, np.int64), "must be in")]
        return [(np.full(shape, -1, np.int64), "must be in")]  # seeds: 0 .. 2**63 - 1
    cases = [(np.full(shape, np.nan, np.float32), "NaN"), (np.full(shape, np.inf, np.float32), "NaN")]
    if t.role == "truncation":
        from gandeploy.models.io import TRUNCATION_MIN

        cases.append((np.zeros(shape, np.float32), f">= {TRUNCATION_MIN}"))  # below the documented minimum
    return cases


@pytest.mark.parametrize("model", FAMILIES)
def test_bad_value_for_each_served_input_is_invalid_arg(server, built, model: str) -> None:
    contract: ServedContract = built[model]["contract"]
    if contract.translation:
        from gandeploy.evaluation.cases import test_image

        good = contract.request(images=test_image(0, (16, 16), contract.in_channels)[None])
    else:
        good = {**case_io(contract, [1])[1], **({"truncation": np.array([[0.8]], np.float32)}
                                           if contract.has_input("truncation") else {})}
    checked = 0
    with TritonClient(server.grpc_url, "grpc") as client:
        client.infer(model, good, [contract.output_name])  # the good request is served
        for t in contract.inputs:
            for value, text in bad_values(t):
                with pytest.raises(RequestRejected) as info:
                    client.infer(model, {**good, t.name: value}, [contract.output_name])
                assert info.value.invalid_argument, f"{t.name}: {info.value}"
                assert f"'{t.name}'" in str(info.value) and text in str(info.value), str(info.value)
                checked += 1
        pictures = np.zeros((1, 16, 16, contract.in_channels), np.uint8) if contract.translation else None
        feeds = {k: (v[:, None] if v.ndim == 1 else v) for k, v in case_io(contract, [1], pictures)[0].items()}
        for t in contract.generator_inputs:  # the raw generator checks its own inputs the same way
            bad = feeds[t.name].copy()
            if t.classes:
                bad[...] = t.classes  # one past the last class
            elif bad.dtype == np.float32:
                bad.flat[0] = np.nan
            else:
                continue
            with pytest.raises(RequestRejected) as info:
                client.infer(f"{model}_generator", {**feeds, t.name: bad}, [contract.generator_outputs[0].name])
            assert info.value.invalid_argument and f"'{t.name}'" in str(info.value), str(info.value)
            checked += 1
        assert client.server_ready() and client.model_ready(model)
    assert checked >= len(contract.inputs)


@pytest.mark.parametrize("model", [m for m in FAMILIES if not MODELS[m].io(MODELS[m].config_cls(
    **MODELS[m].tiny)).by_role(gio.IMAGE)])
def test_truncation_same_picture_in_process_and_served(server, built, model: str) -> None:
    """Same seed + t → the same output from ONNX Runtime in-process and from the served ensemble; truncation
    changes the picture; t <= 0 or NaN is INVALID_ARG."""
    import onnxruntime as ort

    contract: ServedContract = built[model]["contract"]
    seeds = [3, 4, 5, 6]
    served = tc.sample(model, seeds, truncation=0.5, url=server.grpc_url)
    plain = tc.sample(model, seeds, url=server.grpc_url)
    session = ort.InferenceSession(str(built[model]["export"] / "model.onnx"), providers=["CPUExecutionProvider"])
    out = session.run(None, contract.generator_feeds(seeds, truncation=0.5))[0]
    if contract.points:
        np.testing.assert_allclose(served, out, rtol=0, atol=1e-5)
    else:
        diff = np.abs(served.astype(np.int16) - gio.to_uint8(out, contract.output_range).astype(np.int16))
        assert int(diff.max()) <= 1
    untruncated = session.run(None, contract.generator_feeds(seeds))[0]
    assert np.abs(out - untruncated).max() > 0  # truncation changed the latents and so the (float) output
    if contract.points:
        np.testing.assert_allclose(plain, untruncated, rtol=0, atol=1e-5)
    else:
        assert int(np.abs(plain.astype(np.int16) - gio.to_uint8(untruncated, contract.output_range).astype(np.int16)).max()) <= 1
    for t in (0.0, -1.0, float("nan")):
        with pytest.raises(RequestRejected) as info:
            with TritonClient(server.grpc_url, "grpc") as client:
                client.infer(model, {"seed": np.array([[1]], np.int64), "truncation": np.array([[t]], np.float32),
                                     **{k: v for k, v in case_io(contract, [1])[1].items() if k != "seed"}},
                             [contract.output_name])
        assert info.value.invalid_argument and "'truncation'" in str(info.value)


def _requests_from_input_data(path: Path, tensors: dict[str, ServedTensor]) -> list[dict[str, np.ndarray]]:
    """perf_analyzer's --input-data entries read back as batch-1 Triton requests (b64 BYTES: length-prefixed)."""
    import base64
    import json

    requests = []
    for entry in json.loads(path.read_text())["data"]:
        body = {}
        for name, value in entry.items():
            if "b64" in value:
                raw = base64.b64decode(value["b64"])
                body[name] = np.array([[raw[4:4 + int.from_bytes(raw[:4], "little")]]], dtype=np.object_)
            else:
                body[name] = np.asarray(value["content"], dtype=tensors[name].dtype).reshape(value["shape"])[None]
        requests.append(body)
    return requests


@pytest.mark.parametrize("model", FAMILIES)
def test_bench_input_data_is_accepted_by_the_server(server, built, model: str, tmp_path: Path) -> None:
    """The --input-data JSON 'gandeploy bench' writes (from the declared inputs) passes the served models' input
    checks: every entry sent as written through tritonclient is answered, none refused (perf_analyzer itself
    reads such a file in test_model_analyzer's real run)."""
    from gandeploy.contract import raw_model
    from gandeploy.evaluation.bench.perf_analyzer import write_input_data

    contract: ServedContract = built[model]["contract"]
    files = write_input_data(model, contract, (16, 16), tmp_path)
    assert set(files) == {model, raw_model(model)}
    tensors = {model: {t.name: t for t in contract.inputs},
               raw_model(model): {t.name: t for t in contract.generator_inputs}}
    with TritonClient(server.grpc_url, "grpc") as client:
        for name, path in files.items():
            outputs = [contract.output_name if name == model else contract.generator_outputs[0].name]
            for body in _requests_from_input_data(path, tensors[name]):
                client.infer(name, body, outputs)  # RequestRejected fails the test
