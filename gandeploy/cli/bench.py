"""``gandeploy bench EXPORT_DIR`` and ``gandeploy bench-suite`` (what ``make bench`` runs)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import click

from gandeploy.cli.options import OutPath, parse_hw, report_outputs
from gandeploy.cli.parity import parse_ints, split_list, url_protocol
from gandeploy.formats import FORMATS

BACKENDS_HELP = f"Backends (repeatable or comma-separated): {', '.join(FORMATS)} [default: all]."


@click.command("bench")
@click.argument("export_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--backends", multiple=True, help=BACKENDS_HELP)
@click.option("--batch-sizes", multiple=True, help="Batch sizes, e.g. 1,8,64 [default: 1,8,64; image-to-image 1,4].")
@click.option("--size", default=None, help="Image-to-image HxW [default: the export's opt size].")
@click.option("--url", default=None, help="HOST:PORT of a running 'gandeploy serve' [default: start a temporary "
                                          "server when a triton backend is benchmarked].")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default=None,
              help="Protocol for --url [default: grpc for port 8001, else http].")
@click.option("--concurrency", multiple=True, default=("1,2,4,8",), show_default=True,
              help="perf_analyzer concurrency levels for the served models ('0' to skip the sweep).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch, ONNX Runtime and the roofline [default: all cores of this process].")
@click.option("--reps", type=click.IntRange(min=1), default=10, show_default=True, help="Timed calls per point.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Untimed calls first.")
@click.option("--json", "json_file", type=OutPath(allow_dash=True), is_flag=False, flag_value="-", default=None,
              metavar="[FILE]",
              help="Also write the JSON results to FILE; '--json' alone prints them on stdout (the table then goes "
                   "to stderr).")
@click.option("--report", "report_dir", type=OutPath(directory=True), default=None,
              help="Where bench.json / bench.md / bench.png go [default: reports/<export name>].")
@click.option("--image-sizes", default=None, metavar="HxW,...",
              help="Exports with a picture input: megapixels per second of one picture at these input sizes (e.g. "
                   "256x256,1024x1024) on the in-process backends (default torch, onnxruntime), instead of the "
                   "batch sweep; written to bench-images.json. Also the whole served pipeline (PNG in, tiles, PNG "
                   "out) in-process with tiles on and off, and the served NAME with --url (or a triton backend: a "
                   "temporary server).")
@click.option("--tile", type=click.IntRange(min=1), default=None,
              help="With --image-sizes: the in-process pipeline's tile side, as 'gandeploy repo --tile'.")
@click.option("--tile-overlap", type=click.IntRange(min=0), default=None,
              help="With --image-sizes: its overlap, as 'gandeploy repo --tile-overlap'.")
def bench(export_dir: Path, backends: tuple[str, ...], batch_sizes: tuple[str, ...], size: str | None,
          url: str | None, protocol: str | None, concurrency: tuple[str, ...], threads: int | None, reps: int,
          warmup: int, json_file: Path | None, report_dir: Path | None, image_sizes: str | None, tile: int | None,
          tile_overlap: int | None) -> None:
    """Throughput and p50/p99 latency of EXPORT_DIR per backend and batch size, against a measured roofline.

    \b
    The roofline is the best torch.mm FP32 rate on the same threads; % of roofline = GFLOP per item x
    items/s / that rate. 'vs torch' is the ratio to PyTorch eager at the same batch size. Served models
    also get a perf_analyzer concurrency sweep and the dynamic-batching gain (concurrency N vs 1).
    """
    from gandeploy.evaluation.bench.bench import DEFAULT_BACKENDS, run_bench
    from gandeploy.evaluation.parity.parity import SERVED
    from gandeploy.evaluation.bench.perf_analyzer import (export_samples, perf_analyzer_command, sweep_export,
                                                    write_input_data)
    from gandeploy.evaluation.bench.report import bench_text, write_bench_report
    from gandeploy.manifest import load_manifest
    from gandeploy.utils.io import atomic_write_json

    if image_sizes is not None:
        with contextlib.ExitStack() as stack:
            _image_bench(stack, export_dir, image_sizes, split_list(backends), threads, reps, warmup, json_file,
                         report_dir, url=url, protocol=protocol, tile=tile, overlap=tile_overlap)
        return
    if tile is not None or tile_overlap is not None:
        raise click.UsageError("--tile / --tile-overlap apply with --image-sizes.")
    keys = split_list(backends) or list(DEFAULT_BACKENDS)
    batches = parse_ints(batch_sizes, "--batch-sizes")
    levels = [c for c in (parse_ints(concurrency, "--concurrency") or []) if c > 0]
    hw = parse_hw(size, "--size")  # the declared size rule: run_bench
    protocol = url_protocol(url, protocol)
    manifest = load_manifest(export_dir)
    notes: list[str] = []
    out = report_dir or Path("reports") / manifest.name
    given = (url, protocol) if url else ("localhost:8001", "grpc")  # where the printed command points
    with contextlib.ExitStack() as stack:
        if not url and any(k in SERVED for k in keys):
            url = _start_server(stack, export_dir, threads, protocol, notes)
        report = run_bench(export_dir, keys, batch_sizes=batches, hw=hw, url=url, protocol=protocol, threads=threads,
                           warmup=warmup, reps=reps)
        report.notes += notes
        data_files = write_input_data(manifest.name, manifest.contract, report.hw, out)  # perf_analyzer's input
        if url and levels and any(k in SERVED for k in keys):
            single = report.point("triton-ensemble", 1) or report.point("triton", 1)
            report.served = sweep_export(manifest, url, protocol=protocol, hw=report.hw, concurrency=levels,
                                         expected_ms=single.p50_ms if single else None, data_files=data_files)
    samples = export_samples(manifest.name, manifest.contract, report.hw)
    for model, path in data_files.items():
        report.notes.append("perf_analyzer with these inputs: " + perf_analyzer_command(
            model, path, *given, samples[model][0]))
    paths = write_bench_report([report], out) + list(data_files.values())
    if str(json_file) == "-":  # machine-readable stdout: everything else goes to stderr
        click.echo(json.dumps(report.to_json(), indent=2))
        click.echo(bench_text(report), err=True)
        click.echo(f"Wrote: {', '.join(str(p) for p in paths)}", err=True)
        return
    if json_file is not None:
        paths.append(atomic_write_json(Path(json_file), report.to_json()))
    click.echo(bench_text(report))
    report_outputs(paths, next_command=f"gandeploy parity {export_dir}")


def _image_bench(stack: contextlib.ExitStack, export_dir: Path, image_sizes: str, keys: list[str],
                 threads: int | None, reps: int, warmup: int, json_file: Path | None, report_dir: Path | None, *,
                 url: str | None, protocol: str | None, tile: int | None, overlap: int | None) -> None:
    """``--image-sizes``: megapixels per second per backend and input size (``megapixels.image_rows``): the bare
    runtimes, the served pipeline in-process with tiles on and off, and the served NAME."""
    from gandeploy.evaluation.bench.bench import default_threads
    from gandeploy.evaluation.bench.megapixels import IN_PROCESS, image_rows, image_rows_text
    from gandeploy.evaluation.bench.bench_pictures import pipeline_label, pipeline_opener, served_label, served_opener
    from gandeploy.evaluation.parity.parity import SERVED
    from gandeploy.manifest import load_manifest
    from gandeploy.utils.io import atomic_write_json

    sizes = [parse_hw(s, "--image-sizes") for s in split_list((image_sizes,))]
    served = [k for k in keys if k in SERVED]
    local = [k for k in keys if k not in SERVED] or ([] if served else list(IN_PROCESS))
    manifest = load_manifest(export_dir)
    openers = {}
    notes: list[str] = []
    if local and manifest.contract.images is not None:  # a picture input (declared IO): the whole pipeline too
        key = "onnxruntime" if "onnxruntime" in local else local[0]
        n = int(threads or default_threads())
        for tiled in (True, False):
            label = pipeline_label(key, export_dir, tile=tile, overlap=overlap, tiled=tiled)
            openers[label] = pipeline_opener(key, n, tile=tile, overlap=overlap, tiled=tiled)
    protocol = url_protocol(url, protocol)
    if served and not url:
        url = _start_server(stack, export_dir, threads, protocol, notes)
    if url:
        openers[served_label(export_dir, url, protocol)] = served_opener(url, protocol)
    rows, skipped, roof = image_rows(export_dir, sizes, local, threads=threads, reps=reps,  # type: ignore[arg-type]
                                     warmup=warmup, openers=openers)
    skipped.update({k: notes[0] for k in served if not url and notes})
    data = {"format": "gandeploy.bench-images/1", "export_dir": str(export_dir), "rows": [r.to_json() for r in rows],
            "skipped": skipped, "roofline": roof.to_json() if roof else None, "notes": notes}
    out = (report_dir or Path("reports") / load_manifest(export_dir).name) / "bench-images.json"
    paths = [atomic_write_json(out, data)]
    if str(json_file) == "-":
        click.echo(json.dumps(data, indent=2))
        click.echo(image_rows_text(rows, skipped, roof), err=True)
        return
    if json_file is not None:
        paths.append(atomic_write_json(Path(json_file), data))
    click.echo(image_rows_text(rows, skipped, roof))
    report_outputs(paths, next_command=None)


def _start_server(stack: contextlib.ExitStack, export_dir: Path, threads: int | None, protocol: str,
                  notes: list[str]) -> str | None:
    """A temporary tritonserver for the export; None (served backends skipped) when it cannot start."""
    from gandeploy.errors import BackendUnavailable
    from gandeploy.evaluation.served import local_server

    try:
        server = stack.enter_context(local_server([export_dir], threads=threads or 0))
    except BackendUnavailable as exc:
        notes.append(f"served backends skipped: {exc}")
        return None
    notes.append(f"temporary tritonserver ready in {server.ready_seconds:.1f} s")
    return str(server.url(protocol))


@click.command("bench-suite")
@click.option("--out", "work_dir", type=OutPath(directory=True),
              default=Path("reports/bench-suite"),
              show_default=True, help="Work and report dir: runs/, export/, bench.json, bench.md, bench.png.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads [default: all cores of this process; the goals are stated for 2].")
@click.option("--reps", type=click.IntRange(min=1), default=10, show_default=True, help="Timed calls per point.")
@click.option("--serve/--no-serve", default=True, show_default=True, help="Also benchmark through tritonserver.")
@click.option("--perf-analyzer/--no-perf-analyzer", "use_pa", default=True, show_default=True,
              help="Concurrency sweeps of the served models (and the serving knob sweep).")
@click.option("--knob-instances", default="1,2", show_default=True, help="Knob sweep: instance counts.")
@click.option("--knob-threads", default="1,2", show_default=True,
              help="Knob sweep: ONNX Runtime intra-op threads per instance (0: its default).")
@click.option("--knob-delays", default="0,500", show_default=True,
              help="Knob sweep: dynamic batcher max queue delays (µs).")
@click.option("--train/--no-train", default=True, show_default=True,
              help="Time gandeploy's trainer (eager and --compile) against the pytorch/examples DCGAN loop.")
@click.option("--train-steps", type=click.IntRange(min=1), default=8, show_default=True,
              help="Timed training steps per loop (batch 64 at 64x64).")
def bench_suite(work_dir: Path, threads: int | None, reps: int, serve: bool, use_pa: bool, knob_instances: str,
                knob_threads: str, knob_delays: str, train: bool, train_steps: int) -> None:
    """Benchmark default-size DCGAN 64x64 and CycleGAN 256x256 and check the speed goals (what 'make bench' runs).

    \b
    Builds random-init exports (speed does not depend on weight values), times torch, ONNX Runtime FP32/FP16
    and the served models, sweeps concurrency with perf_analyzer, sweeps the serving knobs (instances x ONNX
    Runtime threads x batcher delay) on a DCGAN ngf16 export, times the training loops, and prints each goal
    as PASS or MISS with the figure it was judged on.
    """
    from gandeploy.evaluation.bench.report import bench_text, write_bench_report
    from gandeploy.evaluation.bench.suite import run_suite

    grid = {}
    for flag, text, low in (("--knob-instances", knob_instances, 1), ("--knob-threads", knob_threads, 0),
                            ("--knob-delays", knob_delays, 0)):
        values = parse_ints((text,), flag) or []
        if not values or min(values) < low:
            raise click.UsageError(f"{flag} needs comma-separated integers >= {low}, got '{text}'.")
        grid[flag] = tuple(values)
    result = run_suite(work_dir, threads=threads, reps=reps, serve=serve, perf_analyzer=use_pa,
                       knob_instances=grid["--knob-instances"], knob_threads=grid["--knob-threads"],
                       knob_delays=grid["--knob-delays"], train=train, train_steps=train_steps)
    extra = {"goals": [g.__dict__ for g in result.goals], "serve_ready_s": result.serve_ready_s,
             "notes": result.notes, "speed": result.speed.to_json() if result.speed else None}
    goals = "\n".join(g.line() for g in result.goals)
    tables = "\n\n".join(result.tables)
    paths = write_bench_report(result.reports, work_dir, extra=extra,
                               footer=(tables + "\n\n" if tables else "") + "## Speed goals\n\n" + goals)
    for report in result.reports:
        click.echo(bench_text(report) + "\n")
    for table in result.tables:
        click.echo(table + "\n")
    click.echo("Speed goals (a MISS is reported, not an error):")
    click.echo(goals)
    for note in result.notes:
        click.echo(f"Note: {note}.")
    click.echo("Note: figures from a shared or busy CPU are noisy; compare runs on a quiet machine.")
    report_outputs(paths, next_command=None)
