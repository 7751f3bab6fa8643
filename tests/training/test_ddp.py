"""DDP under torchrun on CPU: 2 processes with the gloo backend train one run dir together."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from training_helpers import run_subprocess

from gandeploy.training.checkpoint import load_checkpoint
from gandeploy.training.losslog import read_losses


@pytest.mark.slow
def test_two_process_gloo_training(runs: Path) -> None:
    out = runs / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "gandeploy.cli", "train", "mlp", "ring8", "--steps", "4", "--batch-size", "16",
           "--arch", "hidden=16", "--device", "cpu", "--checkpoint-every", "2", "--out", str(out)]
    done = run_subprocess(cmd, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "DDP: parameters identical on all 2 ranks" in done.stderr  # gradients were averaged
    assert done.stdout.count("Run dir") == 1  # rank 0 reports, rank 0 writes
    assert done.stderr.count("training 4 steps") == 1
    assert "batch 32" in done.stderr  # 16 per rank x 2 ranks
    _, rows = read_losses(out / "losses.csv")
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4]
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["step"] == 4
    names = sorted(p.name for p in out.iterdir() if p.name != "tensorboard")  # tensorboard/: when installed
    assert names == ["checkpoints", "config.json", "losses.csv", "losses.png", "quality.json", "samples"]
