"""``gandeploy mode-table``: the ring8 / grid25 / stacked-digits mode-collapse table over seeds, beside the papers'
numbers."""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.cli.options import OutPath, report_outputs


@click.command("mode-table")
@click.option("--datasets", default="ring8,grid25", show_default=True, help="Comma-separated: ring8, grid25, stacked-digits (1,000 modes; its rows: dcgan, pacdcgan2, best).")
@click.option("--rows", "row_keys", default=None,
              help="Comma-separated rows [default: all of each data set's]: nonsat, wgangp, pacgan2, pacgan3, pacgan4, "
                   "best (ring8 / grid25); dcgan, pacdcgan2, best (stacked-digits).")
@click.option("--seeds", type=int, default=5, show_default=True, help="Seeds per row: 0..N-1; the best rows use held-out seeds 5..5+N-1 "
              "(their recipes were chosen on 0-4).")
@click.option("--recipes", type=click.Path(file_okay=False, path_type=Path), default=Path("training/recipes"),
              show_default=True, help="Folder holding the rows' recipes (mlp-<dataset>-*.toml, dcgan-stacked-digits.toml, "
              "stacked-digits-best.toml).")
@click.option("--out", "out_dir", type=OutPath(directory=True), default=Path("reports/modes"),
              show_default=True, help="Folder for modes.md / modes.json.")
@click.option("--keep-runs", is_flag=True, help="Keep every run dir under OUT/runs.")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="Runs at a time (processes of one thread each when > 1; 2 suits a 2-core machine).")
@click.option("--samples", "n_samples", type=int, default=None,
              help="Samples scored per run [default: the protocol's, 2,500 points or 26,000 stacked pictures]; "
                   "fewer for a quick check.")
def mode_table(datasets: str, row_keys: str | None, seeds: int, recipes: Path, out_dir: Path,
               keep_runs: bool, jobs: int, n_samples: int | None) -> None:
    """Train every row on every seed and tabulate modes, high-quality share and reverse KL.

    \b
      gandeploy mode-table --jobs 2              # 2 data sets x 6 rows x 5 seeds
      gandeploy mode-table --datasets ring8 --rows best --seeds 5
      gandeploy mode-table --datasets stacked-digits --rows dcgan --seeds 2
    """
    from tqdm import tqdm

    from gandeploy.errors import UserInputError
    from gandeploy.evaluation.studies import mode_table as mt

    if seeds < 1:
        raise UserInputError(f"--seeds must be >= 1, got {seeds}.")
    names = [d.strip() for d in datasets.split(",") if d.strip()]
    if not names:
        raise UserInputError(f"--datasets: no data set in '{datasets}' (choose from {', '.join(mt.DATASETS)}).")
    rows = mt.get_rows(row_keys.split(",") if row_keys else None)
    runs = sum(seeds for name in names for row in rows if name in row.datasets)
    with tqdm(total=runs, desc="mode table", unit="run", disable=None) as bar:
        written, groups = mt.mode_table(out_dir, datasets=names, rows=rows, seeds=range(seeds), recipes=recipes,
                                        keep_runs=keep_runs, jobs=jobs, progress=bar, n_samples=n_samples)
    click.echo(mt.markdown(groups, rows))
    from gandeploy.training.recipes import load_recipe

    best = recipes / next((r.recipe.format(dataset=names[0]) for r in mt.ROWS
                           if r.key == "best" and names[0] in r.datasets), f"mlp-{names[0]}-best.toml")
    model = load_recipe(best).model if best.is_file() else "mlp"
    report_outputs(written, f"gandeploy train {model} {names[0]} --recipe {best}")
