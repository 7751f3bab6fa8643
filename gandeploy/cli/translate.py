"""``gandeploy translate NAME IMAGE... --out DIR``: image-to-image through a served model, PNGs out."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from gandeploy.cli.options import OutPath, report_outputs
from gandeploy.errors import ServingError, UserInputError

SUFFIXES = (".png", ".jpg", ".jpeg")


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
    """Files as given; directories contribute their PNG/JPEG files (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise UserInputError(f"IMAGE '{path}' does not exist.")
    if not files:
        raise UserInputError(f"no PNG/JPEG files found in {', '.join(map(str, paths))}.")
    return files


@click.command("translate")
@click.argument("name")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=OutPath(directory=True), default=Path("translated"), show_default=True,
              help="Directory for the translated PNGs (<stem>.png each).")
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run in-process on this export dir instead of a server (the same pipeline rules).")
@click.option("--backend", default="onnxruntime", show_default=True,
              help="With --export: torch | onnxruntime | onnxruntime-fp16 | onnxruntime-int8 | tensorrt.")
@click.option("--url", default=None, help="Triton address (default 127.0.0.1:8001 for grpc, :8000 for http).")
@click.option("--protocol", type=click.Choice(["grpc", "http"]), default="grpc", show_default=True)
@click.option("--concurrency", type=int, default=4, show_default=True, help="Requests in flight at once.")
def translate(name: str, images: tuple[Path, ...], out: Path, export_dir: Path | None, backend: str,
              url: str | None, protocol: str, concurrency: int) -> None:
    """Translate IMAGE files (PNG/JPEG; directories are expanded) with the served model NAME.

    A picture whose size differs from the one the export was made for (its image_sizes 'opt', the training size
    by default) is translated anyway, with a warning: a CycleGAN generator runs at any size (padded to its
    multiple), but far from the scale it was trained at its pictures often come out garbled; resize first."""
    from tqdm import tqdm

    from gandeploy.serving.client import translate_many
    from gandeploy.utils.io import atomic_write_bytes

    if concurrency < 1:
        raise UserInputError(f"--concurrency must be >= 1, got {concurrency}.")
    files = expand_images(images)
    stems = [f.stem for f in files]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise UserInputError(f"several IMAGEs share the name(s) {dupes}; their outputs would overwrite each other.")
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out '{out}' is a file; pass a directory.")
    inputs = {f.resolve() for f in files}
    clash = [f for f in files if (out / f"{f.stem}.png").resolve() in inputs]
    if clash:
        raise UserInputError(f"--out '{out}' would overwrite the input {clash[0]} with its translation; pass "
                             "another --out directory.")
    blobs = [f.read_bytes() for f in files]
    if export_dir is not None:
        from gandeploy.manifest import load_manifest

        contract = load_manifest(export_dir).contract
    else:
        from gandeploy.serving.client import served_contract

        contract = served_contract(name, url=url, protocol=protocol)
    warning = size_warning(name, files, blobs, contract.image_sizes)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    start = time.perf_counter()
    if export_dir is not None:
        from gandeploy.serving.local import local_translate

        results = local_translate(export_dir, backend, blobs)
    else:
        with tqdm(total=len(files), desc=f"translate {name}", unit="img", disable=len(files) < 2) as bar:
            results = translate_many(name, blobs, url=url, protocol=protocol, concurrency=concurrency,
                                     on_done=lambda i: bar.update(1))
    seconds = time.perf_counter() - start
    written, failed = [], []
    for path, result in zip(files, results, strict=True):
        if isinstance(result, ServingError):
            failed.append(f"  {path}: {result}")
            continue
        written.append(atomic_write_bytes(out / f"{path.stem}.png", result))
    where = f"in-process ({backend} on {export_dir})" if export_dir is not None else f"over {protocol}"
    click.echo(f"Translated {len(written)}/{len(files)} picture(s) with '{name}' {where} in {seconds:.2f} s.")
    if written:
        report_outputs(written, f"ls {out}" if not failed else None)
    if failed:
        raise ServingError(f"{len(failed)} picture(s) failed:\n" + "\n".join(failed))
