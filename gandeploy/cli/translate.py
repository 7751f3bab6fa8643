"""``gandeploy translate NAME IMAGE... --out DIR``: image-to-image through a served model, PNGs out.

``run_pictures_command`` is shared with ``gandeploy upscale`` (``cli/upscale.py``): the same inputs, checks,
progress bar, in-process path and output naming.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gandeploy.cli.options import LOCAL_BACKEND_HELP, OutPath, open_generator, report_outputs
from gandeploy.errors import ServingError, UserInputError

SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")  # what the served pipeline decodes


def size_warning(name: str, files: list[Path], blobs: list[bytes], image_sizes: Any) -> str | None:
    """One line naming the pictures whose H x W differs from the export's optimal size (``image_sizes['opt']``,
    the training size unless 'export --opt-size' changed it), or None. Unreadable pictures are left to the
    server's own error."""
    import io

    from PIL import Image, UnidentifiedImageError

    opt = (image_sizes or {}).get("opt")
    if not opt:
        return None
    odd = []
    for path, blob in zip(files, blobs, strict=True):
        try:
            w, h = Image.open(io.BytesIO(blob)).size
        except (UnidentifiedImageError, OSError, ValueError):
            continue
        if (h, w) != (int(opt[0]), int(opt[1])):
            odd.append(f"{path.name} ({h}x{w})")
    if not odd:
        return None
    more = f" and {len(odd) - 3} more" if len(odd) > 3 else ""
    return (f"{', '.join(odd[:3])}{more}: not the {opt[0]}x{opt[1]} pictures '{name}' was exported for (its "
            "training size by default). It translates any size, but far from the trained scale the result is "
            f"often garbled: resize to {opt[0]}x{opt[1]} for the trained behaviour.")


def expand_images(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; directories contribute their picture files (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise UserInputError(f"IMAGE '{path}' does not exist.")
    if not files:
        raise UserInputError(f"no picture files ({', '.join(SUFFIXES)}) found in {', '.join(map(str, paths))}.")
    return files


def output_paths(files: list[Path], out: Path, verb: str) -> list[Path]:
    """``out/<stem>.png`` per input; two inputs with one stem, ``--out`` being a file, or an output landing on an
    input are ``UserInputError``s (nothing is written)."""
    stems = [f.stem for f in files]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise UserInputError(f"several IMAGEs share the name(s) {dupes}; their outputs would overwrite each other.")
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out '{out}' is a file; pass a directory.")
    inputs = {f.resolve() for f in files}
    targets = [out / f"{f.stem}.png" for f in files]
    clash = [f for f, t in zip(files, targets, strict=True) if t.resolve() in inputs]
    if clash:
        raise UserInputError(f"--out '{out}' would overwrite the input {clash[0]} with its {verb} result; pass "
                             "another --out directory.")
    return targets


def picture_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``translate`` and ``upscale`` share."""
    for option in reversed([
        click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Run in-process on this export dir instead of a server (the same pipeline rules)."),
        click.option("--backend", default="onnxruntime", show_default=True,
                     help=LOCAL_BACKEND_HELP),
        click.option("--tile", type=int, default=None, help="With --export: as 'gandeploy repo --tile'."),
        click.option("--tile-overlap", type=int, default=None,
                     help="With --export: as 'gandeploy repo --tile-overlap'."),
        click.option("--url", default=None, help="Triton address (default 127.0.0.1:8001 for grpc, :8000 for http)."),
        click.option("--protocol", type=click.Choice(["grpc", "http"]), default="grpc", show_default=True),
        click.option("--concurrency", type=int, default=4, show_default=True, help="Requests in flight at once."),
    ]):
        command = option(command)
    return command


def run_pictures_command(verb: str, name: str, images: tuple[Path, ...], out: Path, export_dir: Path | None,
                         backend: str, url: str | None, protocol: str, concurrency: int, tile: int | None = None,
                         tile_overlap: int | None = None) -> None:
    """Send every IMAGE through model ``name`` (served, or in-process on ``export_dir``), write ``out/<stem>.png``
    for each, report what was written; failed pictures are listed in one ``ServingError`` at the end."""
    from tqdm import tqdm

    from gandeploy.utils.io import atomic_write_bytes

    if concurrency < 1:
        raise UserInputError(f"--concurrency must be >= 1, got {concurrency}.")
    if export_dir is None and (tile is not None or tile_overlap is not None):
        raise UserInputError("--tile / --tile-overlap apply with --export; a served model tiles as its repository "
                             "was built ('gandeploy repo --tile').")
    files = expand_images(images)
    targets = output_paths(files, out, verb)
    blobs = [f.read_bytes() for f in files]
    generator = open_generator(name, export_dir, backend, url, protocol, tile=tile, tile_overlap=tile_overlap)
    if not generator.contract.translation:
        inputs = [t.name for t in generator.contract.inputs]
        where = f"'{export_dir}' is a sampling export" if export_dir is not None else \
            f"model '{name}' is not an image-to-image model (its inputs are {inputs})"
        raise UserInputError(f"{where}: use 'gandeploy sample'.")
    warning = size_warning(name, files, blobs, generator.contract.image_sizes) if generator.contract.scale == 1 \
        else None
    if warning:
        click.echo(f"warning: {warning}", err=True)
    start = time.perf_counter()
    with generator, tqdm(total=len(files), desc=f"{verb} {name}", unit="img", disable=len(files) < 2) as bar:
        results = generator.translate_each(blobs, concurrency=concurrency, on_done=lambda _i: bar.update(1))
    seconds = time.perf_counter() - start
    written, failed = [], []
    for path, target, result in zip(files, targets, results, strict=True):
        if not isinstance(result, bytes):
            failed.append(f"  {path}: {result}")
            continue
        written.append(atomic_write_bytes(target, result))
    where = f"in-process ({backend} on {export_dir})" if export_dir is not None else f"over {protocol}"
    click.echo(f"{verb.capitalize()}d {len(written)}/{len(files)} picture(s) with '{name}' {where} in "
               f"{seconds:.2f} s.")
    if written:
        report_outputs(written, f"ls {out}" if not failed else None)
    if failed:
        raise ServingError(f"{len(failed)} picture(s) failed:\n" + "\n".join(failed))


@click.command("translate")
@click.argument("name")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=OutPath(directory=True), default=Path("translated"), show_default=True,
              help="Directory for the translated PNGs (<stem>.png each).")
@picture_options
def translate(name: str, images: tuple[Path, ...], out: Path, export_dir: Path | None, backend: str,
              tile: int | None, tile_overlap: int | None, url: str | None, protocol: str, concurrency: int) -> None:
    """Translate IMAGE files (PNG/JPEG/GIF/BMP/WEBP; directories are expanded) with the served model NAME.

    A picture whose size differs from the one the export was made for (its image_sizes 'opt', the training size
    by default) is translated anyway, with a warning: a CycleGAN generator runs at any size (padded to its
    multiple), but far from the scale it was trained at its pictures often come out garbled; resize first."""
    run_pictures_command("translate", name, images, out, export_dir, backend, url, protocol, concurrency, tile,
                         tile_overlap)
