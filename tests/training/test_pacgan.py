"""PacGAN (--pack m): D judges m samples jointly; batches, penalties and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gandeploy.errors import UserInputError
from gandeploy.registry import get_model
from gandeploy.training import losses as L
from gandeploy.training.api import train_run
from gandeploy.training.checkpoint import load_checkpoint
from gandeploy.training.task import TrainConfig


@pytest.mark.parametrize(("model", "dataset", "arch", "loss"), [
    ("mlp", "ring8", {"hidden": 16, "layers": 2}, "wgan-gp"),
    ("dcgan", "digits", {"ngf": 4, "ndf": 4, "nz": 8}, "nonsat"),
])
def test_packed_discriminator_trains(tmp_path: Path, model: str, dataset: str, arch: dict, loss: str) -> None:
    train = TrainConfig(steps=3, batch_size=16, pack=4, loss=loss, n_critic=1, device="cpu", monitor_every=0)
    run = train_run(model, dataset, train, tmp_path / model, arch=arch)
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    spec = get_model(model)
    cfg = spec.config_cls(**{**spec.tiny, **arch})
    first = next(v for k, v in state["models"]["D"].items() if k.endswith("weight"))  # D's input layer
    width = 2 if model == "mlp" else 1  # the data's dimensions / channels
    assert width * 4 in first.shape[1:2], f"D's first layer takes {tuple(first.shape)}, not 4 packed samples"
    assert state["step"] == 3 and spec.packed(cfg, 4) != cfg


def test_pack_must_divide_the_batch_and_fit_the_family(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="divide batch_size"):
        TrainConfig(batch_size=10, pack=4)
    with pytest.raises(UserInputError, match="--pack applies to generators with a latent input only"):
        train_run("cgan", "digits", TrainConfig(steps=1, batch_size=16, pack=2, device="cpu"), tmp_path / "c",
                  arch={"ngf": 4, "ndf": 4, "nz": 8, "embed_dim": 4})


def test_gradient_penalty_norm_per_packed_group() -> None:
    """With group=m the penalty is the norm of the gradient of each group of m samples (one critic output)."""
    def critic(x: torch.Tensor) -> torch.Tensor:  # [N, 2] → packs of 2 → [N / 2]: sum of all coordinates
        return x.reshape(x.shape[0] // 2, 4).sum(dim=1)

    real, fake, gen = torch.zeros(4, 2), torch.ones(4, 2), torch.Generator().manual_seed(0)
    gp = L.gradient_penalty(critic, real, fake, gen, group=2)
    assert torch.isclose(gp, torch.tensor((2.0 - 1.0) ** 2))  # ‖(1, 1, 1, 1)‖ = 2 per group
