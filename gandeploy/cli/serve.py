"""``gandeploy serve``: run the real tritonserver on a model repository until Ctrl-C / SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from gandeploy.cli.options import OutPath
from gandeploy.utils.logging import get_logger

log = get_logger("cli.serve")


@click.command("serve")
@click.option("--model-repository", type=click.Path(path_type=Path), default=Path("model_repository"),
              show_default=True, help="Repository built by 'gandeploy repo'.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (0.0.0.0 exposes the server to the network).")
@click.option("--http-port", type=int, default=8000, show_default=True, help="0: any free port (printed).")
@click.option("--grpc-port", type=int, default=8001, show_default=True, help="0: any free port (printed).")
@click.option("--metrics-port", type=int, default=8002, show_default=True, help="0: any free port (printed).")
@click.option("--log-file", type=OutPath(), default=None,
              help="Where Triton's log is appended  [default: a new serving/logs/tritonserver-<UTC time>.log per "
                   "start].")
@click.option("--stream-log", is_flag=True, help="Also copy Triton's log to stderr.")
@click.option("--ready-timeout", type=float, default=180.0, show_default=True,
              help="Seconds to wait for every model to be READY.")
@click.option("--no-verify", is_flag=True, help="Skip re-hashing the repository's files before starting.")
@click.option("--poll-secs", type=click.IntRange(min=0), default=2, show_default=True,
              help="How often Triton looks for models that 'gandeploy repo' adds or rebuilds in the repository "
                   "(0: load once at start).")
def serve(model_repository: Path, host: str, http_port: int, grpc_port: int, metrics_port: int, log_file: Path | None,
          stream_log: bool, ready_timeout: float, no_verify: bool, poll_secs: int) -> None:
    """Start tritonserver (bundled in nvidia-pytriton) and keep it in the foreground until Ctrl-C."""
    from gandeploy.serving.repository import verify_repository
    from gandeploy.serving.server import TritonServer

    records = {} if no_verify else verify_repository(model_repository)
    log_file = log_file or default_log_file()
    server = TritonServer(model_repository, host=host, http_port=http_port, grpc_port=grpc_port,
                          metrics_port=metrics_port, log_file=log_file, stream=sys.stderr if stream_log else None,
                          ready_timeout=ready_timeout, poll_seconds=poll_secs)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    server.start()  # Ctrl-C while models load: KeyboardInterrupt, and start() stops the server
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        states = server.model_states()
        click.echo(f"Triton is ready in {server.ready_seconds:.1f} s with {len(states)} models "
                   f"({', '.join(sorted(states))}).")
        click.echo(f"  HTTP     http://{server.http_url}")
        click.echo(f"  gRPC     {server.grpc_url}")
        click.echo(f"  metrics  {server.metrics_url}")
        click.echo(f"  log      {log_file}")
        click.echo(f"Next: {next_command(records, server)}")
        click.echo("Press Ctrl-C to stop.")
        while not stop.wait(0.5):
            if not server.running:
                code = server.process.returncode if server.process else None
                raise click.ClickException(f"tritonserver exited unexpectedly (code {code}); see {log_file}.\n"
                                           + server.log_tail(10))
        click.echo("Stopping tritonserver ...")
    finally:
        code = server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"tritonserver stopped (exit code {code}).")


def default_log_file(folder: Path = Path("serving/logs")) -> Path:
    """One log per start (``tritonserver-20261201-084700.log``), instead of every start appending to one file."""
    import datetime as dt

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    path, n = folder / f"tritonserver-{stamp}.log", 1
    while path.exists():
        n += 1
        path = folder / f"tritonserver-{stamp}-{n}.log"
    return path


def next_command(records: dict, server: object) -> str:
    """The client command that fits the first served export."""
    url = getattr(server, "grpc_url", "127.0.0.1:8001")
    port = "" if url.endswith(":8001") and url.startswith("127.0.0.1") else f" --url {url}"
    from gandeploy.contract import ServedContract
    from gandeploy.errors import ExportError

    for name, record in sorted(records.items()):
        try:
            translation = ServedContract.from_json(record.get("contract") or {}).translation
        except ExportError:  # a repository built before the served contract: tell by its served inputs
            translation = [t.get("dtype") for t in record.get("served", {}).get("inputs", [])] == ["bytes"]
        if translation:
            return f"gandeploy translate {name} IMAGE.jpg --out translated/{port}"
        return f"gandeploy sample {name} --n 64 --seed 0{port}"
    return f"gandeploy sample NAME --n 64{port}"
