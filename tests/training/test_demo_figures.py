"""The demo's InfoGAN trains the shipped recipe's settings, and its traversal / translation figures are labelled."""

from __future__ import annotations

import numpy as np

from gandeploy.demo import INFOGAN_JOB, translation_figure, traversal_figure
from gandeploy.training.recipes import SHIPPED_RECIPES, load_recipe


def test_demo_infogan_is_the_recipe_cut_to_1760_steps() -> None:
    recipe = load_recipe(SHIPPED_RECIPES / "infogan-digits.toml")
    assert INFOGAN_JOB.arch == dict(recipe.arch) and INFOGAN_JOB.model == recipe.model
    same = {k: v for k, v in recipe.train.items() if k not in ("epochs", "checkpoint_every")}
    assert {k: INFOGAN_JOB.train[k] for k in same} == same  # lambda_cont, rates, loss, seed: the recipe's
    assert INFOGAN_JOB.train["epochs"] == 80  # 22 steps per epoch: 1,760 steps


def _labelled(grid: np.ndarray, rows: int, cols: int, cell: int, pad: int = 4) -> tuple[int, int]:
    """(left, top) margins of a labelled grid; asserts dark label pixels in both."""
    left = grid.shape[1] - (cols * cell + (cols + 1) * pad)
    top = grid.shape[0] - (rows * cell + (rows + 1) * pad)
    assert left > 0 and top > 0
    assert (grid[top:, :left] < 128).any() and (grid[:top, left:] < 200).any()  # row names, column names
    return left, top


def test_traversal_figure_names_its_rows_and_columns() -> None:
    sweep = np.linspace(-2.0, 2.0, 9)
    tiles = np.zeros((10 * 9, 32, 32, 1), np.uint8)
    grid = traversal_figure(tiles, sweep)
    _labelled(grid, rows=10, cols=9, cell=96)


def test_translation_figure_names_its_rows_and_columns() -> None:
    block = np.full((16, 16, 16, 3), 255, np.uint8)
    grid = translation_figure(block, block, block)
    left, top = _labelled(grid, rows=3, cols=16, cell=96)
    assert grid.shape[2] == 3 and grid.shape[0] - top == 3 * 96 + 4 * 4
