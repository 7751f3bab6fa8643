"""Super-resolution training: SRResNet without a discriminator (n_critic 0), exact resume, SRGAN from a
srresnet run (--pretrained), the VGG19 perceptual loss from --vgg-weights, and the clean errors."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch

from gandeploy.config import RunConfig
from gandeploy.data import open_dataset
from gandeploy.errors import UserInputError
from gandeploy.registry import get_model
from gandeploy.training.api import train_run
from gandeploy.training.checkpoint import load_checkpoint
from gandeploy.training.perceptual import VGG19_LAYOUT, VGG19Features, load_vgg19
from gandeploy.training.schedule import make_schedule
from gandeploy.training.sr import SRGANTask
from gandeploy.training.task import TrainConfig
from training_helpers import assert_clean_error, cli

TINY = dict(get_model("srresnet").tiny)


def tiny_train(steps: int, **options: object) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=4, device="cpu", checkpoint_every=steps, options=options)


def test_schedule_without_discriminator_updates() -> None:
    """n_critic 0: one batch per step (a division by zero before)."""
    sched = make_schedule(items=100, batch_size=10, world_size=1, n_critic=0, epochs=2, steps=None)
    assert sched.steps_per_epoch == 10 and sched.total_steps == 20


def test_srresnet_has_no_discriminator_and_resumes_exactly(runs: Path) -> None:
    whole = train_run("srresnet", "photos", tiny_train(4), runs / "whole", arch=TINY)
    state = load_checkpoint(whole / "checkpoints" / "latest.pt")
    assert set(state["models"]) == {"G"} and set(state["optimizers"]) == {"G"}
    rows = list(csv.DictReader((whole / "losses.csv").open()))
    assert list(rows[0]) == ["step", "epoch", "pixel"] and len(rows) == 4
    assert (whole / "samples" / "epoch_001.png").is_file()
    train_run("srresnet", "photos", tiny_train(2), runs / "split", arch=TINY)
    split = train_run("srresnet", "photos", tiny_train(4), runs / "split", arch=TINY, resume=True)
    a = load_checkpoint(whole / "checkpoints" / "latest.pt")["models"]["G"]
    b = load_checkpoint(split / "checkpoints" / "latest.pt")["models"]["G"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same batches, drawn one per step, after resume


def _task(model: str, options: dict, arch: dict | None = None) -> SRGANTask:
    spec = get_model(model)
    cfg = spec.config_cls(**(arch or TINY))
    ds = open_dataset("photos", "paired", image_size=cfg.image_size, scale=spec.io(cfg).scale)
    train = tiny_train(1, **options)
    run = RunConfig(model=model, arch=cfg, train=dataclasses.asdict(train), dataset="photos")
    from gandeploy.training.api import task_class

    return task_class(spec)(run, train, torch.device("cpu"), ds)


def test_srgan_starts_from_a_srresnet_run(runs: Path) -> None:
    pre = train_run("srresnet", "photos", tiny_train(2), runs / "pre", arch=TINY)
    task = _task("srgan", {"pretrained": str(pre)})
    want = load_checkpoint(pre / "checkpoints" / "latest.pt")["models"]["G"]
    got = task.models["G"].state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert task.n_critic == 1 and "D" in task.models
    assert task.options.adv_weight == 1e-3 and task.options.pixel_loss == "mse"  # SRGAN's own defaults
    losses = task.d_step(task.dataset.get_batch(torch.arange(4), torch.Generator()), torch.Generator())
    assert set(losses) == {"loss_D", "D_real", "D_fake"}


def test_pretrained_errors_name_the_flag(runs: Path) -> None:
    with pytest.raises(UserInputError, match="--pretrained: .* is not a run dir"):
        _task("srgan", {"pretrained": str(runs / "nothing")})
    pre = train_run("srresnet", "photos", tiny_train(1), runs / "wide", arch={**TINY, "num_feat": 8})
    with pytest.raises(UserInputError, match="--pretrained: the generator of .* does not fit"):
        _task("srgan", {"pretrained": str(pre)})
    other = train_run("srvgg", "photos", tiny_train(1), runs / "vgg", arch=dict(get_model("srvgg").tiny))
    with pytest.raises(UserInputError, match="holds a srvgg generator"):
        _task("srgan", {"pretrained": str(other)})


def torchvision_vgg19_state() -> dict[str, torch.Tensor]:
    """A random state dict with torchvision's ``vgg19()`` keys and shapes (features.N, classifier.N)."""
    state, channels, index = {}, 3, 0
    for item in VGG19_LAYOUT:
        if item == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(int(item), channels, 3, 3) * 0.05
        state[f"features.{index}.bias"] = torch.zeros(int(item))
        channels, index = int(item), index + 2
    state.update({"classifier.0.weight": torch.zeros(8, 8), "classifier.0.bias": torch.zeros(8)})  # ignored
    return state


def test_vgg19_layout_matches_torchvision_indices(tmp_path: Path) -> None:
    keys = set(VGG19Features().state_dict())
    assert "features.34.weight" in keys and "features.35.weight" not in keys  # up to conv5_4
    assert sum(k.endswith(".weight") for k in keys) == 16  # the 16 convs of VGG19
    path = tmp_path / "vgg19.pth"
    torch.save(torchvision_vgg19_state(), path)
    vgg = load_vgg19(path)
    assert vgg(torch.rand(1, 3, 32, 32)).shape == (1, 512, 2, 2)
    state = torchvision_vgg19_state()
    del state["features.34.weight"]
    torch.save(state, path)
    with pytest.raises(UserInputError, match="--vgg-weights: .* lacks features.34.weight"):
        load_vgg19(path)


def test_esrgan_with_perceptual_loss(runs: Path, tmp_path: Path) -> None:
    path = tmp_path / "vgg19.pth"
    torch.save(torchvision_vgg19_state(), path)
    run = train_run("esrgan", "photos", tiny_train(2, vgg_weights=str(path)), runs / "esrgan",
                    arch=dict(get_model("esrgan").tiny))
    rows = list(csv.DictReader((run / "losses.csv").open()))
    assert {"pixel", "perceptual", "adv_G", "loss_D"} <= set(rows[0]) and float(rows[-1]["perceptual"]) > 0


def test_missing_vgg_weights_is_a_clean_cli_error(runs: Path) -> None:
    result = cli("train", "esrgan", "photos", "--vgg-weights", str(runs / "no.pth"), "--steps", "1",
                 "--device", "cpu", "--out", str(runs / "x"), "--image-size", "16",
                 *[a for k, v in get_model("esrgan").tiny.items() if k != "image_size"
                   for a in ("--arch", f"{k}={v}")])
    assert_clean_error(result, 1, "--vgg-weights", "does not exist")


def test_sr_options_validate() -> None:
    with pytest.raises(UserInputError, match="pixel_loss must be one of"):
        _task("srresnet", {"pixel_loss": "l2"})
    with pytest.raises(UserInputError, match="--pack"):
        spec = get_model("srgan")
        cfg = spec.config_cls(**TINY)
        ds = open_dataset("photos", "paired", image_size=16, scale=4)
        train = TrainConfig(steps=1, batch_size=4, device="cpu", pack=2)
        SRGANTask(RunConfig(model="srgan", arch=cfg, train=dataclasses.asdict(train)), train,
                  torch.device("cpu"), ds)
