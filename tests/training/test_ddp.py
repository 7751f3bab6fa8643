"""DDP under torchrun on CPU: 2 processes with the gloo backend train one run dir together, and exit cleanly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from training_helpers import run_subprocess

from gandeploy.training.checkpoint import load_checkpoint
from gandeploy.training.losslog import read_losses

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
REPEATS = 20  # the exit race showed on a loaded machine about once in ten runs


def train_two_ranks(out: Path) -> None:
    """The two-process gloo run and every check of it (rc 0 on both ranks, one voice, one set of files)."""
    cmd = [*TORCHRUN, "-m", "gandeploy.cli", "train", "mlp", "ring8", "--steps", "4", "--batch-size", "16",
           "--arch", "hidden=16", "--device", "cpu", "--checkpoint-every", "2", "--out", str(out)]
    done = run_subprocess(cmd, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "terminate called" not in done.stderr, done.stderr[-3000:]
    assert "DDP: parameters identical on all 2 ranks" in done.stderr  # gradients were averaged
    assert done.stdout.count("Run dir") == 1  # rank 0 reports, rank 0 writes
    assert done.stderr.count("training 4 steps") == 1
    assert "batch 32" in done.stderr  # 16 per rank x 2 ranks
    _, rows = read_losses(out / "losses.csv")
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4]
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == 4
    names = sorted(p.name for p in out.iterdir() if p.name != "tensorboard")  # tensorboard/: when installed
    assert names == ["checkpoints", "config.json", "losses.csv", "losses.png", "quality.json", "samples"]


@pytest.mark.slow
def test_two_process_gloo_training(runs: Path) -> None:
    train_two_ranks(runs / "ddp")


@pytest.mark.slow
def test_finished_ddp_run_leaves_nothing_for_shutdown(runs: Path) -> None:
    """After ``train_run`` returns on each rank: no DDP wrapper alive (without a gc pass), no process group, and
    only the main thread (tqdm's monitor, the prefetch worker and TensorBoard's writer all joined)."""
    worker = Path(__file__).with_name("ddp_worker.py")
    done = run_subprocess([*TORCHRUN, str(worker), str(runs / "ddp-alive")], timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = sorted((json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")),
                     key=lambda r: r["rank"])
    assert [r["rank"] for r in reports] == [0, 1], done.stdout
    for report in reports:
        assert report == {"rank": report["rank"], "ddp": 0, "initialized": False, "threads": ["MainThread"]}


@pytest.mark.slow
@pytest.mark.stress
@pytest.mark.timeout(3600)  # 20 runs; several minutes on a loaded 2-core machine
def test_two_process_gloo_training_20_times(runs: Path) -> None:
    """The exit race is rare: every one of 20 runs in a row must exit 0 on both ranks. Deselected by default
    (about 2 minutes); run it with ``pytest -m stress tests/training/test_ddp.py``."""
    for i in range(REPEATS):
        train_two_ranks(runs / f"ddp-{i:02d}")
