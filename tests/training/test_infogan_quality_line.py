"""``gandeploy train infogan digits`` ends with the code-mapping line and records it in ``quality.json``."""

from __future__ import annotations

from pathlib import Path

from gandeploy.metrics.codes import code_mapping
from gandeploy.registry import get_model
from gandeploy.training.checkpoint import load_generator
from gandeploy.training.quality import read_quality

from training_helpers import cli


def test_infogan_run_ends_with_its_code_mapping(tmp_path: Path) -> None:
    out = tmp_path / "info"
    result = cli("train", "infogan", "digits", "--arch", "ngf=4", "--arch", "ndf=4", "--arch", "nz=8",
                 "--arch", "q_hidden=8", "--batch-size", "16", "--steps", "3", "--device", "cpu", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "Quality: code mapping " in result.output and "no measure is known" not in result.output
    recorded = read_quality(out)
    assert recorded is not None and recorded["measure"] == "code mapping"
    generator, cfg = load_generator(out)
    expected = code_mapping(generator, get_model("infogan").io(cfg.arch))
    assert recorded["value"] == expected.accuracy and recorded["mapping"] == list(expected.mapping)
    assert sorted(recorded["mapping"]) == list(range(10)) and len(recorded["per_code"]) == 10
