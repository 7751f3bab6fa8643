"""GAN objectives on raw discriminator logits, and the optimizer each one is known to train well with.

| loss      | D minimises                              | G minimises              | optimizer (lr, betas), n_critic |
|-----------|------------------------------------------|--------------------------|---------------------------------|
| minimax   | softplus(-r) + softplus(f)  (= BCE)      | -softplus(f) = log(1-D)  | Adam 2e-4 (0.5, 0.999), 1       |
| nonsat    | softplus(-r) + softplus(f)               | softplus(-f) = -log D    | Adam 2e-4 (0.5, 0.999), 1       |
| lsgan     | ½(r-1)² + ½f²                            | ½(f-1)²                  | Adam 2e-4 (0.5, 0.999), 1       |
| wgan      | f - r, then clip D's weights to ±c       | -f                       | RMSprop 5e-5, 5                 |
| wgan-gp   | f - r + λ(‖∇D(x̂)‖ - 1)²                  | -f                       | Adam 1e-4 (0.0, 0.9), 5         |
| hinge     | relu(1-r) + relu(1+f)                    | -f                       | Adam 2e-4 (0.0, 0.9), 1         |

``r`` and ``f`` are D's logits on real and generated samples (means over the batch). Any loss can add the
zero-centred penalties ``TrainConfig.r1`` (γ/2·‖∇D(x)‖² on real samples) and ``zero_gp`` (λ·‖∇D(x̂)‖² on
real–fake interpolates). The defaults follow the
papers (Goodfellow 2014, Mao 2017, Arjovsky 2017, Gulrajani 2017, Miyato 2018) and apply only where the
``TrainConfig`` field is ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gandeploy.training.task import TrainConfig


@dataclass(frozen=True)
class LossDefaults:
    """Optimizer settings a loss trains well with."""

    optimizer: str  # "adam" | "rmsprop"
    lr: float
    beta1: float
    beta2: float
    n_critic: int


DEFAULTS: dict[str, LossDefaults] = {
    "minimax": LossDefaults("adam", 2e-4, 0.5, 0.999, 1),
    "nonsat": LossDefaults("adam", 2e-4, 0.5, 0.999, 1),
    "lsgan": LossDefaults("adam", 2e-4, 0.5, 0.999, 1),
    "wgan": LossDefaults("rmsprop", 5e-5, 0.0, 0.0, 5),
    "wgan-gp": LossDefaults("adam", 1e-4, 0.0, 0.9, 5),
    "hinge": LossDefaults("adam", 2e-4, 0.0, 0.9, 1),
}


@dataclass(frozen=True)
class OptimSettings:
    """A ``TrainConfig``'s optimizer fields with the loss defaults filled in."""

    optimizer: str
    lr: float
    betas: tuple[float, float]
    n_critic: int


def resolve(train: TrainConfig) -> OptimSettings:
    """Fill the ``None`` fields of ``train`` (lr, betas, n_critic) from the loss's defaults."""
    d = DEFAULTS[train.loss]
    return OptimSettings(
        optimizer=d.optimizer,
        lr=train.lr if train.lr is not None else d.lr,
        betas=(train.beta1 if train.beta1 is not None else d.beta1,
               train.beta2 if train.beta2 is not None else d.beta2),
        n_critic=train.n_critic if train.n_critic is not None else d.n_critic,
    )


def make_optimizer(params: Iterable[nn.Parameter], train: TrainConfig, net: str = "") -> torch.optim.Optimizer:
    """The optimizer for ``train.loss`` (RMSprop for WGAN, Adam otherwise) of network ``net`` ("G" or "D"):
    ``train.lr_g`` / ``train.lr_d`` (TTUR) override the shared learning rate for that network."""
    s = resolve(train)
    own = {"G": train.lr_g, "D": train.lr_d}.get(net)
    lr = own if own is not None else s.lr
    if s.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=s.betas)


def d_loss(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss from logits ``real`` [N] and ``fake`` [M] (WGAN-GP's penalty is added separately)."""
    real, fake = real.float(), fake.float()
    if loss in ("minimax", "nonsat"):
        return F.softplus(-real).mean() + F.softplus(fake).mean()  # BCE(real, 1) + BCE(fake, 0)
    if loss == "lsgan":
        return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake**2).mean()
    if loss in ("wgan", "wgan-gp"):
        return fake.mean() - real.mean()
    if loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    raise ValueError(f"unknown loss '{loss}'")


def g_loss(loss: str, fake: torch.Tensor) -> torch.Tensor:
    """Generator loss from D's logits on generated samples ``fake`` [M]."""
    fake = fake.float()
    if loss == "minimax":
        return -F.softplus(fake).mean()  # log(1 - sigmoid(f)) = -softplus(f)
    if loss == "nonsat":
        return F.softplus(-fake).mean()  # -log sigmoid(f)
    if loss == "lsgan":
        return 0.5 * ((fake - 1.0) ** 2).mean()
    if loss in ("wgan", "wgan-gp", "hinge"):
        return -fake.mean()
    raise ValueError(f"unknown loss '{loss}'")


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     gen: torch.Generator, group: int = 1, centre: float = 1.0) -> torch.Tensor:
    """Mean over the batch of (‖∇ₓ D(x̂)‖₂ - centre)² at x̂ = εx + (1-ε)x̃, ε ~ U[0, 1] per sample.

    ``centre`` 1 is WGAN-GP (Gulrajani 2017); 0 is the zero-centred penalty of Thanh-Tung et al. (2019), which
    keeps D smooth on the paths from generated to real samples. ``critic`` maps x̂ to logits (bind labels
    beforehand for conditional models). Runs in float32. ``group`` > 1 (PacGAN): the critic judges consecutive
    groups of that many samples, so the norm is taken per group.
    """
    n = real.shape[0]
    eps = torch.rand(n, *([1] * (real.dim() - 1)), generator=gen).to(real.device)  # [N, 1, 1, 1] or [N, 1]
    mixed = (eps * real.float() + (1.0 - eps) * fake.float()).requires_grad_(True)  # [N, ...]
    return ((_grad_norms(critic, mixed, group) - centre) ** 2).mean()


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, group: int = 1) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): mean over the batch of ‖∇ₓ D(x)‖₂² on real samples, in float32.

    The loss adds γ/2 times it. ``group`` as in ``gradient_penalty``."""
    return (_grad_norms(critic, real.float().detach().requires_grad_(True), group) ** 2).mean()


def _grad_norms(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, group: int) -> torch.Tensor:
    """‖∇ₓ critic(x)‖₂ per judged group [N / group], with a graph for the second-order update."""
    out = critic(x).float()  # [N / group]
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)  # [N, ...]
    return grad.reshape(x.shape[0] // group, -1).norm(2, dim=1)


@torch.no_grad()
def clip_weights(module: nn.Module, bound: float) -> None:
    """WGAN's Lipschitz constraint: clamp every parameter of the critic to [-bound, bound]."""
    for p in module.parameters():
        p.clamp_(-bound, bound)
