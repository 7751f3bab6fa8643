"""``gandeploy sample NAME --n 64 --seed 0 [--label K] --out grid.png``: pictures from a served sampling model."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from gandeploy.cli.options import report_outputs
from gandeploy.errors import UserInputError


@click.command("sample")
@click.argument("name")
@click.option("--n", "n", type=int, default=64, show_default=True, help="Number of seeds: seed .. seed+n-1.")
@click.option("--seed", type=int, default=0, show_default=True, help="First seed (seeds are 0 .. 2**63-1).")
@click.option("--label", type=int, default=None,
              help="Class index for conditional models (without it: one row per class, same seeds in each row).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="PNG grid (2D-point models: a scatter plot); a .npy suffix saves the raw array instead  "
                   "[default: samples/NAME.png].")
@click.option("--url", default=None, help="Triton address (default 127.0.0.1:8001 for grpc, :8000 for http).")
@click.option("--protocol", type=click.Choice(["grpc", "http"]), default="grpc", show_default=True)
@click.option("--batch-size", type=int, default=None, help="Seeds per request (default: the model's max batch).")
@click.option("--concurrency", type=int, default=2, show_default=True, help="Requests in flight at once.")
def sample(name: str, n: int, seed: int, label: int | None, out: Path | None, url: str | None, protocol: str,
           batch_size: int | None, concurrency: int) -> None:
    """Ask the served model NAME for the pictures of seeds seed .. seed+n-1 and save them as one grid."""
    from gandeploy.serving import client as tc
    from gandeploy.serving.pictures import image_grid, save_png, save_points_plot
    from gandeploy.utils.io import atomic_path

    if n < 1:
        raise UserInputError(f"--n must be >= 1, got {n}.")
    if seed < 0 or seed + n - 1 > 2**63 - 1:
        raise UserInputError(f"--seed must keep every seed in [0, 2**63 - 1], got {seed} with --n {n}.")
    if batch_size is not None and batch_size < 1 or concurrency < 1:
        raise UserInputError("--batch-size and --concurrency must be >= 1.")
    out = out or Path("samples") / f"{name}.png"  # git-ignored, like translate's default translated/
    seeds = np.arange(seed, seed + n, dtype=np.int64)
    labels: np.ndarray | None = None
    cols = None
    num_classes = _num_classes(name, url, protocol)
    if num_classes and label is None:  # one row per class, the same seeds in every row
        labels = np.repeat(np.arange(num_classes, dtype=np.int64), n)
        seeds = np.tile(seeds, num_classes)
        cols = n
    elif label is not None:
        if num_classes and not 0 <= label < num_classes:
            raise UserInputError(f"--label must be in 0..{num_classes - 1} for '{name}', got {label}.")
        labels = np.full(n, label, dtype=np.int64)
    start = time.perf_counter()
    result = tc.sample(name, seeds, labels, url=url, protocol=protocol, batch_size=batch_size,
                       concurrency=concurrency)
    seconds = time.perf_counter() - start
    if out.suffix.lower() == ".npy":
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            np.save(fh, result)
    elif result.dtype == np.uint8:
        save_png(out, image_grid(result, cols=cols))
    else:
        save_points_plot(out, result, title=f"{name}: {len(result)} samples")
    click.echo(f"Sampled {len(seeds)} from '{name}' over {protocol} in {seconds:.2f} s "
               f"({len(seeds) / seconds:.1f} samples/s).")
    report_outputs([out], next_sample_command(name, n, seed, label, out))


def next_sample_command(name: str, n: int, seed: int, label: int | None, out: Path) -> str:
    """The same request for the next seeds, into a new file (``sevens.png`` → ``sevens-64.png``)."""
    following = out.with_name(f"{out.stem}-{seed + n}{out.suffix}")
    flags = f" --label {label}" if label is not None else ""
    return f"gandeploy sample {name} --n {n} --seed {seed + n}{flags} --out {following}"


def _num_classes(name: str, url: str | None, protocol: str) -> int:
    """Classes of a conditional served model (its config's ``num_classes`` parameter), 0 when unconditional."""
    from gandeploy.serving.client import TritonClient

    with TritonClient(url, protocol) as client:
        meta = client.metadata(name)
        if "label" not in [t["name"] for t in meta.get("inputs", [])]:
            return 0
        params = client.config(name).get("parameters", {})
    value = params.get("num_classes", {}).get("string_value", "0")
    return int(value) if str(value).isdigit() else 0
