"""``gandeploy quality-table``: each image recipe trained on several seeds, its family's quality measure and FID /
KID as mean ± std with the worst seed, beside the aim (``make quality``)."""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.cli.options import OutPath, report_outputs


@click.command("quality-table")
@click.option("--recipes", "names", default=None,
              help="Comma-separated recipe names in --recipes-dir (cgan-digits, infogan-digits, ...) or .toml paths "
                   "[default: every image recipe whose data ships, no download].")
@click.option("--recipes-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("training/recipes"),
              show_default=True, help="Folder the recipe names are looked up in.")
@click.option("--seeds", type=int, default=5, show_default=True,
              help="Seeds per recipe: 0..N-1 (the tuning seeds), or 5..5+N-1 with --held-out.")
@click.option("--held-out", is_flag=True, help="Use the held-out seeds 5.. (report the final table on these; choose "
              "settings on 0-4).")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Runs at a time (processes of one thread each when > 1; 2 suits a 2-core machine).")
@click.option("--out", "out_dir", type=OutPath(directory=True), default=Path("reports/quality"), show_default=True,
              help="Folder for quality.md / quality.json.")
@click.option("--keep-runs", is_flag=True, help="Keep every run dir under OUT/runs.")
@click.option("--max-steps", type=int, default=None,
              help="Cut every run to this many generator steps (quick checks; no aim is judged then).")
@click.option("--fid-samples", "fid_n", type=int, default=2000, show_default=True,
              help="Samples for FID / KID on digits features.")
def quality_table(names: str | None, recipes_dir: Path, seeds: int, held_out: bool, jobs: int, out_dir: Path,
                  keep_runs: bool, max_steps: int | None, fid_n: int) -> None:
    """Train every recipe on every seed; tabulate quality (mean ± std, worst seed), FID / KID and the aims.

    \b
      gandeploy quality-table --recipes cgan-digits,infogan-digits --held-out
      gandeploy quality-table --jobs 2                 # every offline image recipe, seeds 0-4
    """
    from tqdm import tqdm

    from gandeploy.errors import UserInputError
    from gandeploy.evaluation.studies import quality_table as qt

    if seeds < 1:
        raise UserInputError(f"--seeds must be >= 1, got {seeds}.")
    if fid_n < 2:
        raise UserInputError(f"--fid-samples must be >= 2, got {fid_n}.")
    recipes = qt.resolve_recipes(names.split(",") if names else None, recipes_dir)
    with tqdm(total=len(recipes) * seeds, desc="quality table", unit="run", disable=None) as bar:
        written, summaries = qt.quality_table(out_dir, recipes, seeds=range(seeds), held_out=held_out, jobs=jobs,
                                              keep_runs=keep_runs, max_steps=max_steps, fid_n=fid_n, progress=bar)
    click.echo((out_dir / "quality.md").read_text() if (out_dir / "quality.md").is_file() else "")
    report_outputs(written, f"gandeploy train --recipe {recipes[0]}")
