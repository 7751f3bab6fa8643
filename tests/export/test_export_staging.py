"""A re-export is built beside the old export and swapped in whole: a failed step, Ctrl-C or a kill at any
moment leaves the old complete export (or the new one), never a mix and never nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gandeploy.errors import ExportError
from gandeploy.export import torch2onnx, validate
from gandeploy.export.pipeline import export_run
from gandeploy.manifest import load_manifest, verify_export
from gandeploy.models.io import example_inputs
from gandeploy.runtimes.base import open_runtime
from gandeploy.utils.io import staged_dir, swap_in_dir

from export_helpers import make_run_dir

REPO = Path(__file__).resolve().parents[2]


def snapshot(export_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(export_dir.iterdir())}


def assert_loads(export_dir: Path) -> str:
    """The export verifies against its manifest and its model.onnx runs; returns its creation time."""
    manifest = verify_export(export_dir)
    feeds = example_inputs(manifest.io, 2, seed=1)
    with open_runtime("onnxruntime", export_dir) as rt:  # type: ignore[attr-defined]
        out = rt.run(feeds)
    assert all(np.isfinite(v).all() for v in out.values())
    return str(manifest.data["created"])


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_fp16_breach_on_a_forced_reexport_keeps_the_old_export(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """FP32 passes and is written, then the FP16 check fails: the old export (with its own FP16 file) stays."""
    run = make_run_dir(tmp_path / "runs" / "dcgan-tiny", "dcgan")
    out = tmp_path / "export" / "dcgan-tiny"
    export_run(run, out, fp16=True, max_batch=2)
    before = snapshot(out)
    make_run_dir(run, "dcgan", seed=1)  # retrained: different weights, so a swap would show
    monkeypatch.setattr(validate, "FP16", validate.Tolerance(max_abs=-1.0))
    with pytest.raises(ExportError, match="onnxruntime-fp16.*beyond tolerance"):
        export_run(run, out, fp16=True, max_batch=2, force=True)
    assert snapshot(out) == before
    assert_loads(out)
    assert leftovers(out.parent) == []


def test_ctrl_c_swallowed_by_the_exporter_is_still_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dynamo exporter caught a SIGINT and raised its own error: no TorchScript fallback, KeyboardInterrupt,
    and the earlier export is kept whole."""
    run = make_run_dir(tmp_path / "runs" / "mlp-tiny", "mlp")
    out = tmp_path / "export" / "mlp-tiny"
    export_run(run, out, max_batch=2)
    before = snapshot(out)
    tried: list[str] = []

    def dynamo_hit_by_ctrl_c(*args: object) -> None:
        tried.append("dynamo")
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the signal is delivered here
        except KeyboardInterrupt as exc:
            raise RuntimeError("Failed to export the model with torch.export") from exc

    def torchscript(*args: object) -> None:
        tried.append("torchscript")
        raise AssertionError("fell back after Ctrl-C")

    monkeypatch.setattr(torch2onnx, "_export_dynamo", dynamo_hit_by_ctrl_c)
    monkeypatch.setattr(torch2onnx, "_export_torchscript", torchscript)
    with pytest.raises(KeyboardInterrupt):
        export_run(run, out, max_batch=2, force=True)
    assert tried == ["dynamo"]
    assert snapshot(out) == before and leftovers(out.parent) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_exporter_flag_never_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--exporter dynamo fails when dynamo fails; auto falls back and records why."""
    run = make_run_dir(tmp_path / "runs" / "mlp-tiny", "mlp")

    def broken(*args: object) -> None:
        raise RuntimeError("planted dynamo failure")

    monkeypatch.setattr(torch2onnx, "_export_dynamo", broken)
    with pytest.raises(ExportError, match="planted dynamo failure.*--exporter auto"):
        export_run(run, tmp_path / "a", max_batch=2, exporter="dynamo")
    assert not (tmp_path / "a").exists()
    result = export_run(run, tmp_path / "b", max_batch=2)
    assert result.exporter == "torchscript"
    assert result.manifest["exporter"]["requested"] == "auto"
    assert "planted dynamo failure" in result.manifest["exporter"]["fallback_reason"]


def test_swap_replaces_a_directory_whole(tmp_path: Path) -> None:
    target = tmp_path / "x"
    with staged_dir(target) as staging:
        (staging / "a").write_text("1")
    with staged_dir(target) as staging:
        (staging / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    with pytest.raises(ValueError), staged_dir(target) as staging:
        (staging / "c").write_text("3")
        raise ValueError
    assert sorted(p.name for p in target.iterdir()) == ["b"] and leftovers(tmp_path) == []
    other = tmp_path / "y"
    other.mkdir()
    swap_in_dir(other, target)  # the old one ends up where the new one was
    assert list(target.iterdir()) == [] and (other / "b").is_file()


def test_leftovers_of_a_killed_export_are_cleaned_and_a_half_swap_repaired(tmp_path: Path) -> None:
    """A dead process's staging dir is removed; its old export renamed aside mid-swap is put back."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    target = tmp_path / "x"
    (tmp_path / f".x.staging-{dead}-abc").mkdir()
    (tmp_path / f".x.old-{dead}-abc" / "dir").mkdir(parents=True)
    (tmp_path / f".x.old-{dead}-abc" / "dir" / "manifest.json").write_text("{}")
    with staged_dir(target) as staging:
        assert (target / "manifest.json").is_file()  # repaired before anything else happens
        (staging / "new").write_text("1")
    assert leftovers(tmp_path) == [] and sorted(p.name for p in target.iterdir()) == ["new"]


KILL_SCRIPT = """
import sys
from gandeploy.export.pipeline import export_run
export_run(sys.argv[1], sys.argv[2], fp16=True, max_batch=2, force=True)
"""


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_a_usable_export(tmp_path: Path) -> None:
    """A --force re-export killed (SIGKILL) at several moments of its run: each time the export dir verifies and
    loads, and holds the old export or the new one."""
    run = make_run_dir(tmp_path / "runs" / "mlp-tiny", "mlp")
    out = tmp_path / "export" / "mlp-tiny"
    old = assert_loads(export_run(run, out, fp16=True, max_batch=2).out_dir)
    make_run_dir(run, "mlp", seed=1)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", KILL_SCRIPT, str(run), str(out)]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    full = time.perf_counter() - t0  # one whole re-export, imports included
    seen = set()
    for fraction in (0.5, 0.75, 0.9, 0.97):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(full * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        created = assert_loads(out)
        seen.add("old" if created == old else "new")
        assert json.loads((out / "manifest.json").read_text())["name"] == out.name
        old = created
    assert load_manifest(out).files.keys() >= {"model.onnx", "model.fp16.onnx", "config.json", "generator.pt"}


@pytest.mark.slow
def test_ctrl_c_during_cli_export_exits_130_and_keeps_the_export(tmp_path: Path) -> None:
    """A real SIGINT to ``gandeploy export --force`` at several moments: exit 130 with the old export whole, or
    (too late to stop) the new export made by the dynamo exporter: never a silent TorchScript fallback."""
    run = make_run_dir(tmp_path / "runs" / "mlp-tiny", "mlp")
    out = tmp_path / "export" / "mlp-tiny"
    assert_loads(export_run(run, out, max_batch=2).out_dir)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "gandeploy.cli", "export", str(run), "--out", str(out), "--max-batch", "2",
           "--force"]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    full = time.perf_counter() - t0
    codes = []
    for fraction in (0.4, 0.6, 0.8):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(full * fraction)
        proc.send_signal(signal.SIGINT)
        text = proc.communicate(timeout=300)[0]
        codes.append(proc.returncode)
        finished = "Next: gandeploy repo" in text  # the command's last line: any later SIGINT hits the exit itself
        assert proc.returncode in (0, 130) or (finished and proc.returncode == -signal.SIGINT), text
        assert "Traceback" not in text, text
        assert_loads(out)
        assert load_manifest(out).data["exporter"]["onnx"] == "dynamo", text
        if proc.returncode == 130:
            assert [p for p in leftovers(out.parent) if f"-{proc.pid}-" in p] == []  # its staging dir is gone
    assert 130 in codes  # at least one SIGINT landed mid-export
