"""Shared click option helpers and the closing 'what I wrote / what to run next' lines."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import click

from gandeploy.utils.io import human_size


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
