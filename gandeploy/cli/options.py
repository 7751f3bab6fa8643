"""Shared click option helpers and the closing 'what I wrote / what to run next' lines."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from gandeploy.errors import UserInputError
from gandeploy.formats import FORMATS
from gandeploy.utils.io import human_size

# --backend of sample / translate --export: every in-process format of the table
LOCAL_BACKEND_HELP = "With --export: " + " | ".join(k for k, f in FORMATS.items() if f.device != "server") + "."


class OutPath(click.Path):
    """An output path (``--out``, ``--report``, ``--json``, ``--log-file``), checked before the command runs.

    The rule, the same for every command: a folder output (a run, an export, a repository, a report folder) must
    not be an existing file, and is created with its parents like ``mkdir -p``; a file output must not be an
    existing folder, and its folder must exist unless it lies inside the current directory (the workspace, where
    the defaults ``samples/``, ``reports/`` ... live), so a typo such as ``/nonexistent/dir/x.png`` is refused
    instead of creating folders elsewhere; the nearest existing folder must be writable; ``suffixes`` (lower
    case) limit a file output to the formats the command writes. ``-`` (stdout) passes when ``allow_dash``.
    """

    def __init__(self, directory: bool = False, suffixes: tuple[str, ...] | None = None,
                 allow_dash: bool = False) -> None:
        super().__init__(path_type=Path, file_okay=True, dir_okay=True, allow_dash=allow_dash)
        self.directory, self.suffixes = directory, suffixes

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        path = super().convert(value, param, ctx)
        if str(path) != "-":
            problem = out_problem(Path(path), self.directory, self.suffixes)
            if problem:
                self.fail(problem, param, ctx)
        return Path(path)


def out_problem(path: Path, directory: bool, suffixes: tuple[str, ...] | None = None) -> str | None:
    """Why ``path`` cannot be written as a folder (``directory``) or a file output, or None (see ``OutPath``)."""
    if directory and path.exists() and not path.is_dir():
        return f"'{path}' is a file; pass a folder."
    if not directory and path.is_dir():
        return f"'{path}' is a folder; pass a file name."
    if not directory and suffixes is not None and path.suffix.lower() not in suffixes:
        return (f"'{path}' has the suffix '{path.suffix}'; this command writes {', '.join(suffixes)} "
                "(the suffix picks the format).")
    parent = path.absolute().parent
    if not directory and not parent.is_dir() and not _inside(parent, Path.cwd()):
        return (f"the folder '{parent}' does not exist; create it first (gandeploy creates missing folders only "
                "inside the current directory).")
    existing = path.absolute() if directory and path.is_dir() else parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"'{existing}' is a file, not a folder; pick another path."
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write under '{existing}' (permission denied); pick another path."
    return None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def report_outputs(paths: Iterable[str | os.PathLike[str]], next_command: str | None, title: str = "Wrote") -> None:
    """Print every written path with its size, then the next command to run (results go to stdout)."""
    click.echo(f"{title}:")
    for p in paths:
        path = Path(p)
        if path.is_dir():
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            click.echo(f"  {path}/  ({human_size(size)})")
        elif path.exists():
            click.echo(f"  {path}  ({human_size(path.stat().st_size)})")
        else:
            click.echo(f"  {path}")
    if next_command:
        click.echo(f"Next: {next_command}")


def parse_hw(value: str | None, flag: str, multiple: int = 1) -> tuple[int, int] | None:
    """Parse 'HxW' (or a single 'S' for SxS) for ``flag``; H and W positive multiples of ``multiple``."""
    if value is None:
        return None
    parts = value.lower().replace("*", "x").split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"expected HxW such as 256x256, got '{value}'", param_hint=flag) from None
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or min(nums) < 1:
        raise click.BadParameter(f"expected HxW with positive sizes, got '{value}'", param_hint=flag)
    if nums[0] % multiple or nums[1] % multiple:
        raise click.BadParameter(f"H and W must be multiples of {multiple}, got '{value}'", param_hint=flag)
    return nums[0], nums[1]


def open_generator(name: str, export_dir: Path | None, backend: str, url: str | None, protocol: str,
                   **tiling: int | None) -> Any:
    """``gandeploy.load`` of the served model ``name`` (``--url`` / ``--protocol``, else the default address) or,
    with ``--export``, of that export dir on ``--backend`` (``tiling``: ``--tile`` / ``--tile-overlap``)."""
    from gandeploy.api import load
    from gandeploy.runtimes.triton_client import DEFAULT_URLS, check_protocol

    if export_dir is not None:
        from gandeploy.manifest import load_manifest
        from gandeploy.serving.local import LOCAL_BACKENDS

        load_manifest(export_dir)  # an --export that is not an export dir: its own error, naming the fix

        if backend not in LOCAL_BACKENDS:
            raise UserInputError(f"--backend must be one of {', '.join(LOCAL_BACKENDS)} for in-process use, got "
                                 f"'{backend}'.")
        return load(export_dir, backend, **tiling)
    return load(name, url=url or DEFAULT_URLS[check_protocol(protocol)], protocol=protocol)
