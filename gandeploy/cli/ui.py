"""``gandeploy ui``: a web page (Gradio) for every model the Triton server serves, on 127.0.0.1 by default."""

from __future__ import annotations

import click


@click.command("ui")
@click.option("--url", default="127.0.0.1:8000", show_default=True, help="Triton address (HTTP port by default).")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default="http", show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address the page binds (0.0.0.0 exposes it to the network; no public share links).")
@click.option("--port", type=int, default=7860, show_default=True)
@click.option("--wait", "wait_s", type=float, default=60.0, show_default=True,
              help="Seconds to wait for the server to answer before giving up.")
def ui(url: str, protocol: str, host: str, port: int, wait_s: float) -> None:
    """Open a demo page: seed, class, code and truncation controls, sample grids, an interpolation strip and
    image-to-image upload, all built from each served model's contract. Needs the 'ui' extra (Gradio)."""
    from gandeploy.ui import launch

    click.echo(f"Page: http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}  (Ctrl-C to stop)")
    launch(url, protocol=protocol, host=host, port=port, wait_s=wait_s)
