"""DCGAN (Radford et al., 2016): transposed-conv generator, strided-conv discriminator.

The seed rules: no pooling, BatchNorm except G's output and D's input, ReLU in G with a tanh output,
LeakyReLU(0.2) in D, weights ~ N(0, 0.02). At 64x64 the generator's ``main.N`` module indices equal the
pytorch/examples DCGAN ``Generator`` (main.0 ConvT nz→8ngf, main.1 BN, ..., main.12 ConvT ngf→nc, main.13 Tanh),
so that repository's ``netG_epoch_N.pth`` loads unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gandeploy.models.common import D_NORMS, ModelSpec, d_norm_layer, dcgan_init, n_upsamplings
from gandeploy.models.io import GeneratorIO, image_output, latent


@dataclass(frozen=True)
class DCGANConfig:
    """Architecture only: latent size, widths, image channels and size (32, 64 or 128)."""

    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    channels: int = 3
    image_size: int = 64
    d_norm: str = "batch"  # 'layer' or 'none' for WGAN-GP (BatchNorm breaks the per-sample penalty)

    def __post_init__(self) -> None:
        n_upsamplings(self.image_size)
        if min(self.nz, self.ngf, self.ndf, self.channels) < 1:
            raise ValueError("nz, ngf, ndf and channels must be positive")
        if self.d_norm not in D_NORMS:
            raise ValueError(f"d_norm must be one of {D_NORMS}")


def generator_layers(nz_in: int, ngf: int, channels: int, image_size: int) -> list[nn.Module]:
    """The DCGAN generator stack: [N, nz_in, 1, 1] → [N, channels, image_size, image_size] in [-1, 1]."""
    n = n_upsamplings(image_size)  # 64x64: 4 stride-2 stages after the 4x4 projection
    mult = 2 ** (n - 1)  # 64x64: 8 → ngf*8 at 4x4
    layers: list[nn.Module] = [  # [N, nz, 1, 1] → [N, ngf*mult, 4, 4]
        nn.ConvTranspose2d(nz_in, ngf * mult, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * mult),
        nn.ReLU(True),
    ]
    for _ in range(n - 1):  # each doubles H and W and halves the width
        layers += [
            nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * mult // 2),
            nn.ReLU(True),
        ]
        mult //= 2
    layers += [nn.ConvTranspose2d(ngf, channels, 4, 2, 1, bias=False), nn.Tanh()]  # → [N, C, S, S]
    return layers


def discriminator_layers(channels_in: int, ndf: int, image_size: int, d_norm: str) -> list[nn.Module]:
    """The DCGAN discriminator trunk: [N, channels_in, S, S] → [N, ndf*mult, 4, 4] (no head)."""
    n = n_upsamplings(image_size)
    layers: list[nn.Module] = [nn.Conv2d(channels_in, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    mult, size = 1, image_size // 2
    for _ in range(n - 1):
        size //= 2
        layers += [
            nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False),
            d_norm_layer(d_norm, ndf * mult * 2, size),
            nn.LeakyReLU(0.2, True),
        ]
        mult *= 2
    return layers


class Generator(nn.Module):
    """z [N, nz] (or [N, nz, 1, 1]) → image [N, C, S, S] in [-1, 1]."""

    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.main = nn.Sequential(*generator_layers(cfg.nz, cfg.ngf, cfg.channels, cfg.image_size))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]  # [N, nz] → [N, nz, 1, 1]
        return self.main(z)


class Discriminator(nn.Module):
    """image [N, C, S, S] → one logit per image [N] (no sigmoid: the loss decides)."""

    def __init__(self, cfg: DCGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.main = nn.Sequential(*discriminator_layers(cfg.channels, cfg.ndf, cfg.image_size, cfg.d_norm))
        width = cfg.ndf * 2 ** (n_upsamplings(cfg.image_size) - 1)
        self.head = nn.Conv2d(width, 1, 4, 1, 0, bias=False)  # [N, width, 4, 4] → [N, 1, 1, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.main(x)).flatten()


def build_generator(cfg: DCGANConfig) -> Generator:
    g = Generator(cfg)
    g.apply(dcgan_init)
    return g


def build_discriminator(cfg: DCGANConfig) -> Discriminator:
    d = Discriminator(cfg)
    d.apply(dcgan_init)
    return d


def generator_io(cfg: DCGANConfig) -> GeneratorIO:
    return GeneratorIO(inputs=(latent(cfg.nz),), outputs=(image_output(cfg.channels, cfg.image_size, cfg.image_size),))


SPEC = ModelSpec(
    name="dcgan",
    description="DCGAN: transposed-conv generator, strided-conv discriminator (32/64/128 px)",
    config_cls=DCGANConfig,
    family="gan",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny={"nz": 8, "ngf": 4, "ndf": 4, "channels": 1, "image_size": 32},
    smoke_dataset="digits",
)
