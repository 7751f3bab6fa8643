"""What a newcomer hits in ``gandeploy train`` (issue 12): resume mistakes and a fast Ctrl-C check."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from training_helpers import TINY_MLP, assert_clean_error, cli, gandeploy_cmd, subprocess_env


def test_resume_without_checkpoint_is_an_error(runs: Path) -> None:
    """Smaller: '--resume' on a directory without a checkpoint silently started a new run."""
    out = runs / "empty"
    out.mkdir()
    result = cli("train", "mlp", "ring8", "--steps", "2", "--out", str(out), "--resume", *TINY_MLP)
    assert_clean_error(result, 1, "--resume", str(out / "checkpoints" / "latest.pt"), "drop --resume")
    assert not (out / "checkpoints").exists()


def test_resume_with_fewer_steps_keeps_config(runs: Path) -> None:
    """Smaller: '--resume --epochs N' shorter than the finished run rewrote config.json with N."""
    out = runs / "done"
    assert cli("train", "mlp", "ring8", "--steps", "6", "--out", str(out), *TINY_MLP).exit_code == 0
    before = (out / "config.json").read_text()
    result = cli("train", "mlp", "ring8", "--steps", "3", "--out", str(out), "--resume")
    assert_clean_error(result, 1, "already holds 6 steps", "--steps", "config.json is unchanged")
    assert (out / "config.json").read_text() == before
    assert json.loads(before)["train"]["steps"] == 6
    result = cli("train", "mlp", "ring8", "--steps", "8", "--out", str(out), "--resume")  # longer: fine
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 8


def test_ctrl_c_exits_130_without_export_hint(runs: Path) -> None:
    """Item 6: Ctrl-C during 'train' exited 0 and suggested 'export', so 'train && export' carried on."""
    out = runs / "stopped"
    latest = out / "checkpoints" / "latest.pt"
    proc = subprocess.Popen(gandeploy_cmd("train", "mlp", "ring8", "--steps", "1000000", "--out", str(out),
                                          *TINY_MLP), env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        csv = out / "losses.csv"
        if csv.is_file() and len(csv.read_text().splitlines()) > 5:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted after step" in stderr and "--resume" in stderr and latest.is_file()
    assert "Next: gandeploy export" not in stdout + stderr
