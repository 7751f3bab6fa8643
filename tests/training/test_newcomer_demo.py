"""The demo and the README tour after it (issue 12 items 1 and 9): no collision, a summary that reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from training_helpers import TINY_CGAN, cli

from gandeploy.demo import CGAN_JOB, DemoPaths, Stage, class_grid, summary_table, summary_text


def test_tour_after_demo_does_not_collide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 1: 'make demo; gandeploy train cgan digits' said 'already holds a trained run'."""
    monkeypatch.chdir(tmp_path)
    paths = DemoPaths(Path("."))
    arch = [f"--arch={k}={v}" for k, v in TINY_CGAN.items()]
    demo_run = paths.runs / CGAN_JOB.name  # where the demo trains its CGAN
    result = cli("train", "cgan", "digits", "--steps", "1", "--out", str(demo_run), "--device", "cpu", *arch)
    assert result.exit_code == 0, result.output
    assert (demo_run / "checkpoints" / "latest.pt").is_file()
    result = cli("train", "cgan", "digits", "--steps", "1", "--device", "cpu", *arch)  # the tour's first command
    assert result.exit_code == 0, result.output
    assert Path("training/runs/cgan-digits/checkpoints/latest.pt").is_file()
    for own in (paths.runs, paths.exports, paths.repository):
        assert own.parts[0] == "demo", own  # the demo never writes the tour's training/, export/, model_repository/


def _stages() -> list[Stage]:
    return [Stage("export cgan-digits (--fp16)", 3.2, "exported; onnxruntime max abs err 4.1e-06, onnxruntime-fp16 "
                  "max abs err 3.0e-03 " + "and a long tail of detail " * 8, [Path("demo/x | y.png")]),
            Stage("parity cgan-digits", 1.0, "passed, max abs err a|b")]


def test_summary_markdown_keeps_its_columns() -> None:
    """Item 9: 'max|Δ|' pipes broke the Markdown table in demo/summary.md."""
    table = summary_table(_stages())
    for line in table.strip().splitlines():
        unescaped = line.replace("\\|", "")
        assert unescaped.count("|") == 5, line  # 4 columns
    assert "max|Δ|" not in table


def test_summary_for_the_terminal_fits_100_columns() -> None:
    """Item 9: the terminal got a raw 300-column table."""
    text = summary_text(_stages())
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "a long tail of detail" in text and "parity cgan-digits" in text


def test_served_grid_has_gutters_and_labels() -> None:
    """Item 9: the headline served grid had no gutters and no row labels."""
    tiles = np.zeros((10 * 10, 8, 8, 1), np.uint8)  # 10 classes x 10 seeds, all black
    grid = class_grid(tiles, [str(i) for i in range(10)], [f"seed {k}" for k in range(10)], scale=3, pad=4)
    assert grid.ndim == 3
    assert grid.shape[0] > 10 * 24 + 11 * 4 and grid.shape[1] > 10 * 24 + 11 * 4  # room for the labels
    left = grid.shape[1] - (10 * 24 + 11 * 4)
    top = grid.shape[0] - (10 * 24 + 11 * 4)
    gutter = grid[top:, left + 4 + 24:left + 4 + 24 + 4]  # between the first two columns
    assert (gutter == 255).all()
    label_strip = grid[top + 4:top + 4 + 24, :left]  # left of the first row: its label's dark pixels
    assert (label_strip < 128).any()
    header = grid[:top, left:]
    assert (header < 200).any()  # column labels drawn


def test_demo_closing_hint_serves_the_demo_repository() -> None:
    """Issue 22 item 12: after 'make demo' the hint said 'gandeploy serve', which serves model_repository/ (the
    tour's, empty then); the demo's repository is demo/model_repository."""
    import shlex

    from gandeploy.cli.demo import web_page_hint
    from gandeploy.cli.serve import serve

    repository = DemoPaths(Path(".")).repository
    hint = web_page_hint(repository)
    command = shlex.split(hint.split(": ", 1)[1].split(",")[0])
    assert command[:2] == ["gandeploy", "serve"], hint
    ctx = serve.make_context("serve", command[2:])
    assert ctx.params["model_repository"] == repository == Path("demo/model_repository")
    assert "gandeploy ui" in hint


def test_every_demo_job_is_a_valid_small_config() -> None:
    """The demo's jobs (pix2pix and SR among them) build: their training fields are their family's, their
    architectures construct, their export sizes keep the size rule the generator declares, and the added
    image-to-image jobs stay short (a few hundred steps on tiny nets) so 'make demo' stays fast."""
    from gandeploy.demo import JOBS, PIX2PIX_JOB, SR_JOB
    from gandeploy.registry import get_model
    from gandeploy.training.api import task_class
    from gandeploy.training.recipes import make_train_config

    for job in JOBS:
        spec = get_model(job.model)
        make_train_config(dict(job.train), job.name, task_class(spec).Options)
        arch = spec.config_cls(**job.arch)
        spec.build_generator(arch)
        k = spec.io(arch).size_multiple
        for hw in job.export.values():
            assert hw[0] % k == 0 and hw[1] % k == 0, (job.name, hw, k)
    for job in (PIX2PIX_JOB, SR_JOB):
        assert job.train["steps"] <= 1000 and job.train["batch_size"] <= 16, job.name
        assert sum(p.numel() for p in get_model(job.model).build_generator(
            get_model(job.model).config_cls(**job.arch)).parameters()) < 500_000, job.name
