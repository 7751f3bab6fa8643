"""``gandeploy models [--url]``: what a running Triton serves, with each model's inputs and outputs."""

from __future__ import annotations

from typing import Any

import click


def _tensor(t: dict[str, Any]) -> str:
    dims = ", ".join(str(d) for d in t.get("shape", []))
    return f"{t['name']} {t['datatype']} [{dims}]" + (" (optional)" if t.get("optional") else "")


@click.command("models")
@click.option("--url", default=None, help="Triton address (default 127.0.0.1:8001 for grpc, :8000 for http).")
@click.option("--protocol", type=click.Choice(["grpc", "http"]), default="grpc", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Also list the internal models (generators, pre/post steps).")
def models(url: str | None, protocol: str, show_all: bool) -> None:
    """List the served models (from Triton's repository index and model metadata): name, state, tensors.

    \b
    User-facing models (the ones 'gandeploy repo' names after the export) come first; -1 is the batch axis;
    "(optional)" marks an input a request may leave out (truncation).
    """
    from gandeploy.serving.client import TritonClient, served_models

    with TritonClient(url, protocol) as client:
        rows = served_models(client)
    facing = [r for r in rows if r["user_facing"]]
    internal = [r for r in rows if not r["user_facing"]]
    click.echo(f"Triton at {client.url} ({protocol}): {len(facing)} user-facing model(s), {len(internal)} internal.")
    for row in facing + (internal if show_all else []):
        click.echo(f"{row['name']}  [{row['state']}{', ' + row['task'] if row['task'] else ''}]")
        if row["state"] == "READY":
            click.echo(f"  inputs:  {'; '.join(_tensor(t) for t in row['inputs']) or '-'}")
            click.echo(f"  outputs: {'; '.join(_tensor(t) for t in row['outputs']) or '-'}")
    if internal and not show_all:
        click.echo(f"(+{len(internal)} internal: {', '.join(r['name'] for r in internal)}; --all shows them)")
    if not facing:
        click.echo("Nothing user-facing is served: 'gandeploy repo EXPORT_DIR --out REPOSITORY' adds a model "
                   "(the server picks it up within seconds).")
