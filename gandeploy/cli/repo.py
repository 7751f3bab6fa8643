"""``gandeploy repo EXPORT_DIR... [--out model_repository] [--flavour local|ngc]``: build a Triton repository."""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.cli.options import OutPath, report_outputs
from gandeploy.utils import paths


def _sizes(value: str | None) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        return tuple(int(v) for v in value.replace(" ", "").split(",") if v)
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 8,16,32, got '{value}'",
                                 param_hint="--preferred-batch-sizes") from None


@click.command("repo")
@click.argument("export_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=OutPath(directory=True), default=paths.repository_dir, show_default="model_repository",
              help="Model repository to write (models of other exports already there are kept).")
@click.option("--flavour", type=click.Choice(["local", "ngc"]), default="local", show_default=True,
              help="local: python-backend models on ONNX Runtime (the bundled tritonserver); ngc: native "
                   "onnxruntime_onnx / tensorrt_plan generators for the NGC Triton container.")
@click.option("--instances", type=int, default=1, show_default=True, help="Instances of every model.")
@click.option("--max-queue-delay-us", type=int, default=0, show_default=True,
              help="Dynamic batching: how long a lone request may wait for others to join its batch. 0: no "
                   "waiting; requests that queue while an instance is busy still run as one batch.")
@click.option("--preferred-batch-sizes", default=None,
              help="Dynamic batching preferred sizes, e.g. 8,16,32 (default: 8/16/32/64 up to the max batch).")
@click.option("--threads", type=int, default=0, show_default=True,
              help="local flavour: ONNX Runtime intra-op threads per generator instance (0: ORT's default).")
@click.option("--max-pixels", type=int, default=4096 * 4096, show_default=True,
              help="Image-to-image: pictures whose input or output (scale² x the input) has more pixels are "
                   "refused before decoding.")
@click.option("--tile", type=int, default=None,
              help="Image-to-image: input tile side in pixels (a multiple of the model's size rule; at most the "
                   "export's max size per axis). Default: from a 2 GiB memory budget per batch of tiles.")
@click.option("--tile-overlap", type=int, default=None,
              help="Image-to-image: input pixels of context on each inner side of a tile. Default: the receptive "
                   "field measured at export, rounded up to the size rule (32 when not measured).")
@click.option("--triton-release", default=None, metavar="YY.MM",
              help="ngc: the NGC Triton release to target (default: the one serving/ pins). model.plan is served "
                   "only if that release's TensorRT built it; otherwise model.onnx, with a warning.")
@click.option("--force", is_flag=True,
              help="Replace served models of the same name that were built from another export dir.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="Which ONNX of the export the generator serves: model.onnx, model.fp16.onnx or model.int8.onnx "
                   "(written by 'export --int8' only when its samples match FP32's distribution). ngc: model.plan "
                   "(fp32) / model.int8.plan (int8) instead where the container's TensorRT built it.")
def repo(export_dirs: tuple[Path, ...], out: Path, flavour: str, instances: int, max_queue_delay_us: int,
         preferred_batch_sizes: str | None, threads: int, max_pixels: int, tile: int | None,
         tile_overlap: int | None, triton_release: str | None, force: bool, precision: str) -> None:
    """Build a Triton model repository from export dirs (each re-hashed against its manifest first).

    \b
    Per export NAME: NAME (user-facing: seed [+ label] -> image, or image bytes -> PNG bytes scale x the
    input's size, tiled),
    NAME_generator (the ONNX tensors), and the pre/post-processing models between them.
    """
    from gandeploy.api import build_repository

    result = build_repository(export_dirs, out, flavour=flavour, instances=instances,
                              max_queue_delay_us=max_queue_delay_us,
                              preferred_batch_sizes=_sizes(preferred_batch_sizes), threads=threads,
                              max_pixels=max_pixels, tile=tile, tile_overlap=tile_overlap,
                              triton_release=triton_release, force=force, precision=precision)
    click.echo(f"Built {len(result.models)} Triton models for {', '.join(result.exports)} ({flavour} flavour) "
               f"in {result.seconds:.1f} s.")
    nxt = f"gandeploy serve --model-repository {out}" if flavour == "local" else \
        "docker compose -f serving/docker-compose.yml up --build"
    if flavour == "ngc":
        click.echo(_shm_note(export_dirs, instances))
    report_outputs([out / m for m in result.models], nxt)


def _shm_note(export_dirs: tuple[Path, ...], instances: int) -> str:
    """How much /dev/shm the python-backend models need for the largest batch (compose shm_size, k8s emptyDir)."""
    from gandeploy.manifest import load_manifest
    from gandeploy.serving.ngc import shm_bytes

    need = max(shm_bytes(load_manifest(d).data, instances) for d in export_dirs)
    return (f"/dev/shm needed for the largest batch: {need / 2**20:.0f} MiB (serving/docker-compose.yml shm_size and "
            "the dshm emptyDir sizeLimit in serving/k8s/ must be at least this).")
