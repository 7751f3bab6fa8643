"""``gandeploy demo``: the whole pipeline on the embedded default (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.cli.options import report_outputs


@click.command("demo")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Workspace holding training/, export/, model_repository/ and demo/.")
@click.option("--retrain", is_flag=True, help="Train again even when finished runs exist.")
def demo(root: Path, retrain: bool) -> None:
    """Train CGAN (digits) + CycleGAN (digits2inverted), export, serve with Triton, call it, check parity.

    Takes a few minutes on a 2-core CPU; a second run reuses finished runs and exports.
    """
    from gandeploy.demo import run_demo, summary_table

    stages = run_demo(root, retrain=retrain)
    click.echo(summary_table(stages))
    pictures = root / "demo"
    report_outputs(sorted(pictures.glob("*.png")) + [pictures / "summary.md"],
                   "gandeploy serve   # then: gandeploy sample cgan-digits --n 64 --label 3 --out three.png",
                   title="Pictures and summary")
    click.echo("Web page: gandeploy serve, then in a second shell gandeploy ui  # open http://127.0.0.1:7860")
