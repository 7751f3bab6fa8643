"""The generated model card (README.md beside each export): data set, recipe, quality, parity, tensor contract."""

from __future__ import annotations

import json
from pathlib import Path

from gandeploy.config import QUALITY_FILE
from gandeploy.export.card import CARD_FILE
from gandeploy.export.pipeline import export_run


def test_export_writes_a_card_from_its_files(run_factory, tmp_path: Path) -> None:
    run = run_factory("cgan")
    (run / QUALITY_FILE).write_text(json.dumps({"measure": "label agreement", "value": 0.5,
                                                "line": "label agreement 50.0% over 1000 samples"}))
    result = export_run(run, tmp_path / "export" / "cgan-tiny", fp16=True, max_batch=2)
    card = (result.out_dir / CARD_FILE).read_text()
    manifest = result.manifest
    assert card.startswith("# cgan-tiny") and "Do not edit" in card
    assert "label agreement 50.0% over 1000 samples" in card
    for fmt in ("onnxruntime", "onnxruntime-fp16"):
        assert f"| {fmt} | {manifest['parity'][fmt]['max_abs']:.2e} |" in card
    for t in manifest["inputs"] + manifest["outputs"]:
        assert f"| `{t['name']}` | {t['dtype']} |" in card and t["role"] in card
    config = json.loads((run / "config.json").read_text())
    for key, value in config["arch"].items():
        assert f"{key}={value}" in card
    assert "## Intended use" in card and "## Recipe" in card
    assert CARD_FILE not in manifest["files"]  # derived documentation, not a hashed artifact


def test_card_says_when_quality_was_never_measured(run_factory, tmp_path: Path) -> None:
    result = export_run(run_factory("dcgan"), tmp_path / "e", max_batch=2)
    assert "Not measured" in (result.out_dir / CARD_FILE).read_text()
