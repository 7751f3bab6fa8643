"""perf_analyzer helpers: input-data JSON, CSV parsing, batching gain, missing-library reasons."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import numpy as np
import pytest

from gandeploy.errors import BackendUnavailable
from gandeploy.evaluation.bench import perf_analyzer as pa

CSV = """Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,\
Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency
2,180.5,10,200,30,5,900,5,3,10500,12000,13000,15000
1,60.25,10,200,30,5,900,5,3,16000,17000,18000,20000
"""


def test_bytes_tensor_has_length_prefix() -> None:
    raw = base64.b64decode(pa.bytes_tensor_b64([b"\x89PNG..", b"ab"]))
    assert raw[:4] == struct.pack("<I", 6) and raw[4:10] == b"\x89PNG.." and raw[10:14] == struct.pack("<I", 2)


def test_input_data_json() -> None:
    data = pa.input_data_json([{"z": np.arange(4, dtype=np.float32), "label": np.array([3])},
                               {"image_bytes": b"png"}])
    first, second = data["data"]
    assert first["z"] == {"content": [0.0, 1.0, 2.0, 3.0], "shape": [4]} and first["label"]["shape"] == [1]
    assert second["image_bytes"]["shape"] == [1] and "b64" in second["image_bytes"]


def test_parse_csv_and_gain(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_text(CSV)
    points = pa.parse_csv(tmp_path / "out.csv")
    assert [p.concurrency for p in points] == [1, 2]  # sorted
    assert points[0].throughput == 60.25 and points[0].p50_ms == 16.0 and points[1].p99_ms == 15.0
    assert pa.batching_gain(points) == {"1": 1.0, "2": pytest.approx(2.996, abs=1e-3)}
    assert pa.batching_gain(points[1:]) == {}  # no concurrency-1 baseline


def test_missing_libraries_become_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pa, "_missing_libraries", lambda binary, env: ["libb64.so.0d", "libcudart.so.12"])
    try:
        pa.find_perf_analyzer()
    except BackendUnavailable as exc:
        text = str(exc)
        assert "apt-get install libb64-0d" in text or "not installed" in text
        assert "nvidia-cuda-runtime-cu12" in text or "not installed" in text
    else:
        pytest.fail("find_perf_analyzer must refuse when libraries are missing")


def test_export_samples_shapes() -> None:
    from gandeploy.contract import ServedContract
    from gandeploy.models import io as gio

    infogan = gio.GeneratorIO((gio.latent(5), gio.categorical_code(4), gio.continuous_code(2)),
                              (gio.image_output(1, 8, 8),))
    s = pa.export_samples("m", ServedContract.from_io(infogan, max_batch=4), None, count=2)
    assert s["m_generator"][0]["z"].shape == (5,) and s["m"][1]["seed"].tolist() == [1]  # type: ignore[union-attr]
    assert s["m_generator"][1]["code"].tolist() == [1] == s["m"][1]["code"].tolist()  # type: ignore[union-attr]
    np.testing.assert_array_equal(s["m_generator"][1]["continuous"], s["m"][1]["continuous"])  # type: ignore[arg-type]
    assert "truncation" not in s["m"][0]  # optional: perf_analyzer sends the seed-only request
    cyclegan = gio.GeneratorIO((gio.image_input(3),), (gio.image_output(3),))
    t = pa.export_samples("t", ServedContract.from_io(cyclegan, max_batch=4), (8, 12), count=1)
    assert t["t_generator"][0]["image"].shape == (3, 8, 12)  # type: ignore[union-attr]
    assert t["t"][0]["image_bytes"][:4] == b"\x89PNG"  # type: ignore[index]


def test_write_input_data_from_the_declared_inputs(tmp_path: Path) -> None:
    """'gandeploy bench' writes perf_analyzer's --input-data per served model from the contract: seeds (no
    truncation, no latent) for the user-facing model, the latents and codes for the raw generator."""
    import json

    from gandeploy.contract import ServedContract
    from gandeploy.models import io as gio

    infogan = gio.GeneratorIO((gio.latent(5), gio.categorical_code(4)), (gio.image_output(1, 8, 8),))
    contract = ServedContract.from_io(infogan, max_batch=4)
    files = pa.write_input_data("m", contract, None, tmp_path)
    assert files == {"m_generator": tmp_path / "m_generator.input-data.json", "m": tmp_path / "m.input-data.json"}
    served = json.loads(files["m"].read_text())["data"]
    assert [e["seed"]["content"] for e in served] == [[i] for i in range(8)]
    assert all(set(e) == {"seed", "code"} for e in served)
    raw = json.loads(files["m_generator"].read_text())["data"]
    assert raw[0]["z"]["shape"] == [5] and len(raw[0]["z"]["content"]) == 5
    sample = pa.export_samples("m", contract, None)["m"][0]
    cmd = pa.perf_analyzer_command("m", files["m"], "localhost:8001", "grpc", sample)
    assert f"--input-data {files['m']}" in cmd and "--shape seed:1" in cmd and cmd.startswith("perf_analyzer -m m ")
