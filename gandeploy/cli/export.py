"""``gandeploy export RUN_DIR``: ONNX FP32 (+ FP16 ONNX and a TensorRT plan with --fp16), checked on the spot."""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.errors import UserInputError

from gandeploy.cli.options import OutPath, parse_hw, report_outputs
from gandeploy.utils.io import human_size

SIZE_HELP = "HxW for image-to-image models (multiples of the size rule the generator declares)"


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", type=OutPath(directory=True), default=None,
              help="Export dir [default: export/<run dir name>].")
@click.option("--fp16", is_flag=True,
              help="Also write model.fp16.onnx and, where TensorRT and a GPU exist, model.plan.")
@click.option("--trt/--no-trt", default=None,
              help="Require a TensorRT plan (fails without TensorRT/GPU) / never build one [default: with --fp16 "
                   "where possible].")
@click.option("--max-batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Largest batch checked at export and allowed by the TensorRT profile.")
@click.option("--min-size", default=None, help=f"Smallest image size, {SIZE_HELP} [default: the smallest the "
                                                "generator runs at, up to 64x64: smaller pictures are padded to it].")
@click.option("--opt-size", default=None, help=f"Size TensorRT tunes for, {SIZE_HELP} [default: the training size].")
@click.option("--max-size", default=None, help=f"Largest image size, {SIZE_HELP} [default: 512x512].")
@click.option("--opset", type=click.IntRange(min=7, max=30), default=None,
              help="ONNX opset [default: the exporter's recommended one].")
@click.option("--generator", default=None, help="Which generator: G, or for CycleGAN G_A (A→B, default) / G_B.")
@click.option("--ema/--no-ema", default=None,
              help="Export the moving average of G (G_ema, kept by 'train --ema') / the raw G  [default: G_ema "
                   "when the run has one].")
@click.option("--exporter", type=click.Choice(["auto", "dynamo", "torchscript"]), default="auto", show_default=True,
              help="ONNX exporter. auto: dynamo, and TorchScript only if dynamo fails (warned and recorded in "
                   "manifest.json); dynamo / torchscript: that one, failing instead of falling back.")
@click.option("--force", is_flag=True, help="Replace an export dir that holds another run's export.")
@click.option("--calibration", default=None, metavar="N|DIR",
              help="DIR: a directory of your own pictures: the FP16 safety check, the receptive field and INT8 "
                   "calibration use them [default: the held-out photos of the 'photos' data set]. N: sampling "
                   "models calibrate INT8 on seeds 0..N-1 [default: 64].")
@click.option("--int8", is_flag=True,
              help="Also write model.int8.onnx (ONNX Runtime static quantization, QDQ), kept only if its samples "
                   "are indistinguishable from FP32 (KID; PSNR >= 30 dB for picture inputs); else refused with the "
                   "reason in manifest.json.")
@click.option("--int8-symmetric", is_flag=True,
              help="With --int8: quantize activations to int8 with zero point 0 and keep biases float, the Q/DQ "
                   "form TensorRT's explicit quantization takes (needed for model.int8.plan) [default: uint8 "
                   "asymmetric activations, ONNX Runtime CPU's usual form].")
@click.option("--norm-stats", type=click.Choice(("running", "sample")), default=None,
              help="Test-time BatchNorm for generators that offer the choice (pix2pix with BatchNorm): running = eval "
                   "mode; sample = each picture's own statistics, what the pix2pix reference test.py computes "
                   "without --eval (dropout off either way) [default: the run's own, running unless imported "
                   "otherwise]. Recorded in manifest.json and the model card.")
def export(run_dir: Path, out: Path | None, fp16: bool, trt: bool | None, max_batch: int, min_size: str | None,
           opt_size: str | None, max_size: str | None, opset: int | None, generator: str | None,
           ema: bool | None, exporter: str, force: bool, calibration: str | None, int8: bool,
           int8_symmetric: bool, norm_stats: str | None) -> None:
    """Export RUN_DIR's generator to ONNX (dynamic batch; dynamic H/W for image-to-image models).

    \b
    Every artifact is run here and compared with PyTorch; a breach of tolerance fails the export:
      model.onnx       ONNX Runtime FP32      max abs <= 1e-4 and mean abs <= 1e-5, or 4x the case's own
                                              FP32 noise floor (PyTorch FP32 vs float64) where larger
      model.fp16.onnx  ONNX Runtime FP16      max abs <= 2e-2, uint8 images within 2 levels; layers whose
                                              FP32 activations pass FP16's range (measured on real
                                              pictures) stay in FP32
      model.plan       TensorRT FP16 engine   same as FP16 (needs TensorRT and an NVIDIA GPU)
      model.int8.onnx  ONNX Runtime INT8      by distribution: INT8 moves the unpaired KID vs FP32 by <= its std
                                              (picture inputs: PSNR vs FP32 >= 30 dB); worst layers kept
                                              float and retried, else refused (--int8 only)
      model.int8.plan  TensorRT INT8 engine   from model.int8.onnx (explicit quantization), the same verdict
                                              (--int8, where TensorRT and a GPU exist)
    """
    from gandeploy.api import export as export_api  # local: keeps 'gandeploy --help' fast

    if ema is not None:
        if generator is not None:
            raise click.UsageError("pass either --generator or --ema/--no-ema, not both.")
        generator = _ema_choice(run_dir, ema)
    # any positive HxW here: export_run checks it against the size rule the generator declares
    sizes = {name: parse_hw(value, flag) for name, value, flag in (
        ("min_size", min_size, "--min-size"), ("opt_size", opt_size, "--opt-size"),
        ("max_size", max_size, "--max-size"))}
    seeds, pictures = _calibration(calibration)
    if int8_symmetric and not int8:
        raise click.UsageError("--int8-symmetric chooses how --int8 quantizes: pass --int8 too.")
    result = export_api(run_dir, out, fp16=fp16, trt=trt, max_batch=max_batch, opset=opset, generator=generator,
                        force=force, exporter=exporter, calibration=pictures, int8=int8, int8_seeds=seeds,
                        norm_stats=norm_stats, int8_symmetric=int8_symmetric, **sizes)
    manifest = result.manifest
    fallback = manifest["exporter"].get("fallback_reason")
    if fallback:
        click.echo(f"Warning: exported with the {result.exporter} exporter, not the one asked for first ({fallback}); "
                   "recorded in manifest.json as exporter.fallback_reason. Pass --exporter dynamo to fail instead.",
                   err=True)
    click.echo(f"Exported {manifest['model']} generator {manifest['generator']} from {run_dir} in "
               f"{result.seconds:.1f} s ({result.exporter} exporter, opset {manifest['exporter']['opset']}).")
    click.echo(f"{'artifact':<17} {'format':<17} {'size':>9}  {'max abs err':>11}  {'mean abs err':>12}  check")
    for row in result.artifacts:
        par = manifest["parity"].get(row.format or "", {})
        err = (f"{row.max_abs:>11.2e}  {row.mean_abs:>12.2e}  " if row.max_abs is not None
               else f"{'-':>11}  {'-':>12}  ")
        check = ("ok" if par.get("passed") else "FAILED") if par else ""
        if "uint8_levels" in par:
            check += f" (uint8 max {par['uint8_levels']} level{'s' if par['uint8_levels'] != 1 else ''})"
        click.echo(f"{row.file:<17} {row.format or '-':<17} {human_size(row.bytes):>9}  {err}{check}")
    if "norm_stats" in manifest:
        click.echo(f"Test-time BatchNorm: {manifest['norm_stats']['mode']} ({manifest['norm_stats']['how']}); "
                   "dropout off.")
    field = manifest.get("receptive_field")
    if field:
        click.echo(f"Receptive field: {field['radius']} input pixels" + ("" if field["bounded"] else " or more")
                   + f" (> {field['threshold_levels']} uint8 level; {field['measured_on']}).")
    kept = manifest.get("fp16", {}).get("kept_fp32_nodes", {})
    if kept.get("overflow") or kept.get("error"):
        click.echo(f"FP16: kept in FP32 by measurement: {', '.join(kept.get('overflow', []) + kept.get('error', []))}.")
    if manifest.get("fp16", {}).get("fallback"):
        click.echo(f"FP16: {manifest['fp16']['fallback']}.")
    if (fp16 or trt) and result.tensorrt_reason:
        click.echo(f"{'model.plan':<17} {'tensorrt':<17} {'-':>9}  skipped: {result.tensorrt_reason}")
    q = manifest.get("int8", {})
    if int8 and q.get("written"):
        v = q.get("verdict") or {}
        figure = (f"PSNR {v.get('psnr_db')} dB" if v.get("test") == "psnr"
                  else f"KID shift vs FP32 {v.get('kid_shift', 0):.2g}, std {v.get('kid_unpaired_std', 0):.2g}")
        click.echo(f"INT8: accepted ({figure}); kept float: {len(q['kept_float'])} nodes "
                   f"({len(q['kept_float_by_search'])} by the error search).")
    elif int8:
        click.echo(f"INT8: refused, model.int8.onnx not written: {q.get('reason')}", err=True)
    engine = manifest.get("tensorrt_int8") or {}
    if int8 and q.get("written") and not engine.get("built"):
        click.echo(f"{'model.int8.plan':<17} {'tensorrt-int8':<17} {'-':>9}  skipped: {engine.get('reason')}")
        if (engine.get("qdq") or {}).get("problems") and "explicit-quantization" not in str(engine.get("reason")):
            click.echo("TensorRT would also refuse model.int8.onnx (uint8 / asymmetric Q/DQ): export with --int8 "
                       "--int8-symmetric for the form TensorRT takes.")
    report_outputs([result.out_dir], next_command=f"gandeploy repo {result.out_dir}")


def _calibration(value: str | None) -> tuple[int, Path | None]:
    """--calibration N (seeds) or DIR (pictures): (INT8 calibration seeds, pictures dir or None)."""
    from gandeploy.export.onnx2int8 import DEFAULT_SEEDS

    if value is None:
        return DEFAULT_SEEDS, None
    if value.strip().isdigit():
        if int(value) < 1:
            raise click.BadParameter(f"N must be >= 1, got {value}.", param_hint="--calibration")
        return int(value), None
    return DEFAULT_SEEDS, Path(value)


def _ema_choice(run_dir: Path, ema: bool) -> str:
    """The checkpoint key --ema / --no-ema asks for; --ema on a run without a moving average is an error."""
    from gandeploy.config import load_run_config
    from gandeploy.registry import get_model
    from gandeploy.training.checkpoint import EMA_SUFFIX, latest_checkpoint, load_checkpoint

    first = get_model(load_run_config(run_dir).model).generator_keys[0]
    if not ema:
        return first
    if first + EMA_SUFFIX not in load_checkpoint(latest_checkpoint(run_dir)).get("models", {}):
        raise UserInputError(f"--ema: '{run_dir}' keeps no moving average of {first}; train it with --ema DECAY "
                             "(or drop --ema).")
    return first + EMA_SUFFIX
