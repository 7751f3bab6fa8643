"""The ``gandeploy`` program's exit: a Ctrl-C that lands after the command's work is done (while the interpreter
shuts down) ends the process quietly, keeping what the command printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# SIGINT from an atexit hook: the moment a user's late Ctrl-C met torch's own atexit hooks in CI.
LATE_CTRL_C = """
import atexit, os, signal, sys, time
atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(5)))
sys.argv = ["gandeploy", *sys.argv[1:]]
from gandeploy.cli import entry
entry()
"""


def run_with_late_ctrl_c(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", LATE_CTRL_C, *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_ctrl_c_during_exit_after_success_is_quiet() -> None:
    done = run_with_late_ctrl_c("export", "--help")
    assert done.returncode == -signal.SIGINT, done
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert "Usage: gandeploy export" in done.stdout  # flushed before the default SIGINT could drop it


def test_ctrl_c_during_exit_after_a_user_error_keeps_the_message() -> None:
    done = run_with_late_ctrl_c("export", "/nonexistent/run-dir")
    assert done.returncode == -signal.SIGINT, done
    assert "Traceback" not in done.stderr, done.stderr
    assert "/nonexistent/run-dir" in done.stderr
