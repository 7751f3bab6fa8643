"""The ``gandeploy`` command: a click group whose commands live one per module and load lazily.

Every ``GanDeployError`` raised below becomes a clean ``click`` error (exit 1, no traceback); so do an
``OSError`` (a file that cannot be written, a full disk) and a ``MemoryError``, as one line naming the file
(``-v`` logs the traceback). Writers stage under a temporary name and rename, so such an error leaves nothing
half-written.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
from typing import Any

import click

from gandeploy import __version__
from gandeploy.errors import GanDeployError, os_error_message
from gandeploy.utils.interrupts import caused_by_ctrl_c, shield_native_imports, sigint_seen
from gandeploy.utils.logging import setup_logging

log = logging.getLogger(__name__)

# command name -> "module:attribute"; the order is the order of the design card.
COMMANDS: dict[str, str] = {
    "train": "gandeploy.cli.train:train",
    "import": "gandeploy.cli.import_:import_cmd",
    "export": "gandeploy.cli.export:export",
    "repo": "gandeploy.cli.repo:repo",
    "serve": "gandeploy.cli.serve:serve",
    "models": "gandeploy.cli.models:models",
    "sample": "gandeploy.cli.sample:sample",
    "translate": "gandeploy.cli.translate:translate",
    "upscale": "gandeploy.cli.upscale:upscale",
    "parity": "gandeploy.cli.parity:parity",
    "evaluate": "gandeploy.cli.evaluate:evaluate",
    "diagnose": "gandeploy.cli.diagnose:diagnose",
    "mode-table": "gandeploy.cli.modes:mode_table",
    "quality-table": "gandeploy.cli.quality_table:quality_table",
    "bench": "gandeploy.cli.bench:bench",
    "bench-suite": "gandeploy.cli.bench:bench_suite",
    "ui": "gandeploy.cli.ui:ui",
    "demo": "gandeploy.cli.demo:demo",
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (keeps ``--help`` fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _module_exists(COMMANDS[name])]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not _module_exists(target):
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return self._invoke(ctx)
        finally:
            _quiet_exit_on_ctrl_c()

    def _invoke(self, ctx: click.Context) -> Any:
        with sigint_seen() as ctrl_c:
            try:
                return super().invoke(ctx)
            except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
                raise  # click's own outcomes: already what the user should see
            except GanDeployError as exc:  # ours, Interrupted (exit 130, what was saved) included: its message
                error = click.ClickException(str(exc))
                error.exit_code = getattr(exc, "exit_code", 1)
                raise error from None
            except KeyboardInterrupt:
                _aborted(ctx)
            except Exception as exc:
                if ctrl_c() or caused_by_ctrl_c(exc):
                    # a library turned the Ctrl-C into its own error (onnxruntime's import raises ImportError
                    # "initialization failed" from it): still the user's Ctrl-C, not a failure to report
                    log.debug("Ctrl-C surfaced as %s", type(exc).__name__, exc_info=True)
                    _aborted(ctx)
                if isinstance(exc, OSError):
                    log.debug("OSError at the CLI boundary", exc_info=True)
                    raise click.ClickException(os_error_message(exc)) from None
                if isinstance(exc, MemoryError):
                    log.debug("MemoryError at the CLI boundary", exc_info=True)
                    raise click.ClickException("out of memory: ask for less at once (a smaller --n, --batch-size or "
                                               "image size) or free memory; nothing was half-written.") from None
                raise


def _aborted(ctx: click.Context) -> None:
    """The user's Ctrl-C: one line and exit 130, as a shell reports it."""
    click.echo("Aborted (interrupted).", err=True)
    ctx.exit(130)


_AS_PROGRAM = False  # True only in the installed ``gandeploy`` program (entry), never under CliRunner


def _quiet_exit_on_ctrl_c() -> None:
    """Once the command's work and last line are done, a Ctrl-C ends the process the shell's way (killed by
    SIGINT), not with a KeyboardInterrupt traceback from some library's atexit hook during interpreter exit."""
    if _AS_PROGRAM and threading.current_thread() is threading.main_thread():
        for stream in (sys.stdout, sys.stderr):  # what the command wrote survives a SIGINT from here on
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def _module_exists(target: str) -> bool:
    return importlib.util.find_spec(target.split(":")[0]) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gandeploy")
@click.option("-v", "--verbose", count=True, help="More log output (-v: debug).")
def main(verbose: int) -> None:
    """Train GAN generators, export them to ONNX / TensorRT, and serve them with NVIDIA Triton.

    \b
    The path from training to production:
      gandeploy train cgan digits            # -> training/runs/cgan-digits
      gandeploy export training/runs/cgan-digits --fp16
      gandeploy repo export/cgan-digits      # -> model_repository/
      gandeploy serve                        # real tritonserver on 127.0.0.1
      gandeploy sample cgan-digits --n 64 --out grid.png
    """
    setup_logging(verbose)


def entry() -> None:
    """The ``gandeploy`` program (console script and ``python -m gandeploy.cli``)."""
    global _AS_PROGRAM
    _AS_PROGRAM = True
    shield_native_imports()
    main(prog_name="gandeploy")
