"""``gandeploy import KIND PATH --out RUN_DIR``: published generator weights → a run dir export can read."""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.cli.options import OutPath, report_outputs
from gandeploy.errors import UserInputError

# Mirrors gandeploy.training.importers.kinds() (kept literal so 'gandeploy --help' imports no torch); a test
# checks the two agree.
KINDS = ("cyclegan-reference", "dcgan-example", "pix2pix-reference", "esrgan", "srvgg", "auto")
ACT_TYPES = ("relu", "leakyrelu", "prelu")


@click.command("import")
@click.argument("kind", type=click.Choice(KINDS))
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", "out", type=OutPath(directory=True), default=None,
              help="Run dir to write (default: training/runs/<PATH stem>).")
@click.option("--image-size", type=int, default=None,
              help="cyclegan-reference / pix2pix-reference: default serving size (a multiple of 4, of 2**num_downs "
                   "for pix2pix) [default: 256]; any such size works at run time.")
@click.option("--act", "act_type", type=click.Choice(ACT_TYPES), default=None,
              help="srvgg without PReLU weights: its activation (relu or leakyrelu; the file cannot tell).")
@click.option("--norm-stats", type=click.Choice(("running", "sample")), default="running", show_default=True,
              help="pix2pix-reference with BatchNorm: running statistics (eval mode) or each picture's own (the "
                   "reference test.py without --eval). Dropout is off either way.")
@click.option("--force", is_flag=True, help="Overwrite a run dir that already holds a checkpoint.")
def import_cmd(kind: str, path: Path, out: Path | None, image_size: int | None, act_type: str | None,
               norm_stats: str, force: bool) -> None:
    """Import published generator weights as a run dir (config.json + checkpoints/latest.pt).

    \b
    KIND cyclegan-reference: pytorch-CycleGAN-and-pix2pix ResnetGenerator (horse2zebra.pth, latest_net_G.pth)
    KIND dcgan-example:      pytorch/examples DCGAN generator (netG_epoch_N.pth)
    KIND pix2pix-reference:  pytorch-CycleGAN-and-pix2pix UnetGenerator (unet_128/unet_256 latest_net_G.pth)
    KIND esrgan:             RRDBNet: BasicSR / Real-ESRGAN (RealESRGAN_x4plus.pth, x2plus), xinntao/ESRGAN
                             (RRDB_ESRGAN_x4.pth) or the old model.N layout (RRDB_ESRGAN_x4_old_arch.pth)
    KIND srvgg:              Real-ESRGAN SRVGGNetCompact (realesr-general-x4v3.pth, realesr-animevideov3.pth)
    KIND auto:               whichever of these the file's keys show
    Weights under params_ema (preferred, as Real-ESRGAN's inference does), params or state_dict are unwrapped;
    hyperparameters (channels, blocks, widths, levels, norm, scale, ...) are read from the keys and tensor shapes.
    """
    from gandeploy.training.importers import run_import  # local: keeps 'gandeploy --help' fast

    out = out if out is not None else Path("training/runs") / path.stem
    if (out / "checkpoints").exists() and not force:
        raise UserInputError(f"--out '{out}' already holds a run; pass --force to overwrite it or pick another "
                             "--out.")
    used, result = run_import(kind, path, out, image_size=image_size, act_type=act_type, norm_stats=norm_stats)
    arch = ", ".join(f"{k}={v}" for k, v in vars(result.arch).items())
    found = " (found by its keys)" if kind == "auto" else ""
    layout = f", {result.layout} layout" if result.layout and result.layout != used else ""
    container = f"under '{result.container}'" if result.container else "bare state_dict"
    click.echo(f"Imported {used}{found}{layout} ({container}) '{path}' as model '{result.model}' ({arch}).")
    if used == "pix2pix-reference":
        how = "eval mode" if norm_stats == "running" else "each picture's own, as test.py without --eval"
        click.echo(f"Test-time BatchNorm: {norm_stats} statistics ({how}); dropout off (the reference's test.py "
                   "leaves it on, which makes its outputs random).")
    if result.dropped_keys:
        click.echo(f"Dropped {len(result.dropped_keys)} InstanceNorm running-stat keys (unused, as in the "
                   "reference code).")
    report_outputs([result.config_path, result.checkpoint_path], f"gandeploy export {out}")
