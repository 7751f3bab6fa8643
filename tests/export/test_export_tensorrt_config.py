"""The TensorRT build path without TensorRT: Polygraphy profiles and loaders, timing-cache vetting, the gate.

These run everywhere (Polygraphy is pure Python; its loaders import TensorRT only when called). The builds
themselves are in test_export_tensorrt.py, which needs TensorRT and a GPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from export_helpers import TINY

from gandeploy.errors import ExportError
from gandeploy.export.onnx2trt import check_context, engine_loader, polygraphy_profile, vet_timing_cache
from gandeploy.export.tensorrt_builds import tensorrt_profile
from gandeploy.registry import get_model
from gandeploy.runtimes.tensorrt_rt import device_memory_bytes, unavailable_reason


def test_profile_covers_every_input_per_axis() -> None:
    spec = get_model("cyclegan")
    io = spec.io(spec.config_cls(**TINY["cyclegan"]))
    sizes = {"min": (16, 32), "opt": (32, 64), "max": (64, 128)}  # non-square: H and W bounded separately
    shapes = tensorrt_profile(io, 4, sizes)
    assert shapes == {"image": ((1, 3, 16, 32), (1, 3, 32, 64), (4, 3, 64, 128))}
    profile = polygraphy_profile(shapes)
    assert profile["image"].min == (1, 3, 16, 32) and profile["image"].max == (4, 3, 64, 128)

    cgan = get_model("cgan")
    shapes = tensorrt_profile(cgan.io(cgan.config_cls(**TINY["cgan"])), 8, None)
    profile = polygraphy_profile(shapes)
    assert set(profile) == {"z", "label"}
    assert profile["label"].min == (1,) and profile["label"].opt == (8,) and profile["label"].max == (8,)


def test_profile_with_min_above_max_is_an_export_error() -> None:
    with pytest.raises(ExportError, match="min <= opt <= max"):
        polygraphy_profile({"image": ((1, 3, 64, 64), (1, 3, 32, 32), (2, 3, 128, 128))})


def test_engine_loader_is_strongly_typed_with_cache_and_workspace(tmp_path: Path) -> None:
    cache = tmp_path / "timing.cache"
    shapes = {"z": ((1, 8), (4, 8), (4, 8))}
    loader = engine_loader(tmp_path / "model.fp16.onnx", shapes, timing_cache=cache, load_cache=True,
                           workspace_bytes=1 << 30, pool_key="WORKSPACE")
    network, config = loader._network, loader._config  # Polygraphy's lazy loaders keep their arguments
    assert network.strongly_typed is True and network.path == str(tmp_path / "model.fp16.onnx")
    assert [p["z"].max for p in config.profiles] == [(4, 8)]
    assert config.memory_pool_limits == {"WORKSPACE": 1 << 30}
    assert config.timing_cache_path == str(cache) and loader.timing_cache_path == str(cache)  # load, then merge
    fresh = engine_loader(tmp_path / "m.onnx", shapes, timing_cache=cache, load_cache=False,
                          workspace_bytes=1, pool_key="WORKSPACE")
    assert fresh._config.timing_cache_path is None and fresh.timing_cache_path == str(cache)


def test_corrupt_timing_cache_is_moved_aside_not_fatal(tmp_path: Path) -> None:
    # ``loads`` stands for TensorRT's deserialisation (IBuilderConfig.create_timing_cache), which needs a GPU
    def loads(data: bytes) -> bool:
        if not data.startswith(b"CACHE"):
            raise RuntimeError("Error Code 1: Serialization (corrupt timing cache)")
        return True

    good, bad, missing = tmp_path / "good.cache", tmp_path / "bad.cache", tmp_path / "none.cache"
    good.write_bytes(b"CACHE entries")
    bad.write_bytes(b"\x00garbage")
    assert vet_timing_cache(good, loads) is True and good.is_file()
    assert vet_timing_cache(bad, loads) is False
    assert not bad.exists() and (tmp_path / "bad.cache.corrupt").read_bytes() == b"\x00garbage"
    assert vet_timing_cache(missing, loads) is False
    assert vet_timing_cache(good, lambda _: False) is False and (tmp_path / "good.cache.corrupt").is_file()


def test_device_memory_prefers_the_v2_attribute() -> None:
    class Engine10:
        device_memory_size = 123

    class Engine11:
        device_memory_size_v2 = 456

    assert device_memory_bytes(Engine10()) == 123 and device_memory_bytes(Engine11()) == 456


def test_missing_execution_context_names_the_flags() -> None:
    # the ICudaEngine contract: create_execution_context() returns None when activation memory does not fit
    class TooBig:
        device_memory_size = 40 << 30

        def create_execution_context(self) -> None:
            return None

    class Fits:
        device_memory_size = 1 << 20

        def create_execution_context(self) -> object:
            return object()

    profile = {"image": ((1, 3, 64, 64), (1, 3, 256, 256), (64, 3, 512, 512))}
    with pytest.raises(ExportError, match=r"\[64, 3, 512, 512\].*40.0 GiB.*--max-batch or --max-size"):
        check_context(TooBig(), profile)
    check_context(Fits(), profile)


def test_gate_names_what_is_missing() -> None:
    reason = unavailable_reason()
    if reason is None:
        pytest.skip("TensorRT and a GPU are present here")
    assert "TensorRT" in reason or "GPU" in reason
