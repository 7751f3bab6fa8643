"""``gandeploy diagnose RUN``: the optimal-discriminator theorem checked on a 1D/2D mixture run (D vs D*, JS two ways)."""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.cli.options import OutPath, report_outputs


@click.command("diagnose")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--n", "n", type=int, default=20_000, show_default=True,
              help="Generated points for the KDE of p_g, and again for the expectations.")
@click.option("--bandwidth", type=float, default=None, help="KDE bandwidth [default: chosen by held-out likelihood].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--report", "report_dir", type=OutPath(directory=True), default=None,
              help="Folder for diagnose.{png,md,json} [default: RUN_DIR].")
@click.option("--json", "json_file", type=OutPath(), default=None,
              help="Also write the JSON figures here.")
def diagnose(run_dir: Path, n: int, bandwidth: float | None, seed: int, report_dir: Path | None,
             json_file: Path | None) -> None:
    """Compare the trained D with D* = p_r / (p_r + p_g) on an mlp run over mix1d, ring8 or grid25.

    \b
      gandeploy train mlp mix1d --loss minimax --n-critic 20 --steps 150
      gandeploy diagnose training/runs/mlp-mix1d
    """
    from gandeploy.errors import UserInputError
    from gandeploy.evaluation.studies import diagnose as dg
    from gandeploy.utils.io import atomic_write_json, atomic_write_text

    if n < 100 or (bandwidth is not None and bandwidth <= 0):
        raise UserInputError("--n must be >= 100 and --bandwidth > 0.")
    diag, arrays = dg.diagnose(run_dir, n_kde=n, n_eval=n, bandwidth=bandwidth, seed=seed)
    out = report_dir or run_dir
    out.mkdir(parents=True, exist_ok=True)
    written = [dg.plot(diag, arrays, out / "diagnose.png"),
               atomic_write_text(out / "diagnose.md", dg.markdown(diag, str(run_dir))),
               atomic_write_json(out / "diagnose.json", diag.to_json())]
    if json_file is not None:
        written.append(atomic_write_json(json_file, diag.to_json()))
    click.echo(f"mean |D - D*| {diag.mad:.4f}, correlation {diag.corr:.4f}; JS from D {diag.js_from_d:.4f}, "
               f"from the densities {diag.js_from_densities:.4f} nats (KDE bandwidth {diag.bandwidth:.4g})")
    click.echo(diag.text)
    report_outputs(written, f"gandeploy evaluate {run_dir} --n 5000")
