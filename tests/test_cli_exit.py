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


# A command whose Ctrl-C a library turns into its own error, the way onnxruntime's import raises
# ImportError("initialization failed") from a KeyboardInterrupt that lands while its C extension loads.
WRAPPING_COMMAND = '''
import os, signal, time
import click

def _ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the handler raises KeyboardInterrupt before this returns

@click.command()
@click.option("--keep-chain/--drop-chain", default=True)
def wrapped(keep_chain):
    try:
        _ctrl_c()
    except KeyboardInterrupt as exc:
        if keep_chain:
            raise ImportError("initialization failed") from exc
    raise RuntimeError("a library that swallowed the interrupt")
'''

RUN_WRAPPING = """
import sys
from gandeploy import cli
cli.COMMANDS["wrapped"] = "wrapping_command:wrapped"
sys.argv = ["gandeploy", *sys.argv[1:]]
cli.entry()
"""


def test_ctrl_c_that_a_library_wraps_in_its_own_error_exits_130(tmp_path: Path) -> None:
    (tmp_path / "wrapping_command.py").write_text(WRAPPING_COMMAND)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO), os.environ.get("PYTHONPATH", "")])}
    for flag in ("--keep-chain", "--drop-chain"):
        done = subprocess.run([sys.executable, "-c", RUN_WRAPPING, "wrapped", flag], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 130, (flag, done)
        assert "Traceback" not in done.stderr, (flag, done.stderr)
        assert "Aborted (interrupted)." in done.stderr, (flag, done.stderr)
