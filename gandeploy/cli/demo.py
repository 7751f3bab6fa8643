"""``gandeploy demo``: the whole pipeline on the embedded default (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.cli.options import report_outputs


@click.command("demo")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Workspace: the demo writes only ROOT/demo/ (runs, exports, repository, pictures).")
@click.option("--retrain", is_flag=True, help="Train again even when finished runs exist.")
def demo(root: Path, retrain: bool) -> None:
    """Train CGAN + InfoGAN (digits), CycleGAN (digits2inverted), pix2pix (digits-edges) and SRVGG x2 (photos),
    export, serve with Triton, call it, check parity.

    Takes a few minutes on a 2-core CPU; a second run reuses finished runs and exports.
    """
    from gandeploy.demo import DemoPaths, run_demo, summary_text

    stages = run_demo(root, retrain=retrain)
    click.echo(summary_text(stages))
    paths = DemoPaths(root)
    report_outputs(sorted(paths.pictures.glob("*.png")) + [paths.pictures / "summary.md"],
                   "the README's five-minute tour (the demo keeps its runs, exports and repository in demo/)",
                   title="Pictures and summary")
    click.echo(web_page_hint(paths.repository))


def web_page_hint(repository: Path) -> str:
    """The closing hint: serve the demo's own repository (not the tour's model_repository/), then the page."""
    return (f"Web page: gandeploy serve --model-repository {repository}, then in a second shell gandeploy ui  "
            "# open http://127.0.0.1:7860")
