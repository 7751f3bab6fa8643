"""``gandeploy parity EXPORT_DIR``: every backend against PyTorch FP32 on fixed seeds / images; non-zero on a breach."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gandeploy.cli.options import OutPath, parse_hw, report_outputs
from gandeploy.formats import FORMATS

if TYPE_CHECKING:
    from gandeploy.evaluation.parity.parity import ParityReport


def url_protocol(url: str | None, protocol: str | None) -> str:
    """The --protocol, or a guess from --url: Triton's gRPC port 8001 means grpc, anything else http."""
    if protocol:
        return protocol
    return "grpc" if url and url.rstrip("/").endswith(":8001") else "http"


def split_list(values: tuple[str, ...]) -> list[str]:
    """``--opt a,b --opt c`` → [a, b, c] (repeatable, comma-separated)."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def parse_ints(values: tuple[str, ...], flag: str) -> list[int] | None:
    items = split_list(values)
    if not items:
        return None
    try:
        return [int(v) for v in items]
    except ValueError:
        raise click.BadParameter(f"expected integers such as 1,4,16, got '{','.join(items)}'",
                                 param_hint=flag) from None


BACKENDS_HELP = (f"Backends to compare (repeatable or comma-separated): {', '.join(k for k in FORMATS if k != 'torch')} "
                 "[default: all].")


@click.command("parity")
@click.argument("export_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--backends", multiple=True, help=BACKENDS_HELP)
@click.option("--url", default=None, help="HOST:PORT of a running 'gandeploy serve' [default: start a temporary "
                                          "server when a triton backend is compared].")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default=None,
              help="Protocol for --url [default: grpc for port 8001, else http].")
@click.option("--report", "report_dir", type=OutPath(directory=True), default=None,
              help="Where parity.json / parity.md / parity_<name>.png go [default: reports/<export name>].")
@click.option("--batch-sizes", multiple=True, help="Batch sizes, e.g. 1,4,16 [default: 1,4,16; image-to-image 1,2].")
@click.option("--sizes", multiple=True, help="Image-to-image HxW sizes, e.g. 256x256,192x256 [default: the export's "
                                             "opt size and a non-square one].")
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The run dir the export came from, if it moved (the PyTorch reference is rebuilt from it).")
@click.option("--tile", type=int, default=None,
              help="Image-to-image, without --url: the tile side of the tiled-vs-whole check (as 'gandeploy repo "
                   "--tile'); with --url the served model's tiling is checked.")
@click.option("--tile-overlap", type=int, default=None, help="Image-to-image, without --url: as 'gandeploy repo "
                                                                "--tile-overlap'.")
def parity(export_dir: Path, backends: tuple[str, ...], url: str | None, protocol: str | None, report_dir: Path | None,
           batch_sizes: tuple[str, ...], sizes: tuple[str, ...], run_dir: Path | None, tile: int | None,
           tile_overlap: int | None) -> None:
    """Compare every backend of EXPORT_DIR with the PyTorch FP32 reference; exit 1 on any breach.

    \b
    Fixed seeds (sampling) or fixed test pictures (image-to-image), several batch sizes and sizes.
    Per backend: max / mean abs error, PSNR and uint8 level difference, against one tolerance table
    (gandeploy/tolerances.py). Backends that cannot run here are listed as skipped, with why.
    Image-to-image: also tiled vs whole (a picture of 4x4 tiles within one uint8 level of PyTorch on the whole
    picture on 99.9 % of pixels; enforced where export measured a bounded receptive field).
    """
    from gandeploy.evaluation.parity.parity import DEFAULT_BACKENDS, SERVED, run_parity
    from gandeploy.evaluation.parity.report import parity_table, write_parity_report
    from gandeploy.manifest import file_problems, load_manifest

    keys = split_list(backends) or list(DEFAULT_BACKENDS)
    hws = [parse_hw(s, "--sizes") for s in split_list(sizes)] or None  # the size rule: checked by the contract
    batches = parse_ints(batch_sizes, "--batch-sizes")
    manifest = load_manifest(export_dir)
    tampered = file_problems(export_dir, manifest)  # like 'repo': artifacts must be what export measured
    for problem in tampered:
        click.echo(f"warning: {problem}", err=True)
    kwargs = dict(batch_sizes=batches, sizes=hws, protocol=url_protocol(url, protocol), run_dir=run_dir, tile=tile,
                  tile_overlap=tile_overlap)
    if url and any(k in SERVED for k in keys):
        _check_live(url, url_protocol(url, protocol))  # a dead --url is not a parity result: keep the last report
    if url or not any(k in SERVED for k in keys):
        report = run_parity(export_dir, keys, url=url, **kwargs)  # type: ignore[arg-type]
    else:
        report = _with_own_server(export_dir, keys, kwargs)
    out = report_dir or Path("reports") / manifest.name
    paths = write_parity_report(report, out)
    click.echo(parity_table(report))
    for key, reason in report.skipped.items():
        click.echo(f"skipped {key}: {reason}")
    report_outputs(paths, next_command=f"gandeploy bench {export_dir}" if report.passed and not tampered else None)
    if tampered and report.passed:
        raise click.ClickException(f"parity FAILED: the export does not match its manifest: {tampered[0]}"
                                   + (f" (+{len(tampered) - 1} more)" if len(tampered) > 1 else ""))
    if not report.passed:
        from gandeploy.errors import one_line

        bad = report.failures
        reasons: dict[str, list[str]] = {}  # one reason, in full, with the backends it stopped
        for r in bad:
            backends = reasons.setdefault(one_line(r.error or ", ".join(r.breaches)).rstrip("."), [])
            if r.backend not in backends:
                backends.append(str(r.backend))
        what = "; ".join(f"{', '.join(b)}: {reason}" for reason, b in reasons.items())
        if not report.rows:
            raise click.ClickException("parity compared no backend: every requested backend was skipped (see above).")
        if not bad and report.tiled is not None:
            raise click.ClickException(f"parity FAILED the tiled-vs-whole check: {report.tiled.line()} See "
                                       f"{out / 'parity.md'}.")
        hashes = f" The export does not match its manifest: {tampered[0]}" if tampered else ""
        raise click.ClickException(f"parity FAILED for {len(bad)} of {len(report.rows)} checks: {what}. "
                                   f"See {out / 'parity.md'}.{hashes}")
    click.echo(f"parity passed: {len(report.rows)} checks on {', '.join(report.compared)}.")


def _check_live(url: str, protocol: str) -> None:
    """ServingError, before anything is measured or written, when no Triton server answers at ``url``."""
    from gandeploy.errors import ServingError
    from gandeploy.runtimes.triton_client import TritonClient

    with TritonClient(url, protocol, timeout=10.0) as client:
        if not client.server_ready():
            raise ServingError(f"parity: cannot reach Triton at {client.url} over {protocol}: start it with "
                               "'gandeploy serve' or pass --url / --protocol (without --url parity starts its own "
                               "server). Nothing was measured or written; the last report is kept.")


def _with_own_server(export_dir: Path, keys: list[str], kwargs: dict[str, Any]) -> ParityReport:
    """Run parity with a temporary tritonserver; if it cannot start, triton backends are skipped (no tritonserver)
    or failed (the export cannot be served)."""
    from gandeploy.errors import BackendUnavailable, GanDeployError
    from gandeploy.evaluation.parity.parity import SERVED, Case, Row, run_parity
    from gandeploy.evaluation.served import local_server
    from gandeploy.tolerances import tolerance_for

    served = [k for k in keys if k in SERVED]
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(local_server([export_dir]))
        except BackendUnavailable as exc:
            skip, error = f"tritonserver unavailable: {exc}", None
        except GanDeployError as exc:
            skip, error = None, f"the export could not be served: {exc}"
        else:
            return run_parity(export_dir, keys, url=server.url(kwargs["protocol"]), **kwargs)
    report = run_parity(export_dir, [k for k in keys if k not in SERVED], **kwargs)
    for key in served:
        if skip:
            report.skipped[key] = skip
        else:
            report.rows.append(Row(key, "fp32", "float", Case(1, None, 0), tolerance_for("fp32"), error=error))
    return report
