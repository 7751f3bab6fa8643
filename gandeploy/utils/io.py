"""Atomic file writes, staged directories and hashing: a crash never leaves a half-written file or directory
under its final name."""

from __future__ import annotations

import contextlib
import hashlib
import json
import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    On error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, _default_mode())  # mkstemp creates 0600; readers (a Triton container) need more
        with open(tmp_path, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _default_mode() -> int:
    """0o666 minus the process umask: what ``open(path, "w")`` would have given the file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def staged_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty staging directory beside ``target``; on success swap it in for ``target`` atomically.

    Readers of ``target`` see the old complete directory or the new complete one, never a mix: a failure or a
    kill before the swap leaves ``target`` untouched (the hidden staging directory is removed, or, after a
    kill, by the next ``staged_dir`` of the same target once its process is gone).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_dead_staging(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-{os.getpid()}-", dir=target.parent))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp creates 0700; readers (a Triton container) need more
        swap_in_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after a swap: the old directory


def swap_in_dir(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target`` in one step; the previous ``target`` (if any) ends up at ``staging``.

    Linux ``renameat2(RENAME_EXCHANGE)`` swaps two directories atomically. Where it is missing, the old
    directory is first renamed aside to ``.NAME.old-PID-*``; a kill between the two renames is repaired by the
    next ``clean_dead_staging`` of the target, which renames the old directory back.
    """
    if not target.exists():
        os.rename(staging, target)
    elif not _exchange(staging, target):
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
        os.rename(target, aside / "dir")
        os.rename(staging, target)
        os.rename(aside / "dir", staging)
        aside.rmdir()
    _fsync_dir(target.parent)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux >= 3.15, glibc >= 2.28); False where that is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EPERM, errno.ENOTSUP):
        return False  # the kernel or this filesystem cannot exchange: rename in two steps
    raise OSError(err, os.strerror(err), str(b))


def clean_dead_staging(target: Path) -> None:
    """Remove what a killed ``staged_dir`` of ``target`` left beside it (only of processes that are gone);
    a target left renamed aside mid-swap is put back first."""
    for leftover in sorted(target.parent.glob(f".{target.name}.old-*-*")):
        if _pid_alive(leftover.name):
            continue
        if not target.exists() and (leftover / "dir").is_dir():
            os.rename(leftover / "dir", target)
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in target.parent.glob(f".{target.name}.staging-*-*"):
        if not _pid_alive(leftover.name):
            shutil.rmtree(leftover, ignore_errors=True)


def _pid_alive(name: str) -> bool:
    """Whether the process whose id is embedded in a staging name (``.NAME.staging-PID-xyz``) still runs."""
    try:
        pid = int(name.rsplit("-", 2)[-2])
    except (IndexError, ValueError):
        return True  # not ours to judge: keep it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != 0


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


CACHE_ENV = "GANDEPLOY_CACHE"  # overrides the user cache folder (tests, CI)


def cache_dir() -> Path:
    """gandeploy's user cache folder: ``$GANDEPLOY_CACHE``, else ``$XDG_CACHE_HOME/gandeploy``, else
    ``~/.cache/gandeploy`` (not created here)."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "gandeploy"


def read_tagged_json(path: Path, fmt: str, error: type[Exception], what: str, fix: str) -> dict[str, Any]:
    """A JSON object whose ``"format"`` is ``fmt``; unreadable, invalid or foreign files raise ``error`` naming
    ``path``, what it should be (``what``) and how to get a good one (``fix``)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path} is not valid JSON ({exc}); {fix}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise error(f"{path} is not {what} (expected format '{fmt}').")
    return data


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def human_size(num_bytes: float) -> str:
    """'1.2 MB'-style size for tables."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(num_bytes) < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return f"{num_bytes:.1f} GB"
