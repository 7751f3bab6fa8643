"""Helpers for the training tests: tiny configurations, in-process and subprocess CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from gandeploy.cli import main

REPO = Path(__file__).resolve().parents[2]

# A tiny 2D GAN: trains hundreds of steps per second on one core.
TINY_MLP = ["--arch", "hidden=16", "--arch", "layers=2", "--batch-size", "32", "--device", "cpu"]
# A tiny conditional DCGAN at 32x32 (the smallest size the conv models take).
TINY_CGAN = {"ngf": 8, "ndf": 8, "nz": 8, "embed_dim": 4}
# A tiny InfoGAN on digits.
TINY_INFOGAN = ["--arch", "ngf=4", "--arch", "ndf=4", "--arch", "nz=8", "--arch", "q_hidden=8",
                "--batch-size", "16", "--device", "cpu"]


def cli(*args: str) -> Result:
    """Invoke ``gandeploy ARGS`` in-process."""
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def logged_columns(out: Path, *args: str, columns: tuple[str, ...], steps: int = 3) -> dict[str, list[float]]:
    """Train a tiny InfoGAN with ``args`` for ``steps`` steps into ``out``; each of ``columns`` of its losses.csv."""
    from gandeploy.training.losslog import read_losses

    result = cli("train", "infogan", "digits", *args, "--steps", str(steps), "--out", str(out), *TINY_INFOGAN)
    assert result.exit_code == 0, result.output
    header, rows = read_losses(out / "losses.csv")
    return {c: [r[header.index(c)] for r in rows] for c in columns}


def assert_clean_error(result: Result, code: int, *needles: str) -> None:
    """Exit ``code``, no traceback, and every needle in the message."""
    text = result.output
    assert result.exit_code == code, text
    assert "Traceback" not in text, text
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    for needle in needles:
        assert needle in text, text


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def gandeploy_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gandeploy.cli", *args]


def run_subprocess(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
