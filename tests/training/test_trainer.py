"""The generic trainer: deterministic batches, exact resume, checkpoints and the crash story."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from gandeploy.config import load_run_config
from gandeploy.errors import CheckpointError, DataError, UserInputError
from gandeploy.training.api import train_run
from gandeploy.training.checkpoint import load_checkpoint, load_generator
from gandeploy.training.distributed import DistContext
from gandeploy.training.task import TrainConfig
from gandeploy.training.losslog import read_losses
from gandeploy.training.schedule import make_schedule
from gandeploy.training.trainer import BatchSampler

from training_helpers import TINY_CGAN, TINY_MLP, assert_clean_error, cli, gandeploy_cmd, run_subprocess, subprocess_env

CPU = {"device": "cpu"}


def test_schedule_and_batches_are_deterministic_and_sharded() -> None:
    sched = make_schedule(items=100, batch_size=8, world_size=2, n_critic=2, epochs=3, steps=None)
    assert (sched.global_batch, sched.draws_per_epoch, sched.steps_per_epoch, sched.total_steps) == (16, 6, 3, 9)
    rank0 = BatchSampler(None, sched, seed=7, ctx=DistContext(0, 2))
    rank1 = BatchSampler(None, sched, seed=7, ctx=DistContext(1, 2))
    epoch0 = torch.cat([torch.cat([rank0.indices(d), rank1.indices(d)]) for d in range(6)])
    assert epoch0.unique().numel() == 96  # one epoch: no index twice, across both ranks
    again = BatchSampler(None, sched, seed=7, ctx=DistContext(0, 2))
    assert torch.equal(again.indices(8), rank0.indices(8))  # a function of (seed, draw) only
    assert not torch.equal(rank0.indices(0), rank0.indices(6))  # a new order each epoch
    with pytest.raises(DataError, match="--batch-size"):
        make_schedule(items=10, batch_size=16, world_size=1, n_critic=1, epochs=1, steps=None)


def _loss_rows(run: Path) -> list[list[float]]:
    return read_losses(run / "losses.csv")[1]


def test_resume_equals_uninterrupted_run(runs: Path) -> None:
    """CGAN (BatchNorm, Adam) on digits: 26 steps straight == 13 steps, then --resume to 26 (22 steps per
    epoch, so the resumed part crosses an epoch boundary and a new batch order)."""
    train = TrainConfig(steps=26, batch_size=64, checkpoint_every=100, **CPU)
    straight = train_run("cgan", "digits", train, runs / "straight", arch=TINY_CGAN)
    half = train_run("cgan", "digits", train.replace(steps=13), runs / "resumed", arch=TINY_CGAN)
    # a crash after the checkpoint left rows the checkpoint does not cover: resume must drop them
    with open(half / "losses.csv", "a") as fh:
        fh.write("14,1,9.0,9.0,9.0,9.0\n15,1,9.0")
    resumed = train_run("cgan", "digits", train, runs / "resumed", resume=True)
    a, b = _loss_rows(straight), _loss_rows(resumed)
    assert len(a) == len(b) == 26 and [r[1] for r in a[20:24]] == [1, 1, 2, 2]
    assert a == b  # bit-identical losses
    sa = load_checkpoint(straight / "checkpoints" / "latest.pt")
    sb = load_checkpoint(resumed / "checkpoints" / "latest.pt")
    for key in ("G", "D"):
        for name, t in sa["models"][key].items():
            assert torch.equal(t, sb["models"][key][name]), f"{key}.{name}"
    assert sorted(p.name for p in (straight / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert (straight / "losses.png").is_file()


def test_resume_equality_with_critic_steps_and_penalty(runs: Path) -> None:
    """WGAN-GP (n_critic 5, gradient penalty) on ring8: --steps 6 == --steps 3 + --resume to 6."""
    arch = {"hidden": 16, "layers": 2}
    train = TrainConfig(loss="wgan-gp", steps=6, batch_size=32, checkpoint_every=100, **CPU)
    straight = train_run("mlp", "ring8", train, runs / "a", arch=arch)
    train_run("mlp", "ring8", train.replace(steps=3), runs / "b", arch=arch)
    resumed = train_run("mlp", "ring8", train, runs / "b", resume=True)
    assert _loss_rows(straight) == _loss_rows(resumed)
    assert load_checkpoint(resumed / "checkpoints" / "latest.pt")["step"] == 6


def test_run_dir_rules(runs: Path) -> None:
    train = TrainConfig(steps=2, batch_size=32, **CPU)
    arch = {"hidden": 8, "layers": 1}
    run = train_run("mlp", "ring8", train, runs / "r", arch=arch)
    cfg = load_run_config(run)
    assert cfg.arch.hidden == 8 and cfg.train["steps"] == 2 and cfg.dataset == "ring8"
    generator, _ = load_generator(run)  # rebuilt from the run dir alone
    assert generator(torch.zeros(3, cfg.arch.nz)).shape == (3, 2)
    with pytest.raises(UserInputError, match="--resume"):
        train_run("mlp", "ring8", train, run, arch=arch)
    with pytest.raises(UserInputError, match="hidden: 8 -> 16"):
        train_run("mlp", "ring8", train, run, arch={"hidden": 16, "layers": 1}, resume=True)
    with pytest.raises(UserInputError, match="mlp run"):
        train_run("dcgan", "digits", train, run, resume=True)
    with pytest.raises(UserInputError, match="trained on 'ring8'"):
        train_run("mlp", "grid25", train, run, resume=True)


def test_keep_every_and_periodic_checkpoints(runs: Path) -> None:
    train = TrainConfig(steps=6, batch_size=32, checkpoint_every=2, keep_every=3, **CPU)
    run = train_run("mlp", "ring8", train, runs / "k", arch={"hidden": 8, "layers": 1})
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["latest.pt", "step_000003.pt", "step_000006.pt"]
    assert load_checkpoint(run / "checkpoints" / "step_000003.pt")["step"] == 3


def test_corrupt_and_foreign_checkpoints_are_clean_errors(runs: Path) -> None:
    out = runs / "c"
    assert cli("train", "mlp", "ring8", "--steps", "2", "--out", str(out), *TINY_MLP).exit_code == 0
    latest = out / "checkpoints" / "latest.pt"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # truncated
    result = cli("train", "mlp", "ring8", "--steps", "4", "--out", str(out), "--resume", *TINY_MLP)
    assert_clean_error(result, 1, "corrupt", "latest.pt")
    torch.save({"weights": torch.zeros(2)}, latest)  # a PyTorch file, not ours
    with pytest.raises(CheckpointError, match="not a gandeploy checkpoint"):
        load_checkpoint(latest)


def _wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            return
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"run ended or stalled (rc {proc.poll()}): {proc.stderr.read() if proc.stderr else ''}")


def _csv_rows(run: Path) -> int:
    path = run / "losses.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.is_file() else 0


@pytest.mark.slow
def test_sigkill_then_ctrl_c_then_resume(runs: Path) -> None:
    """kill -9 mid-run: latest.pt loads and --resume continues; Ctrl-C: stops with a checkpoint at that step."""
    out = runs / "killed"
    base = ["train", "mlp", "ring8", "--out", str(out), *TINY_MLP]
    latest = out / "checkpoints" / "latest.pt"

    def start(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(gandeploy_cmd(*base, *args), env=subprocess_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    proc = start("--steps", "100000", "--checkpoint-every", "25")
    _wait_for(proc, lambda: latest.is_file() and load_checkpoint(latest)["step"] >= 50)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    step = load_checkpoint(latest)["step"]  # atomic writes: never half a file
    assert step >= 50 and step % 25 == 0

    # The killed run may have left rows past its checkpoint; the resumed run drops them by rewriting
    # losses.csv atomically (a new inode). Only after that do fresh rows mean its loop (and Ctrl-C handler) runs.
    csv_inode = (out / "losses.csv").stat().st_ino
    proc = start("--resume")  # keeps --steps 100000 --checkpoint-every 25 from config.json
    _wait_for(proc, lambda: (out / "losses.csv").stat().st_ino != csv_inode and _csv_rows(out) > step + 5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err  # issue 12 item 6: Ctrl-C used to exit 0, so 'train && export' went on
    assert f"resumed {out} at step {step}" in err and "interrupted after step" in err and "--resume" in err
    assert "Next: gandeploy export" not in err
    stopped = load_checkpoint(latest)["step"]
    assert stopped > step and _csv_rows(out) == stopped

    done = run_subprocess(gandeploy_cmd(*base, "--steps", str(stopped + 10), "--resume"))
    assert done.returncode == 0, done.stderr
    rows = _loss_rows(out)
    assert [int(r[0]) for r in rows] == list(range(1, stopped + 11))  # no gap, no duplicate, no torn row
    assert load_checkpoint(latest)["step"] == stopped + 10
