"""Recipes travel with the package: ``--recipe NAME`` resolves a shipped recipe from an installed wheel, the
checkout's ``training/recipes/`` paths keep working, and there is one copy of each file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gandeploy.errors import UserInputError
from gandeploy.training.recipes import SHIPPED_RECIPES, load_recipe, resolve_recipe, shipped_recipes

REPO = Path(__file__).resolve().parents[2]
CHECKOUT = REPO / "training" / "recipes"


def test_one_copy_every_recipe_by_name() -> None:
    assert (REPO / "gandeploy" / "recipes").is_symlink()  # a link, not a second copy
    files = sorted(CHECKOUT.glob("*.toml"))
    assert files and shipped_recipes() == [p.stem for p in files]  # a recipe added there is shipped as is
    for path in files:
        assert resolve_recipe(path.stem).samefile(path)
        assert resolve_recipe(f"{path.stem}.toml").samefile(path)
        assert resolve_recipe(path) == path  # a path stays a path
    with pytest.raises(UserInputError, match="Did you mean 'cgan-digits'"):
        resolve_recipe("cgan-digit")
    with pytest.raises(UserInputError, match="does not exist"):
        load_recipe(resolve_recipe("no/such/recipe.toml"))
    assert SHIPPED_RECIPES.resolve() == CHECKOUT.resolve()


def test_train_by_recipe_name(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gandeploy.cli import main

    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--recipe", "mlp-ring8-best", "--steps", "1", "--out", str(out),
                                       "--arch", "hidden=8", "--device", "cpu", "--monitor-every", "0"])
    assert result.exit_code == 0, result.output
    assert (out / "checkpoints" / "latest.pt").is_file()


def test_installed_wheel_resolves_recipes_by_name(tmp_path: Path) -> None:
    """Build the wheel, install it into a bare folder, and read a recipe by name from there (no checkout)."""
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            str(REPO), "-w", str(wheels)], capture_output=True, text=True, timeout=600,
                           cwd=tmp_path)
    if build.returncode != 0:
        pytest.skip(f"cannot build the wheel here: {build.stderr[-500:]}")
    (wheel,) = wheels.glob("gandeploy-*.whl")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    code = ("import gandeploy.training.recipes as r; p = r.resolve_recipe('cgan-digits'); "
            "print(p); print(r.load_recipe(p).model); print(len(r.shipped_recipes()))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                            env=env)
    assert result.returncode == 0, result.stderr
    path, model, count = result.stdout.split()
    assert Path(path).is_relative_to(site) and not Path(path).is_symlink(), path  # the wheel's own file
    assert model == "cgan" and int(count) == len(list(CHECKOUT.glob("*.toml")))
