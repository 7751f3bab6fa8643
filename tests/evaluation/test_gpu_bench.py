"""make gpu-bench's script on a CPU: the one-line refusal without a GPU, and the JSON it writes (--smoke)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gandeploy.evaluation.bench import gpu_bench
from gandeploy.registry import MODELS


def test_no_gpu_is_one_line_and_status_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_bench.main(["--out", str(tmp_path / "g.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA GPU visible" in err and "Traceback" not in err
    assert not (tmp_path / "g.json").exists()
    assert gpu_bench.main(["--device", "cpu", "--out", str(tmp_path / "g.json")]) == 2  # cpu only with --smoke


def test_smoke_json_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    assert gpu_bench.main(["--device", "cpu", "--smoke", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["format"] == gpu_bench.FORMAT and data["smoke"] is True and data["command"].endswith("--smoke "
                                                                                                      f"--out {out}")
    if data["tensorrt"] != "importable":
        assert gpu_bench.NO_TENSORRT in data["notes"]
    train = data["training"]
    assert train["examples_images_s"] > 0 and train["gandeploy_eager_images_s"] > 0 and train["cyclegan_step_s"] > 0
    rows = {r["model"]: r for r in data["inference"]}
    assert set(rows) == set(MODELS)  # every registered family
    for row in rows.values():
        assert row["fp32_items_s"] > 0 and row["fp32_finite"], row
        assert "fp16_items_s" in row or "fp16_error" in row
    assert any("fp32_output_mp_s" in r for r in rows.values())  # the SR rows report megapixels per second
