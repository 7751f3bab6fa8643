"""``gandeploy import KIND PATH --out RUN_DIR``: published generator weights → a run dir export can read."""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.cli.options import report_outputs
from gandeploy.errors import UserInputError

KINDS = ("cyclegan-reference", "dcgan-example", "pix2pix-reference")


@click.command("import")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Run dir to write (default: training/runs/<PATH stem>).")
@click.option("--image-size", type=int, default=256, show_default=True,
              help="cyclegan-reference / pix2pix-reference: default serving size (a multiple of 4, of 2**num_downs "
                   "for pix2pix); any such size works at run time.")
@click.option("--norm-stats", type=click.Choice(("running", "sample")), default="running", show_default=True,
              help="pix2pix-reference with BatchNorm: running statistics (eval mode) or each picture's own (the "
                   "reference test.py without --eval). Dropout is off either way.")
@click.option("--force", is_flag=True, help="Overwrite a run dir that already holds a checkpoint.")
def import_cmd(kind: str, path: Path, out: Path | None, image_size: int, norm_stats: str, force: bool) -> None:
    """Import published generator weights as a run dir (config.json + checkpoints/latest.pt).

    \b
    KIND cyclegan-reference: pytorch-CycleGAN-and-pix2pix ResnetGenerator (horse2zebra.pth, latest_net_G.pth)
    KIND dcgan-example:      pytorch/examples DCGAN generator (netG_epoch_N.pth)
    KIND pix2pix-reference:  pytorch-CycleGAN-and-pix2pix UnetGenerator (unet_128/unet_256 latest_net_G.pth)
    Hyperparameters (ngf, blocks, levels, norm, channels, nz, image size) are read from the keys and shapes.
    """
    from gandeploy.training.pretrained import IMPORTERS  # local: keeps 'gandeploy --help' fast

    out = out if out is not None else Path("training/runs") / path.stem
    if (out / "checkpoints").exists() and not force:
        raise UserInputError(f"--out '{out}' already holds a run; pass --force to overwrite it or pick another "
                             "--out.")
    kwargs: dict[str, object] = {"image_size": image_size} if kind != "dcgan-example" else {}
    if kind == "pix2pix-reference":
        kwargs["norm_stats"] = norm_stats
    result = IMPORTERS[kind](path, out, **kwargs)
    arch = ", ".join(f"{k}={v}" for k, v in vars(result.arch).items())
    click.echo(f"Imported {kind} '{path}' as model '{result.model}' ({arch}).")
    if kind == "pix2pix-reference":
        how = "eval mode" if norm_stats == "running" else "each picture's own, as test.py without --eval"
        click.echo(f"Test-time BatchNorm: {norm_stats} statistics ({how}); dropout off (the reference's test.py "
                   "leaves it on, which makes its outputs random).")
    if result.dropped_keys:
        click.echo(f"Dropped {len(result.dropped_keys)} InstanceNorm running-stat keys (unused, as in the "
                   "reference code).")
    report_outputs([result.config_path, result.checkpoint_path], f"gandeploy export {out}")
