"""The golden seed -> latent check: NumPy's ``Generator`` stream decides the served pictures, so every place that
draws latents refuses to load when this NumPy draws differently from the committed draws."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from gandeploy import wire
from gandeploy.contract import ServedContract
from gandeploy.errors import ServingError
from gandeploy.models import io as gio
from gandeploy.models import latent_stream as ls
from gandeploy.registry import MODELS
from gandeploy.serving import repository as R


def _other_numpy(seed: int, nz: int, truncation: float | None = None) -> np.ndarray:
    """What a NumPy with another normal stream would draw (the legacy Mersenne Twister): not the golden map."""
    return np.random.RandomState(seed % 2**32).standard_normal(nz).astype(np.float32)


@pytest.fixture
def fresh_check():  # type: ignore[no-untyped-def]
    ls._problem_once.cache_clear()
    yield
    ls._problem_once.cache_clear()


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``gd_backend_common`` imported as the server imports it: from a model version dir, beside ``gd_wire.py``
    (the repository's copy of gandeploy/wire.py)."""
    shutil.copyfile(R.BACKENDS / R.COMMON, tmp_path / R.COMMON)
    shutil.copyfile(wire.__file__, tmp_path / R.WIRE)
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ("gd_wire", "gd_backend_common")
    for name in names:
        sys.modules.pop(name, None)
    import gd_backend_common

    yield gd_backend_common
    for name in names:
        sys.modules.pop(name, None)


def _contract(model: str) -> ServedContract:
    spec = MODELS[model]
    return ServedContract.from_io(spec.io(spec.config_cls(**spec.tiny)), max_batch=4)


def test_golden_draws_hold_here_and_in_the_served_copy(backend: ModuleType) -> None:
    served = sys.modules["gd_wire"]
    assert served.__file__ != wire.__file__ and served is not wire  # the copy a server imports
    assert ls.latent_stream_problem() is None and served.latent_stream_problem() is None
    assert (served.GOLDEN_LATENTS, served.GOLDEN_NZ, served.GOLDEN_NUMPY) == (ls.GOLDEN_LATENTS, ls.GOLDEN_NZ,
                                                                              ls.GOLDEN_NUMPY)
    for seed, want in ls.GOLDEN_LATENTS.items():
        np.testing.assert_array_equal(gio.latent_from_seed(seed, ls.GOLDEN_NZ), np.asarray(want, np.float32))


def test_contract_records_numpy_for_seeded_models_only() -> None:
    data = json.loads(_contract("dcgan").parameter())
    assert data["latent_stream"]["numpy"] == np.__version__
    assert data["latent_stream"]["golden"]["0"] == list(ls.GOLDEN_LATENTS[0])
    assert "latent_stream" not in _contract("cyclegan").to_json()
    assert ServedContract.from_json(data).to_json() == data  # round trip keeps it


def test_in_process_refuses_a_different_stream(monkeypatch: pytest.MonkeyPatch, fresh_check: None) -> None:
    monkeypatch.setattr(wire, "latent_from_seed", _other_numpy)
    problem = ls.latent_stream_problem("1.26.4")
    assert problem and f"NumPy {np.__version__} draws different latents" in problem and "numpy==1.26.4" in problem
    contract = _contract("dcgan")
    with pytest.raises(ServingError, match="seed -> latent map refuses to load: NumPy"):
        contract.generator_feeds(np.array([1, 2], dtype=np.int64))


def test_local_backend_refuses_a_different_stream(monkeypatch: pytest.MonkeyPatch, fresh_check: None,
                                                  exports: dict[str, Path]) -> None:
    from gandeploy.serving.local import local_runtime

    monkeypatch.setattr(wire, "latent_from_seed", _other_numpy)
    with pytest.raises(ServingError, match="--backend onnxruntime on .* refuses to load: NumPy"):
        local_runtime(exports["cgan-tiny"], "onnxruntime")
    contract, runtime = local_runtime(exports["cyclegan-tiny"], "onnxruntime")  # no latents drawn: loads
    with runtime:
        assert contract.translation


def test_backend_check_names_model_and_recorded_numpy(monkeypatch: pytest.MonkeyPatch, backend: ModuleType) -> None:
    data = json.loads(_contract("cgan").parameter())
    backend.check_latent_stream(data, "cgan")  # the real stream: loads
    monkeypatch.setattr(sys.modules["gd_wire"], "latent_from_seed", _other_numpy)
    data["latent_stream"]["numpy"] = "1.26.4"
    with pytest.raises(RuntimeError, match=r"model 'cgan' refuses to load: NumPy .* than NumPy 1\.26\.4.*where the server"):
        backend.check_latent_stream(data, "cgan")
    backend.check_latent_stream(json.loads(_contract("cyclegan").parameter()), "cyclegan")  # no seeds: loads


@pytest.mark.e2e
@pytest.mark.parametrize("flavour", ["local", "ngc"])
def test_server_refuses_to_load_with_other_draws(flavour: str, exports: dict[str, Path], tmp_path: Path,
                                                 ports: list[int]) -> None:
    """A real tritonserver whose python backend draws another stream (the repository's copy of
    ``latent_from_seed`` switched to another generator, as a NumPy upgrade would) refuses the seed model."""
    from gandeploy.serving.repository import build_repository
    from gandeploy.serving.server import TritonServer

    repo = tmp_path / "model_repository"
    build_repository([exports["cgan-tiny"]], repo, flavour=flavour)
    drawing = "cgan-tiny" if flavour == "local" else "cgan-tiny_seed"
    copy = repo / drawing / "1" / R.WIRE  # the served copy of gandeploy/wire.py
    text = copy.read_text()
    assert "np.random.default_rng(int(seed))" in text
    copy.write_text(text.replace("np.random.default_rng(int(seed))", "np.random.Generator(np.random.MT19937(int(seed)))"))
    if flavour == "ngc":  # the native generator cannot load on the bundled server: keep only the seed step
        for other in repo.iterdir():
            if other.is_dir() and other.name != drawing:
                shutil.rmtree(other)
    server = TritonServer(repo, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2],
                          log_file=tmp_path / "tritonserver.log", ready_timeout=120)
    with pytest.raises(ServingError) as err:
        server.start()
    log = (tmp_path / "tritonserver.log").read_text()
    assert f"model '{drawing}' refuses to load: NumPy" in log, log[-3000:]
    assert drawing in str(err.value)
