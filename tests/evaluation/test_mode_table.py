"""``gandeploy mode-table``: every row trains from its recipe per seed and lands in the table with mean ± std."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gandeploy.cli import main
from gandeploy.evaluation.studies import mode_table as mt

TINY = """model = "mlp"
dataset = "{dataset}"
[arch]
nz = 2
hidden = 16
layers = 2
[train]
loss = "{loss}"
steps = 30
batch_size = 64
checkpoint_every = 1000
monitor_every = 10
"""


def _recipes(tmp_path: Path) -> Path:
    folder = tmp_path / "recipes"
    folder.mkdir()
    for dataset in mt.MIXTURES:
        for name, loss in (("nonsat", "nonsat"), ("wgangp", "wgan-gp"), ("best", "nonsat")):
            (folder / f"mlp-{dataset}-{name}.toml").write_text(TINY.format(dataset=dataset, loss=loss))
    return folder


def test_every_row_has_a_shipped_recipe_for_both_benchmarks() -> None:
    root = Path(__file__).resolve().parents[2] / "training" / "recipes"
    for dataset in mt.DATASETS:
        for row in mt.ROWS:
            if dataset in row.datasets:
                assert (root / row.recipe.format(dataset=dataset)).is_file(), row
    assert {r.key for r in mt.ROWS if mt.STACKED in r.datasets} == {"dcgan", "pacdcgan2", "best"}


def test_mode_table_trains_each_seed_and_summarises(tmp_path: Path) -> None:
    recipes = _recipes(tmp_path)
    res = CliRunner().invoke(main, ["mode-table", "--datasets", "ring8", "--rows", "nonsat,pacgan2", "--seeds", "2",
                                    "--recipes", str(recipes), "--out", str(tmp_path / "out"), "--keep-runs",
                                    "--jobs", "2"])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "out" / "modes.json").read_text())
    runs = data["runs"]
    assert [(r["row"], r["seed"]) for r in runs] == [("nonsat", 0), ("nonsat", 1), ("pacgan2", 0), ("pacgan2", 1)]
    for r in runs:  # each run trained its own seed, with the row's overrides over the recipe
        train = json.loads((tmp_path / "out" / "runs" / f"{r['row']}-ring8-s{r['seed']}" / "config.json")
                           .read_text())["train"]
        assert train["seed"] == r["seed"] and train["pack"] == (2 if r["row"] == "pacgan2" else 1)
        assert train["steps"] == 30 and r["n_modes"] == 8 and sum(r["counts"]) <= 2500
    for s in data["summary"]:
        group = [r for r in runs if r["row"] == s["row"]]
        hq = [100 * r["high_quality"] for r in group]
        assert s["hq_mean"] == pytest.approx(sum(hq) / 2) and s["hq_min"] == pytest.approx(min(hq))
        assert s["n_modes"] == 8 and s["all_modes_every_seed"] == all(r["modes"] == 8 for r in group)
    md = (tmp_path / "out" / "modes.md").read_text()
    assert "PacGAN2" in md and "7.8 / 95.9 %" not in md  # the paper's PacGAN4 figure only on its own row
    assert "Next: gandeploy train mlp ring8 --recipe" in res.output


def test_mode_table_removes_its_runs_by_default(tmp_path: Path) -> None:
    written, groups = mt.mode_table(tmp_path / "out", datasets=["grid25"], rows=mt.get_rows(["best"]), seeds=[3],
                                    recipes=_recipes(tmp_path))
    assert not (tmp_path / "out" / "runs").exists() and {p.name for p in written} == {"modes.md", "modes.json"}
    assert groups[("best", "grid25")]["n_modes"] == 25 and groups[("best", "grid25")]["seeds"] == 1
    assert groups[("best", "grid25")]["seed_list"] == [3 + mt.HELD_OUT_BASE]  # held-out seeds for best rows
    assert "held-out seeds), seeds 8 |" in (tmp_path / "out" / "modes.md").read_text()


def test_mode_table_errors_name_the_flag(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["mode-table", "--rows", "nonsat,bogus", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "--rows" in res.output and "bogus" in res.output
    res = runner.invoke(main, ["mode-table", "--datasets", "digits", "--recipes", str(_recipes(tmp_path)),
                               "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "--datasets" in res.output and "Traceback" not in res.output
    res = runner.invoke(main, ["mode-table", "--recipes", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "--recipes" in res.output


def test_a_failing_row_is_reported_and_the_rest_still_runs(tmp_path: Path) -> None:
    bad = mt.Row("bad", "pack 5 on batch 64", "mlp-{dataset}-nonsat.toml", {"pack": 5})  # 64 % 5 != 0
    rows = [bad, *mt.get_rows(["nonsat"])]
    written, groups = mt.mode_table(tmp_path / "out", datasets=["ring8"], rows=rows, seeds=[0],
                                    recipes=_recipes(tmp_path))
    assert groups[("bad", "ring8")]["seeds"] == 0 and "pack" in groups[("bad", "ring8")]["errors"][0]
    assert groups[("nonsat", "ring8")]["seeds"] == 1
    assert "| pack 5 on batch 64 | failed: " in (tmp_path / "out" / "modes.md").read_text()


def test_kept_finished_runs_are_rescored_not_retrained(tmp_path: Path) -> None:
    recipes, out = _recipes(tmp_path), tmp_path / "out"
    rows = mt.get_rows(["nonsat"])
    _, first = mt.mode_table(out, datasets=["ring8"], rows=rows, seeds=[0], recipes=recipes, keep_runs=True)
    ckpt = out / "runs" / "nonsat-ring8-s0" / "checkpoints" / "latest.pt"
    stamp = ckpt.stat().st_mtime_ns
    _, again = mt.mode_table(out, datasets=["ring8"], rows=rows, seeds=[0], recipes=recipes, keep_runs=True)
    assert ckpt.stat().st_mtime_ns == stamp and again == first


def test_kept_runs_are_retrained_when_recipe_or_overrides_change(tmp_path: Path) -> None:
    recipes, out = _recipes(tmp_path), tmp_path / "out"
    rows = mt.get_rows(["nonsat"])
    mt.mode_table(out, datasets=["ring8"], rows=rows, seeds=[0], recipes=recipes, keep_runs=True)
    run = out / "runs" / "nonsat-ring8-s0"
    recipe = recipes / "mlp-ring8-nonsat.toml"
    recipe.write_text(recipe.read_text().replace("steps = 30", "steps = 20"))
    mt.mode_table(out, datasets=["ring8"], rows=rows, seeds=[0], recipes=recipes, keep_runs=True)
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 20  # retrained, not reused
    packed = mt.Row("nonsat", "same dir, other overrides", "mlp-{dataset}-nonsat.toml", {"pack": 2})
    mt.mode_table(out, datasets=["ring8"], rows=[packed], seeds=[0], recipes=recipes, keep_runs=True)
    assert json.loads((run / "config.json").read_text())["train"]["pack"] == 2


def test_std_is_the_sample_std() -> None:
    runs = [{"modes": m, "n_modes": 8, "high_quality": h, "reverse_kl": k, "seconds": 1.0, "seed": i}
            for i, (m, h, k) in enumerate([(8, 0.90, 0.1), (6, 0.80, 0.3), (7, 0.85, 0.2)])]
    s = mt.summarise(runs)
    assert s["modes_std"] == pytest.approx(1.0) and s["hq_std"] == pytest.approx(5.0)  # ddof 1
    assert s["kl_std"] == pytest.approx(0.1) and s["std"] == "sample (ddof 1)"
    assert mt.summarise(runs[:1])["modes_std"] == 0.0
