"""One error hierarchy. The CLI turns every ``GanDeployError`` into a clean ``click`` message.

Messages name the flag or file the user should change; they never carry a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GanDeployError(Exception):
    """Base class of every error gandeploy raises on purpose."""


class UserInputError(GanDeployError):
    """A flag, file or value given by the user is wrong; the message says which and how to fix it."""


class CheckpointError(UserInputError):
    """A checkpoint or run directory is missing, corrupt, foreign or incompatible."""


class DataError(UserInputError):
    """A data set is missing, malformed, or could not be fetched."""


class ExportError(GanDeployError):
    """Export failed, or an exported artifact breached its measured-error tolerance."""


class TrainingError(GanDeployError):
    """Training cannot go on (losses became NaN/inf, a collapse stop); the last good checkpoint is kept."""


class ServingError(GanDeployError):
    """The Triton repository, server or client failed."""


class Interrupted(GanDeployError):
    """The user stopped a command (Ctrl-C) after it saved its state; the CLI exits 130 like a shell does."""

    exit_code = 130


class BackendUnavailable(GanDeployError):
    """An optional runtime (TensorRT, a GPU, tritonserver) is not present here; the message says why."""


def unknown_choice(kind: str, name: str, choices: Iterable[str], flag: str | None = None) -> UserInputError:
    """Build the error for an unknown registry name, with a 'did you mean' hint and the list of choices."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    where = f" (flag {flag})" if flag else ""
    return UserInputError(f"unknown {kind} '{name}'{where}.{hint} Choices: {', '.join(choices)}.")


def one_line(text: str, limit: int = 400) -> str:
    """The first line of ``text`` (ANSI codes removed), cut at a word boundary with '…' past ``limit``."""
    import re

    line = re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip().split("\n")[0].strip()
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0].rstrip(" ,;:")
    return (cut or line[:limit]) + " …"


def os_error_message(exc: OSError) -> str:
    """One line for an OSError that reached the CLI (a file it could not write or read, a full disk), naming the
    file and what to do. Files are written under a temporary name and renamed, so nothing is half-written."""
    import errno

    where = f" '{exc.filename}'" if exc.filename else ""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied on{where}: pick another --out (or --report / --json) or fix its permissions."
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"no space left on the device{' of' + where if where else ''}: free some space or pick another "
                "--out; nothing was half-written.")
    if exc.errno == errno.EROFS:
        return f"read-only file system{' at' + where if where else ''}: pick another --out."
    reason = exc.strerror or type(exc).__name__
    return f"{reason}{':' + where if where else ''}" + (f" ({exc})" if not exc.strerror else "") + "."


class RequestRejected(ServingError):
    """The server answered a request with an error (bad input, unknown model, model failure)."""

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status or ""

    @property
    def invalid_argument(self) -> bool:
        """True for Triton's INVALID_ARG class: HTTP 400 or gRPC INVALID_ARGUMENT."""
        return self.status in ("400", "StatusCode.INVALID_ARGUMENT")
