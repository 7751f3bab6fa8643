"""The original fully connected GAN (Goodfellow et al., 2014) for 2D points and small images.

With ``image_size == 0`` the data are vectors of ``data_dim`` (the 2D mixtures: linear output).
With ``image_size > 0`` the generator emits [N, C, S, S] images through tanh, like the conv models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gandeploy.models.common import ModelSpec
from gandeploy.models.io import GeneratorIO, image_output, latent, points_output


@dataclass(frozen=True)
class MLPConfig:
    """Architecture only: latent size, hidden width and depth, and the data shape."""

    nz: int = 2
    hidden: int = 128
    layers: int = 3
    d_hidden: int = 0  # the discriminator's width; 0: the same as ``hidden``
    g_batchnorm: bool = False  # BatchNorm after each hidden Linear of G (as PacGAN's / VEEGAN's 2D generators)
    data_dim: int = 2  # used when image_size == 0
    channels: int = 1
    image_size: int = 0  # 0: vector data; > 0: square images

    def __post_init__(self) -> None:
        if min(self.nz, self.hidden, self.layers, self.channels) < 1 or self.image_size < 0 or self.d_hidden < 0:
            raise ValueError("nz, hidden, layers and channels must be positive, image_size and d_hidden >= 0")
        if self.image_size == 0 and self.data_dim < 1:
            raise ValueError("data_dim must be positive for vector data")

    @property
    def out_features(self) -> int:
        return self.channels * self.image_size**2 if self.image_size else self.data_dim


def _mlp(n_in: int, hidden: int, layers: int, n_out: int, act: nn.Module, batchnorm: bool = False) -> nn.Sequential:
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), *([nn.BatchNorm1d(hidden)] if batchnorm else []), act]
        width = hidden
    mods.append(nn.Linear(width, n_out))
    return nn.Sequential(*mods)


class Generator(nn.Module):
    """z [N, nz] → points [N, data_dim], or images [N, C, S, S] in [-1, 1]."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.net = _mlp(cfg.nz, cfg.hidden, cfg.layers, cfg.out_features, nn.ReLU(), cfg.g_batchnorm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z.reshape(z.shape[0], -1))  # [N, out_features]
        if self.cfg.image_size:
            s = self.cfg.image_size
            return torch.tanh(out).reshape(-1, self.cfg.channels, s, s)
        return out


class Discriminator(nn.Module):
    """points [N, D] or images [N, C, S, S] → one logit per sample [N]."""

    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.net = _mlp(cfg.out_features, cfg.d_hidden or cfg.hidden, cfg.layers, 1, nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], -1)).flatten()


# PyTorch's default (Kaiming-uniform) init, not DCGAN's N(0, 0.02): through a few Linear+ReLU layers the tiny
# weights squash a 2D generator's output onto a line, and WGAN-GP on ring8 was still stuck there after 600 steps.
def build_generator(cfg: MLPConfig) -> Generator:
    return Generator(cfg)


def build_discriminator(cfg: MLPConfig) -> Discriminator:
    return Discriminator(cfg)


def generator_io(cfg: MLPConfig) -> GeneratorIO:
    if cfg.image_size:
        out = image_output(cfg.channels, cfg.image_size, cfg.image_size)
    else:
        out = points_output(cfg.data_dim)
    return GeneratorIO(inputs=(latent(cfg.nz),), outputs=(out,))


SPEC = ModelSpec(
    name="mlp",
    description="Fully connected GAN for 2D points (ring8, grid25) and small images",
    config_cls=MLPConfig,
    family="gan",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny={"nz": 2, "hidden": 16, "layers": 2, "data_dim": 2},
    smoke_dataset="ring8",
)
