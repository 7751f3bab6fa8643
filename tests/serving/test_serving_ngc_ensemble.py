"""The NGC flavour's models loaded on a real server: ``gandeploy repo --flavour ngc`` (``<name>_seed`` →
native generator → ``<name>_postprocess``, chained by the ``<name>`` ensemble; the translation pipeline calling
its generator) served by the bundled tritonserver, whose pictures must equal the local flavour's.

The bundled tritonserver (nvidia-pytriton) has only the python backend, so the one native model of each export
(``<name>_generator``, ``platform: "onnxruntime_onnx"``) is replaced by a python-backend stand-in with identical
tensors: the same ``config.pbtxt`` (inputs, outputs, reshape, batching; checked unchanged) with ``backend:
"python"``, running the same ``model.onnx`` in an ONNX Runtime session (the local flavour's
``generator_onnx.py``). Everything else of the NGC repository (its seed step, postprocess, ensemble
configs, pipeline limits) is loaded as written. What this cannot show: that NVIDIA's onnxruntime or TensorRT
backends load the native configs (not yet run on a GPU / in the NGC container).
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from PIL import Image
from tritonclient.grpc import model_config_pb2

from gandeploy.serving import client as tc
from gandeploy.serving import backends
from gandeploy.serving.server import TritonServer

pytestmark = pytest.mark.e2e
BACKENDS = Path(backends.__file__).parent
SAMPLING = ("cgan-tiny", "dcgan-tiny", "infogan-tiny", "mlp-tiny")


def _config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def python_stand_in(ngc_model: Path, local_model: Path) -> None:
    """Turn the NGC repository's native ONNX generator ``ngc_model`` into a python-backend model with the same
    tensors, running ``model.onnx`` as the local flavour's generator ``local_model`` does."""
    path = ngc_model / "config.pbtxt"
    cfg = _config(path)
    assert cfg.platform == "onnxruntime_onnx" and (ngc_model / "1" / "model.onnx").is_file(), cfg.platform
    tensors = [m.SerializeToString() for m in (*cfg.input, *cfg.output)]
    batching = (cfg.max_batch_size, cfg.dynamic_batching.SerializeToString())
    cfg.ClearField("platform")
    cfg.ClearField("default_model_filename")
    cfg.backend = "python"
    for key, value in _config(local_model / "config.pbtxt").parameters.items():
        if key not in cfg.parameters:  # onnx_file, intra_op_threads, size_multiple: the stand-in's own
            cfg.parameters[key].string_value = value.string_value
    assert [m.SerializeToString() for m in (*cfg.input, *cfg.output)] == tensors  # identical tensors
    assert (cfg.max_batch_size, cfg.dynamic_batching.SerializeToString()) == batching
    path.write_text(text_format.MessageToString(cfg))
    for code in local_model.glob("1/*.py"):
        shutil.copy(code, ngc_model / "1" / code.name)


def _ports() -> list[int]:
    from gandeploy.serving.server import free_port

    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        ports += [] if port in ports else [port]
    return ports


@pytest.fixture(scope="module")
def ngc_repository(exports: dict[str, Path], repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``gandeploy repo --flavour ngc`` of every tiny export, each native generator stood in for."""
    from gandeploy.serving.repository import build_repository

    out = tmp_path_factory.mktemp("ngc-repo") / "model_repository"
    build_repository(exports.values(), out, flavour="ngc")
    native = [d for d in sorted(out.iterdir()) if d.is_dir() and _config(d / "config.pbtxt").platform
              in ("onnxruntime_onnx", "tensorrt_plan")]
    assert [d.name for d in native] == sorted(f"{name}_generator" for name in exports)  # one native model each
    for model in native:
        python_stand_in(model, repository / model.name)
    return out


@pytest.fixture(scope="module")
def ngc_server(ngc_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    http, grpc, metrics = _ports()
    log = tmp_path_factory.mktemp("ngc-log") / "tritonserver.log"
    with TritonServer(ngc_repository, http_port=http, grpc_port=grpc, metrics_port=metrics, log_file=log,
                      ready_timeout=240) as srv:
        yield srv


def test_the_ngc_ensembles_are_what_is_served(ngc_server: TritonServer, ngc_repository: Path) -> None:
    states = ngc_server.model_states()
    assert states and all(s == "READY" for s in states.values()), states
    for name in ("cgan-tiny", "dcgan-tiny", "infogan-tiny"):
        ensemble = _config(ngc_repository / name / "config.pbtxt")
        assert ensemble.platform == "ensemble"
        steps = [s.model_name for s in ensemble.ensemble_scheduling.step]
        assert steps == [f"{name}_seed", f"{name}_generator", f"{name}_postprocess"], steps
    assert {"mlp-tiny_seed", "mlp-tiny_generator"} <= set(states)


@pytest.mark.parametrize("name", SAMPLING)
def test_ngc_pictures_equal_the_local_flavour(name: str, ngc_server: TritonServer, server: TritonServer) -> None:
    seeds = [0, 1, 2, 3, 11, 2**63 - 1]
    ngc = tc.sample(name, seeds, url=ngc_server.http_url, protocol="http")
    local = tc.sample(name, seeds, url=server.http_url, protocol="http")
    assert ngc.shape == local.shape and ngc.dtype == local.dtype, (ngc.shape, local.shape)
    if ngc.dtype == np.uint8:
        np.testing.assert_array_equal(ngc, local)
        assert ngc.std() > 0  # real pictures, not a constant
    else:  # 2D points: the same ONNX graph on the same latents
        np.testing.assert_allclose(ngc, local, rtol=0, atol=1e-6)
    truncated = {"truncation": 0.5}
    np.testing.assert_array_equal(tc.sample(name, seeds[:3], url=ngc_server.grpc_url, **truncated),
                                  tc.sample(name, seeds[:3], url=server.grpc_url, **truncated))


def test_ngc_label_and_codes_equal_the_local_flavour(ngc_server: TritonServer, server: TritonServer) -> None:
    for name, given in (("cgan-tiny", {"label": [2, 0, 1]}), ("infogan-tiny", {"code": 1})):
        np.testing.assert_array_equal(tc.sample(name, [4, 5, 6], url=ngc_server.http_url, protocol="http", **given),
                                      tc.sample(name, [4, 5, 6], url=server.http_url, protocol="http", **given))


def test_ngc_translation_equals_the_local_flavour(ngc_server: TritonServer, server: TritonServer) -> None:
    rng = np.random.default_rng(0)
    pictures = []
    for h, w in ((32, 32), (24, 40), (37, 29)):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
        pictures.append(buf.getvalue())
    ngc = tc.translate("cyclegan-tiny", pictures, url=ngc_server.http_url, protocol="http")
    local = tc.translate("cyclegan-tiny", pictures, url=server.http_url, protocol="http")
    for a, b, src in zip(ngc, local, pictures, strict=True):
        ours, theirs = np.asarray(Image.open(io.BytesIO(a))), np.asarray(Image.open(io.BytesIO(b)))
        assert ours.shape == np.asarray(Image.open(io.BytesIO(src))).shape
        np.testing.assert_array_equal(ours, theirs)


def test_ngc_seed_step_rejects_bad_requests_by_name(ngc_server: TritonServer) -> None:
    """A request the client would refuse, sent raw: the NGC seed step answers INVALID_ARG naming the input."""
    from gandeploy.errors import RequestRejected
    from gandeploy.runtimes.triton_client import TritonClient

    with TritonClient(ngc_server.http_url, "http") as client:
        for feeds, name in (({"seed": np.array([[1]]), "label": np.array([[7]])}, "label"),
                            ({"seed": np.array([[-1]]), "label": np.array([[0]])}, "seed")):
            with pytest.raises(RequestRejected, match=f"input '{name}'") as err:
                client.infer("cgan-tiny", feeds, ["image"])
            assert err.value.invalid_argument
