"""--instance-noise: D's inputs get N(0, σ²) noise, σ falling linearly to 0 over the constant-LR epochs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gandeploy.data import open_dataset
from gandeploy.training.api import train_run
from gandeploy.training.checkpoint import load_checkpoint
from gandeploy.training.gan import SamplingTask
from gandeploy.training.task import TrainConfig
from training_helpers import assert_clean_error, cli

ARCH = {"hidden": 16, "layers": 2}


def _task(train: TrainConfig) -> SamplingTask:
    from gandeploy.config import RunConfig
    from gandeploy.models.mlp import MLPConfig

    run = RunConfig(model="mlp", arch=MLPConfig(**ARCH), train={}, dataset="ring8")
    return SamplingTask(run, train, torch.device("cpu"), open_dataset("ring8", "gan"))


def test_noise_std_falls_linearly_to_zero_over_the_constant_epochs() -> None:
    task = _task(TrainConfig(epochs=2, epochs_decay=2, batch_size=256, instance_noise=0.4, device="cpu"))
    spe = task.steps_per_epoch  # 200 at batch 256
    horizon = 2 * spe
    for step, want in ((0, 0.4), (horizon // 4, 0.3), (horizon // 2, 0.2), (horizon, 0.0), (horizon + 50, 0.0)):
        task.step = step
        assert task.instance_noise_std() == pytest.approx(want)
    off = _task(TrainConfig(epochs=2, batch_size=256, device="cpu"))
    x = torch.randn(8, 2)
    assert off._instance_noise(x, torch.Generator().manual_seed(0)) is x  # off: untouched, no draw


def test_noisy_d_inputs_change_training_and_stay_reproducible(tmp_path: Path) -> None:
    def run(name: str, noise: float) -> dict:
        train = TrainConfig(steps=20, batch_size=32, instance_noise=noise, device="cpu", monitor_every=0,
                            checkpoint_every=1000)
        return load_checkpoint(train_run("mlp", "ring8", train, tmp_path / name, arch=ARCH) /
                               "checkpoints" / "latest.pt")["models"]["D"]

    plain, noisy, again = run("plain", 0.0), run("noisy", 0.5), run("again", 0.5)
    assert any(not torch.equal(plain[k], noisy[k]) for k in plain)  # the noise reached D's updates
    assert all(torch.equal(noisy[k], again[k]) for k in noisy)  # drawn from the step's own generator


def test_instance_noise_flag_and_refusals(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="instance_noise"):
        TrainConfig(instance_noise=-0.1)
    res = cli("train", "cyclegan", "digits2inverted", "--steps", "1", "--instance-noise", "0.1",
              "--out", str(tmp_path / "c"))
    assert_clean_error(res, 1, "--instance-noise")
