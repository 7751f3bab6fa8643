"""Fixtures for the serving tests: tiny exports made with ``export_run``, a repository, a real tritonserver.

Exports and the repository are built once per session; each test module that needs a server gets its own
(module scope) on free ports. Nothing is mocked: the server is the bundled tritonserver 2.51.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from gandeploy.config import RunConfig, save_run_config
from gandeploy.registry import get_model
from gandeploy.training.checkpoint import save_checkpoint

if TYPE_CHECKING:
    from gandeploy.serving.server import TritonServer

# name -> (model, arch, export_run keyword arguments): the registry's tiny architectures (``spec.tiny``), with
# the few overrides these tests rely on (3 CGAN classes, RGB DCGAN, a 32 px CycleGAN)
OVERRIDES = {
    "cgan-tiny": ("cgan", {"num_classes": 3}, {"max_batch": 16}),
    "dcgan-tiny": ("dcgan", {"channels": 3}, {"max_batch": 16}),
    "infogan-tiny": ("infogan", {}, {"max_batch": 16}),
    "mlp-tiny": ("mlp", {"hidden": 8}, {"max_batch": 16}),
    "cyclegan-tiny": ("cyclegan", {"image_size": 32},
                      {"max_batch": 8, "min_size": (8, 8), "opt_size": (32, 32), "max_size": (64, 64)}),
}
TINY = {name: (model, get_model(model).config_cls(**{**get_model(model).tiny, **over}), kwargs)
        for name, (model, over, kwargs) in OVERRIDES.items()}
# the test repository waits longer for batches to fill, so the batching test does not depend on CPU timing
TEST_QUEUE_DELAY_US = 20_000


def make_run(root: Path, name: str) -> Path:
    """A run dir (config.json + checkpoints/latest.pt) holding a freshly initialised tiny generator."""
    model, arch, _ = TINY[name]
    spec = get_model(model)
    torch.manual_seed(0)
    generator = spec.build_generator(arch)
    run = root / name
    save_checkpoint(run / "checkpoints" / "latest.pt",
                    {"step": 0, "epoch": 0, "models": {k: generator.state_dict() for k in spec.generator_keys},
                     "optimizers": {}, "extra": {}})
    classes = tuple(f"class{i}" for i in range(arch.num_classes)) if spec.num_classes(arch) else None
    dataset = "ring8" if name == "mlp-tiny" else None  # one run that records its data set (evaluate reads it)
    save_run_config(run, RunConfig(model=model, arch=arch, class_names=classes, source="imported:test",
                                   dataset=dataset))
    return run


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> export dir, made by the real ``export_run``."""
    from gandeploy.export.pipeline import export_run

    root = tmp_path_factory.mktemp("serving-exports")
    out = {}
    for name, (_, _, kwargs) in TINY.items():
        run = make_run(root / "runs", name)
        out[name] = export_run(run, root / "export" / name, **kwargs).out_dir
    return out


@pytest.fixture(scope="session")
def repository(exports: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local-flavour repository serving every tiny export."""
    from gandeploy.serving.repository import build_repository

    out = tmp_path_factory.mktemp("serving-repo") / "model_repository"
    build_repository(exports.values(), out, max_queue_delay_us=TEST_QUEUE_DELAY_US)
    return out


@pytest.fixture(scope="module")
def server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """One real tritonserver per test module, on free local ports."""
    from gandeploy.serving.server import TritonServer

    log = tmp_path_factory.mktemp("serving-log") / "tritonserver.log"
    ports = three_ports()
    with TritonServer(repository, http_port=ports[0], grpc_port=ports[1], metrics_port=ports[2], log_file=log,
                      ready_timeout=240) as srv:
        yield srv
    shutil.rmtree(log.parent, ignore_errors=True)


def three_ports() -> list[int]:
    """Three distinct free ports (HTTP, gRPC, metrics)."""
    from gandeploy.serving.server import free_ports

    return free_ports(3)


@pytest.fixture
def ports() -> list[int]:
    """Three distinct free ports for one more server (HTTP, gRPC, metrics)."""
    return three_ports()


@pytest.fixture(params=["http", "grpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)
