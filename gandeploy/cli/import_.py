"""``gandeploy import KIND PATH --out RUN_DIR``: published generator weights → a run dir export can read."""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.cli.options import OutPath, report_outputs
from gandeploy.errors import UserInputError
from gandeploy.utils import paths

KINDS = ("cyclegan-reference", "dcgan-example")


@click.command("import")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", "out", type=OutPath(directory=True), default=None,
              help="Run dir to write (default: training/runs/<PATH stem>).")
@click.option("--image-size", type=int, default=256, show_default=True,
              help="cyclegan-reference: default serving size (multiple of 4); any size works at run time.")
@click.option("--force", is_flag=True, help="Overwrite a run dir that already holds a checkpoint.")
def import_cmd(kind: str, path: Path, out: Path | None, image_size: int, force: bool) -> None:
    """Import published generator weights as a run dir (config.json + checkpoints/latest.pt).

    \b
    KIND cyclegan-reference: pytorch-CycleGAN-and-pix2pix ResnetGenerator (horse2zebra.pth, latest_net_G.pth)
    KIND dcgan-example:      pytorch/examples DCGAN generator (netG_epoch_N.pth)
    Hyperparameters (ngf, blocks, channels, nz, image size) are read from the tensor shapes.
    """
    from gandeploy.training.pretrained import IMPORTERS  # local: keeps 'gandeploy --help' fast

    out = out if out is not None else paths.runs_dir() / path.stem
    if (out / "checkpoints").exists() and not force:
        raise UserInputError(f"--out '{out}' already holds a run; pass --force to overwrite it or pick another "
                             "--out.")
    kwargs = {"image_size": image_size} if kind == "cyclegan-reference" else {}
    result = IMPORTERS[kind](path, out, **kwargs)
    arch = ", ".join(f"{k}={v}" for k, v in vars(result.arch).items())
    click.echo(f"Imported {kind} '{path}' as model '{result.model}' ({arch}).")
    if result.dropped_keys:
        click.echo(f"Dropped {len(result.dropped_keys)} InstanceNorm running-stat keys (unused, as in the "
                   "reference code).")
    report_outputs([result.config_path, result.checkpoint_path], f"gandeploy export {out}")
