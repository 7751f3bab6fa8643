"""ESRGAN's two stages in one run (``gan_start``): before it the generator learns from the pixel loss alone and
the discriminator is not updated; from it the adversarial term is on; a resumed run crosses it exactly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from gandeploy.config import RunConfig
from gandeploy.data import open_dataset
from gandeploy.errors import UserInputError
from gandeploy.registry import get_model
from gandeploy.training.api import task_class, train_run
from gandeploy.training.checkpoint import load_checkpoint
from gandeploy.training.sr import SRResNetTask
from gandeploy.training.task import TrainConfig

TINY = dict(get_model("esrgan").tiny)


def tiny_train(steps: int, **options: object) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=4, lr=1e-3, device="cpu", checkpoint_every=steps, options=options)


def _task(options: dict) -> SRResNetTask:
    spec = get_model("esrgan")
    cfg = spec.config_cls(**TINY)
    ds = open_dataset("photos", "paired", image_size=cfg.image_size, scale=spec.io(cfg).scale)
    train = tiny_train(4, **options)
    run = RunConfig(model="esrgan", arch=cfg, train=dataclasses.asdict(train), dataset="photos")
    torch.manual_seed(0)  # the same initial G (and D) for every task built here
    return task_class(spec)(run, train, torch.device("cpu"), ds)


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_pixel_stage_then_gan_stage() -> None:
    task = _task({"gan_start": 2, "adv_weight": 5e-3, "pixel_weight": 1.0})
    pixel_only = _task({"adv_weight": 0.0, "pixel_weight": 1.0})  # the PSNR stage proper: no D at all
    batch = task.dataset.get_batch(torch.arange(4), torch.Generator().manual_seed(0))
    d0 = _params(task.models["D"])
    for step in range(2):  # before gan_start: D untouched, G's update is exactly the pixel-only one
        assert task.d_step(batch, torch.Generator()) == {}
        assert set(task.g_step(batch, torch.Generator())) == {"pixel"}
        pixel_only.g_step(batch, torch.Generator())
        assert _same(_params(task.models["D"]), d0), f"D updated at step {step}, before gan_start"
        assert _same(_params(task.models["G"]), _params(pixel_only.models["G"])), f"G's loss at step {step}"
    assert task.step == 2
    losses = task.d_step(batch, torch.Generator())  # from gan_start: D learns, G gets the adversarial term
    assert set(losses) == {"loss_D", "D_real", "D_fake"} and not _same(_params(task.models["D"]), d0)
    assert set(task.g_step(batch, torch.Generator())) == {"pixel", "adv_G"}
    pixel_only.g_step(batch, torch.Generator())
    assert not _same(_params(task.models["G"]), _params(pixel_only.models["G"]))


def test_resume_across_gan_start_is_exact(runs: Path) -> None:
    opts = {"gan_start": 2, "adv_weight": 5e-3}
    whole = train_run("esrgan", "photos", tiny_train(4, **opts), runs / "whole", arch=TINY)
    train_run("esrgan", "photos", tiny_train(1, **opts), runs / "split", arch=TINY)
    split = train_run("esrgan", "photos", tiny_train(4, **opts), runs / "split", arch=TINY, resume=True)
    a = load_checkpoint(whole / "checkpoints" / "latest.pt")["models"]
    b = load_checkpoint(split / "checkpoints" / "latest.pt")["models"]
    for key in ("G", "D"):
        assert _same(a[key], b[key]), f"{key} differs after a resume across gan_start"
    rows = (whole / "losses.csv").read_text().splitlines()
    header = rows[0].split(",")
    loss_d = [row.split(",")[header.index("loss_D")] for row in rows[1:]]
    assert loss_d[:2] == ["", ""] and all(loss_d[2:]), loss_d  # D's loss logged from gan_start on


def test_gan_start_must_not_be_negative() -> None:
    with pytest.raises(UserInputError, match="gan_start must be >= 0"):
        _task({"gan_start": -1})
