"""``gandeploy upscale NAME IMAGE... --out DIR``: super-resolution through a served model, one PNG per picture.

The same command as ``translate`` (``cli/translate.py``: inputs, checks, progress bar, ``--export DIR --backend
KEY`` in-process), named for what SR users do; the output is ``scale`` x each input's size, the scale read from
the model's served contract.
"""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.cli.options import OutPath
from gandeploy.cli.translate import picture_options, run_pictures_command


@click.command("upscale")
@click.argument("name")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=OutPath(directory=True), default=Path("upscaled"), show_default=True,
              help="Directory for the upscaled PNGs (<stem>.png each; an input is never overwritten).")
@picture_options
def upscale(name: str, images: tuple[Path, ...], out: Path, export_dir: Path | None, backend: str,
            tile: int | None, tile_overlap: int | None, url: str | None, protocol: str, concurrency: int) -> None:
    """Upscale IMAGE files (PNG/JPEG/GIF/BMP/WEBP; directories are expanded) with the served SR model NAME.

    \b
    Any size from 1x1 up to the repository's pixel limit (which the output, scale² x the input, must keep too);
    greyscale stays greyscale, alpha is kept (upscaled bicubically), 16-bit PNGs come back as 16-bit PNGs.
    """
    run_pictures_command("upscale", name, images, out, export_dir, backend, url, protocol, concurrency, tile,
                         tile_overlap)
