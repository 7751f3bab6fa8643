"""Every GAN objective: values on known logits, the gradient penalty, the defaults table, and real training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from gandeploy.training import losses as L
from gandeploy.training.task import LOSSES, TrainConfig
from gandeploy.training.losslog import read_losses

from training_helpers import TINY_MLP, assert_clean_error, cli


def test_defaults_cover_every_loss() -> None:
    assert set(L.DEFAULTS) == set(LOSSES)
    assert L.resolve(TrainConfig(loss="wgan")).optimizer == "rmsprop"
    gp = L.resolve(TrainConfig(loss="wgan-gp"))
    assert (gp.lr, gp.betas, gp.n_critic) == (1e-4, (0.0, 0.9), 5)
    mine = L.resolve(TrainConfig(loss="wgan-gp", lr=3e-4, beta1=0.5, n_critic=2))
    assert (mine.lr, mine.betas, mine.n_critic) == (3e-4, (0.5, 0.9), 2)
    dcgan = L.resolve(TrainConfig())
    assert (dcgan.optimizer, dcgan.lr, dcgan.betas) == ("adam", 2e-4, (0.5, 0.999))


def test_optimizer_per_loss() -> None:
    params = [nn.Parameter(torch.zeros(2))]
    assert isinstance(L.make_optimizer(params, TrainConfig(loss="wgan")), torch.optim.RMSprop)
    adam = L.make_optimizer(params, TrainConfig(loss="hinge"))
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["betas"] == (0.0, 0.9)


def test_loss_values_on_known_logits() -> None:
    r, f = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    bce = -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())
    assert torch.allclose(L.d_loss("nonsat", r, f), bce)
    assert torch.allclose(L.d_loss("minimax", r, f), bce)
    assert torch.allclose(L.g_loss("minimax", f), torch.log(1 - torch.sigmoid(f)).mean())
    assert torch.allclose(L.g_loss("nonsat", f), -torch.log(torch.sigmoid(f)).mean())
    assert torch.allclose(L.d_loss("lsgan", r, f), torch.tensor(0.5 * (1 + 1) / 2 + 0.5 * (1 + 1) / 2))
    assert torch.allclose(L.g_loss("lsgan", f), torch.tensor(0.5 * (4 + 0) / 2))
    assert torch.allclose(L.d_loss("wgan", r, f), torch.tensor(0.0 - 1.0))
    assert torch.allclose(L.d_loss("hinge", r, f), torch.tensor((0 + 1) / 2 + (0 + 2) / 2))
    for loss in ("wgan", "wgan-gp", "hinge"):
        assert torch.allclose(L.g_loss(loss, f), torch.tensor(0.0))


def test_gradient_penalty_of_a_linear_critic() -> None:
    w = torch.tensor([3.0, 4.0])  # ‖∇‖ = 5 everywhere → penalty (5 - 1)² = 16
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    gp = L.gradient_penalty(lambda x: x @ w, real, fake, torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(16.0)
    critic = nn.Linear(2, 1)
    gp = L.gradient_penalty(lambda x: critic(x).flatten(), real, fake, torch.Generator().manual_seed(0))
    gp.backward()  # differentiable w.r.t. the critic's weights (create_graph)
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_clip_weights() -> None:
    m = nn.Linear(4, 4)
    nn.init.normal_(m.weight, std=1.0)
    L.clip_weights(m, 0.01)
    assert all(p.abs().max() <= 0.01 for p in m.parameters())


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains(loss: str, runs: Path) -> None:
    out = runs / loss
    result = cli("train", "mlp", "ring8", "--loss", loss, "--steps", "4", "--out", str(out), *TINY_MLP)
    assert result.exit_code == 0, result.output
    header, rows = read_losses(out / "losses.csv")
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    expected = ["step", "epoch", "loss_D", "loss_G", "D_real", "D_fake"] + (["gp"] if loss == "wgan-gp" else [])
    assert header == expected
    assert all(math.isfinite(v) for row in rows for v in row)
    assert (out / "checkpoints" / "latest.pt").is_file() and (out / "samples" / "epoch_001.png").is_file()


def test_wgan_gp_swaps_batchnorm_in_d_unless_asked() -> None:
    from gandeploy.data import open_dataset
    from gandeploy.registry import get_model
    from gandeploy.training.api import build_arch

    ds = open_dataset("digits", "gan", image_size=32)
    for model in ("dcgan", "cgan"):
        spec = get_model(model)
        assert build_arch(spec, "digits", {}, ds, loss="nonsat").d_norm == "batch"
        assert build_arch(spec, "digits", {}, ds, loss="wgan-gp").d_norm == "layer"
        assert build_arch(spec, "digits", {"d_norm": "batch"}, ds, loss="wgan-gp").d_norm == "batch"
    cgan = build_arch(get_model("cgan"), "digits", {}, ds)
    assert (cgan.channels, cgan.image_size, cgan.num_classes, cgan.ngf) == (1, 32, 10, 32)  # digits defaults


def test_zero_centred_penalties_of_a_linear_critic() -> None:
    w = torch.tensor([3.0, 4.0])  # ‖∇‖ = 5 everywhere → ‖∇‖² = 25
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    assert L.r1_penalty(lambda x: x @ w, real).item() == pytest.approx(25.0)
    gp0 = L.gradient_penalty(lambda x: x @ w, real, fake, torch.Generator().manual_seed(0), centre=0.0)
    assert gp0.item() == pytest.approx(25.0)
    # PacGAN groups of 2: D sees [x1, x2] (4 inputs), so the norm per group is ‖(w, w)‖ = √50
    packed = lambda x: x.reshape(-1, 4) @ torch.cat([w, w])  # noqa: E731
    assert L.r1_penalty(packed, real, group=2).item() == pytest.approx(50.0)
    critic = nn.Linear(2, 1)
    L.r1_penalty(lambda x: critic(x).flatten(), real).backward()  # differentiable w.r.t. D's weights
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("flag,column", [("--r1", "r1"), ("--zero-gp", "gp0")])
def test_penalty_flags_train_and_log(flag: str, column: str, runs: Path) -> None:
    out = runs / column
    result = cli("train", "mlp", "ring8", flag, "1.0", "--steps", "4", "--out", str(out), *TINY_MLP)
    assert result.exit_code == 0, result.output
    header, rows = read_losses(out / "losses.csv")
    assert column in header and all(float(r[header.index(column)]) >= 0 for r in rows)


def test_cyclegan_refuses_the_penalties(tmp_path: Path) -> None:
    res = cli("train", "cyclegan", "digits2inverted", "--steps", "1", "--r1", "1", "--out", str(tmp_path / "c"))
    assert_clean_error(res, 1, "--r1")
    with pytest.raises(ValueError, match="r1 and zero_gp"):
        TrainConfig(zero_gp=-1.0)


def test_lazy_r1_runs_every_nth_step(runs: Path) -> None:
    out = runs / "lazy"
    result = cli("train", "mlp", "ring8", "--r1", "1", "--r1-every", "2", "--steps", "5", "--out", str(out),
                 *TINY_MLP)
    assert result.exit_code == 0, result.output
    header, rows = read_losses(out / "losses.csv")
    r1 = [float(r[header.index("r1")]) for r in rows]  # steps 1..5; the penalty runs where (step - 1) % 2 == 0
    assert [not math.isnan(v) for v in r1] == [True, False, True, False, True]


@pytest.mark.parametrize("every", [1, 3])
def test_lazy_r1_scales_gamma_by_the_interval(runs: Path, every: int) -> None:
    """On the steps it runs, lazy R1 adds γ·N/2 · E‖∇D(x)‖² to D's loss (StyleGAN2's lazy regularisation).

    With the WGAN loss, D's unpenalised loss is exactly D_fake - D_real (both logged), so the logged loss_D
    gives the penalty's weight back: it must be γ·N/2 where R1 ran and nothing where it did not."""
    out, gamma = runs / f"lazy-scale-{every}", 0.5
    result = cli("train", "mlp", "ring8", "--loss", "wgan", "--r1", str(gamma), "--r1-every", str(every),
                 "--steps", "4", "--out", str(out), *TINY_MLP)
    assert result.exit_code == 0, result.output
    header, rows = read_losses(out / "losses.csv")
    col = {name: [float(r[header.index(name)]) for r in rows] for name in ("loss_D", "D_real", "D_fake", "r1")}
    added = []
    for loss_d, real, fake, r1 in zip(col["loss_D"], col["D_real"], col["D_fake"], col["r1"]):
        penalty = loss_d - (fake - real)
        tol = 1e-6 * max(abs(loss_d), abs(real), abs(fake))  # float32 rounding of the logged terms
        if math.isnan(r1):
            assert penalty == pytest.approx(0.0, abs=tol)
        else:
            added.append(penalty)
            assert r1 > 0 and penalty == pytest.approx(0.5 * gamma * every * r1, rel=1e-4, abs=tol)
    assert len(added) == len(range(0, 4, every))
    assert max(added) > 1e-4  # weight clipping shrinks D's gradients after step 1; step 1's term is not negligible
