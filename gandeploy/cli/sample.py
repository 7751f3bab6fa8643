"""``gandeploy sample NAME``: pictures from a served sampling model, every input from its served contract.

    gandeploy sample NAME --n 64 --seed 0 [--label K | --code K] [--continuous 0.5,-1] [--truncation 0.7]
    gandeploy sample NAME --traverse I        # InfoGAN: one row per category, continuous code I from -2 to 2

Default fill (``gandeploy/contract.py``): without ``--label`` / ``--code`` the grid has one row per class /
category with the same seeds in every row; without ``--continuous`` the continuous codes are 0; without
``--truncation`` the latents are untruncated. A flag the model does not take is an error naming it.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from gandeploy.cli.options import LOCAL_BACKEND_HELP, OutPath, open_generator, report_outputs
from gandeploy.contract import TRUNCATION, ServedContract
from gandeploy.errors import UserInputError
from gandeploy.models.io import CLASS_LABEL, CONTINUOUS_CODE

TRAVERSE_VALUES = np.linspace(-2.0, 2.0, 9)  # --traverse: the sweep of the chosen continuous code
OUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")  # --out: the suffix picks the format
MAX_RESULT_BYTES = 1 << 30  # one command's pictures / points in memory at most (1 GiB): --n is refused above it


def parse_floats(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserInputError(f"{flag} takes comma-separated numbers such as 0.5,-1; got '{text}'.") from None


@click.command("sample")
@click.argument("name")
@click.option("--n", "n", type=int, default=64, show_default=True, help="Number of seeds: seed .. seed+n-1.")
@click.option("--seed", type=int, default=0, show_default=True, help="First seed (seeds are 0 .. 2**63-1).")
@click.option("--label", type=int, default=None,
              help="Class index for conditional models (without it: one row per class, same seeds in each row).")
@click.option("--code", type=int, default=None,
              help="InfoGAN categorical code (without it: one row per category, same seeds in each row).")
@click.option("--continuous", default=None, help="InfoGAN continuous codes, comma-separated (default: all 0).")
@click.option("--truncation", type=float, default=None,
              help="Truncation t >= 0.02: latent components with |z| > t are redrawn from the seed (at most 4096 "
                   "rounds, then clipped; default: none).")
@click.option("--traverse", type=int, default=None,
              help="InfoGAN figure: one row per category, columns sweep continuous code I from -2 to 2 (seed fixed).")
@click.option("--truncation-sweep", default=None,
              help="Figure of the truncation trade-off: one row per t (comma-separated, e.g. 0.25,0.5,1.0,2.0), "
                   "the same seeds and labels in every row.")
@click.option("--interpolate", default=None, metavar="SEED_A:SEED_B",
              help="A latent interpolation strip: the two seeds' latents slerped in --steps frames, computed on the "
                   "client and sent to the served raw NAME_generator, or run in-process with --export (other inputs "
                   "at their given or default values).")
@click.option("--steps", type=click.IntRange(min=2), default=8, show_default=True, help="Frames of --interpolate.")
@click.option("--out", type=OutPath(suffixes=OUT_SUFFIXES), default=None,
              help="Grid picture, .png or .jpg/.jpeg by its suffix (2D-point models: a scatter plot); .npy saves "
                   "the raw array instead  [default: samples/NAME.png].")
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run in-process on this export dir instead of a server (the same contract; NAME names the output).")
@click.option("--backend", default="onnxruntime", show_default=True,
              help=LOCAL_BACKEND_HELP)
@click.option("--url", default=None, help="Triton address (default 127.0.0.1:8001 for grpc, :8000 for http).")
@click.option("--protocol", type=click.Choice(["grpc", "http"]), default="grpc", show_default=True)
@click.option("--batch-size", type=int, default=None, help="Seeds per request (default: the model's max batch).")
@click.option("--concurrency", type=int, default=2, show_default=True, help="Requests in flight at once.")
def sample(name: str, n: int, seed: int, label: int | None, code: int | None, continuous: str | None,
           truncation: float | None, traverse: int | None, truncation_sweep: str | None, interpolate: str | None,
           steps: int, out: Path | None, export_dir: Path | None, backend: str, url: str | None, protocol: str,
           batch_size: int | None, concurrency: int) -> None:
    """Ask the served model NAME for the pictures of seeds seed .. seed+n-1 and save them as one grid."""
    from gandeploy.serving.pictures import image_grid, labelled_grid, save_image, save_points_plot
    from gandeploy.utils.io import atomic_path

    out = out or Path("samples") / f"{name}.png"  # git-ignored, like translate's default translated/
    if n < 1:
        raise UserInputError(f"--n must be >= 1, got {n}.")
    if seed < 0 or seed + n - 1 > 2**63 - 1:
        raise UserInputError(f"--seed must keep every seed in [0, 2**63 - 1], got {seed} with --n {n}.")
    if batch_size is not None and batch_size < 1 or concurrency < 1:
        raise UserInputError("--batch-size and --concurrency must be >= 1.")
    generator = open_generator(name, export_dir, backend, url, protocol)
    contract = generator.contract
    if contract.translation:
        raise UserInputError(f"'{name}' is an image-to-image model: use 'gandeploy translate {name} IMAGE'.")
    _check_budget(n, contract, f"--n {n}")  # before any array of n seeds exists
    given = {"label": label, "code": code, "continuous": parse_floats(continuous, "--continuous"),
             "truncation": truncation}
    contract.values([seed], **given)  # a flag the model does not take, or a bad value: error before any request
    seeds = np.arange(seed, seed + n, dtype=np.int64)
    rows_input = next((t for t in contract.inputs if t.classes and given.get(t.name) is None), None)
    cols, row_names, col_names = None, None, None
    if interpolate is not None:
        if traverse is not None or truncation_sweep is not None:
            raise UserInputError("--interpolate draws one strip: drop --traverse / --truncation-sweep.")
        seed_a, seed_b = _seed_pair(interpolate)
        given = {k: v for k, v in given.items() if v is not None}
        seeds, cols, rows_input = np.array([seed_a, seed_b]), steps, None
        col_names = [f"{t:.2f}" for t in np.linspace(0.0, 1.0, steps)]  # the slerp fraction of each frame
    elif truncation_sweep is not None:
        sweep = _truncation_values(truncation_sweep, truncation, traverse, contract)
        if rows_input is not None:  # fixed labels: the contract's default fill, seed % classes, in every row
            given[rows_input.name] = np.tile(seeds % rows_input.classes, len(sweep))
            rows_input = None
        seeds, cols = np.tile(seeds, len(sweep)), n
        given[TRUNCATION] = np.repeat(np.asarray(sweep, dtype=np.float32), n)
        row_names = [f"t = {t:g}" for t in sweep]
    elif traverse is not None:
        cont = next((t for t in contract.inputs if t.role == CONTINUOUS_CODE), None)
        if cont is None:
            raise UserInputError(f"--traverse needs continuous codes; '{name}' takes none (its inputs: "
                                 f"{[t.name for t in contract.inputs]}).")
        width = int(cont.dims[0])
        if not 0 <= traverse < width:
            raise UserInputError(f"--traverse must be in 0..{width - 1} ('{name}' has {width} continuous codes).")
        base = np.asarray(contract.values([seed], **given)[cont.name], dtype=np.float32)[0]  # [M]
        rows = rows_input.classes if rows_input is not None else 1
        cols = len(TRAVERSE_VALUES)
        codes = np.tile(base, (rows * cols, 1))  # [rows*cols, M]
        codes[:, traverse] = np.tile(TRAVERSE_VALUES, rows)
        given[cont.name] = codes
        seeds = np.full(rows * cols, seed, dtype=np.int64)
        col_names = [f"{v:+.1f}" for v in TRAVERSE_VALUES]  # the value of continuous code I
    else:
        rows = rows_input.classes if rows_input is not None else 0
        if rows:
            seeds, cols = np.tile(seeds, rows), n
    if rows_input is not None and rows and truncation_sweep is None:
        given[rows_input.name] = np.repeat(np.arange(rows, dtype=np.int64), cols)
        names = contract.class_names if rows_input.role == CLASS_LABEL and contract.class_names else None
        row_names = [f"{rows_input.name} {k}" + (f" ({names[k]})" if names else "") for k in range(rows)]
    _check_budget(len(seeds), contract, f"--n {n} ({len(seeds)} samples with one row per class / t)")
    start = time.perf_counter()
    with generator:
        if interpolate is not None:
            if contract.latent is None:
                raise UserInputError(f"--interpolate needs a model with a latent input; '{name}' has none.")
            result = generator.interpolate(int(seeds[0]), int(seeds[1]), steps, **given)
            seeds = np.zeros(len(result))
        else:
            result = generator.sample(seeds, batch_size=batch_size, concurrency=concurrency, **given)
    seconds = time.perf_counter() - start
    if out.suffix.lower() == ".npy":
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            np.save(fh, result)
    elif result.dtype == np.uint8:
        grid = image_grid(result, cols=cols)
        labelled = traverse is not None or truncation_sweep is not None or interpolate is not None
        save_image(out, labelled_grid(grid, result.shape[1:3], row_names, col_names) if labelled else grid)
    else:
        save_points_plot(out, result, title=f"{name}: {len(result)} samples")
    where = f"in-process ({backend} on {export_dir})" if export_dir is not None else f"over {protocol}"
    click.echo(f"Sampled {len(seeds)} from '{name}' {where} in {seconds:.2f} s "
               f"({len(seeds) / seconds:.1f} samples/s).")
    again = f"--traverse {traverse} --seed {seed + 1}" if traverse is not None else f"--n {n} --seed {seed + n}"
    if interpolate is not None:
        b = _seed_pair(interpolate)[1]
        again = f"--interpolate {b}:{b + 1} --steps {steps}"
    kept = {"--label": label, "--code": code, "--continuous": continuous, "--truncation": truncation}
    flags = "".join(f" {flag} {value}" for flag, value in kept.items() if value is not None)
    following = out.with_name(f"{out.stem}-{seed + (1 if traverse is not None else n)}{out.suffix}")
    report_outputs([out], f"gandeploy sample {name} {again}{flags} --out {following}")  # same flags, new file


def _check_budget(count: int, contract: ServedContract, what: str) -> None:
    """Refuse, before asking, a request whose results would not fit ``MAX_RESULT_BYTES`` (1 GiB) in memory."""
    out = contract.outputs[0]
    each = int(np.prod([max(int(d), 1) for d in out.dims])) * np.dtype(out.dtype).itemsize
    if count * each > MAX_RESULT_BYTES:
        most = MAX_RESULT_BYTES // each
        raise UserInputError(f"{what} asks for {count * each / 2**30:,.1f} GiB of samples ({each:,} bytes each); "
                             f"one 'gandeploy sample' makes at most 1 GiB ({most:,} samples of this model): "
                             "split it into several runs with --seed.")


def _truncation_values(text: str, truncation: float | None, traverse: int | None, contract: object) -> list[float]:
    """The t values of --truncation-sweep: finite, >= TRUNCATION_MIN, on a model with a latent, without
    --truncation/--traverse."""
    from gandeploy.models.io import TRUNCATION_MIN

    if truncation is not None or traverse is not None:
        raise UserInputError("--truncation-sweep sets the truncation of every row: drop --truncation / --traverse.")
    if contract.latent is None:  # type: ignore[attr-defined]
        raise UserInputError("--truncation-sweep needs a model with a latent input (it takes no truncation).")
    values = parse_floats(text, "--truncation-sweep") or []
    if not values or any(not np.isfinite(v) or v < TRUNCATION_MIN for v in values):
        raise UserInputError(f"--truncation-sweep takes numbers >= {TRUNCATION_MIN} such as 0.25,0.5,1.0,2.0; "
                             f"got '{text}'.")
    return values


def _seed_pair(text: str) -> tuple[int, int]:
    """``SEED_A:SEED_B`` of --interpolate, each in [0, 2**63 - 1]."""
    a, sep, b = text.partition(":")
    try:
        pair = (int(a), int(b)) if sep else None
    except ValueError:
        pair = None
    if pair is None or min(pair) < 0 or max(pair) > 2**63 - 1:
        raise UserInputError(f"--interpolate takes SEED_A:SEED_B with seeds in [0, 2**63 - 1], got '{text}'.")
    return pair
