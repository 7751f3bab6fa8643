"""Conditional DCGAN (Mirza & Osindero, 2014, on the DCGAN body).

G: a learned label embedding joined to z, then the DCGAN generator stack.
D: the DCGAN trunk with a projection head (Miyato & Koyama, 2018): logit = ψ(h) + <embed(y), Σ_hw h>.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gandeploy.models.common import D_NORMS, ModelSpec, dcgan_init, n_upsamplings
from gandeploy.models.dcgan import discriminator_layers, generator_layers
from gandeploy.models.io import GeneratorIO, class_label, image_output, latent


@dataclass(frozen=True)
class CGANConfig:
    """Architecture only. ``num_classes`` labels 0..num_classes-1 condition both networks."""

    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    channels: int = 1
    image_size: int = 32
    num_classes: int = 10
    embed_dim: int = 50
    d_norm: str = "batch"

    def __post_init__(self) -> None:
        n_upsamplings(self.image_size)
        if min(self.nz, self.ngf, self.ndf, self.channels, self.embed_dim) < 1 or self.num_classes < 2:
            raise ValueError("nz, ngf, ndf, channels, embed_dim must be positive and num_classes >= 2")
        if self.d_norm not in D_NORMS:
            raise ValueError(f"d_norm must be one of {D_NORMS}")


class Generator(nn.Module):
    """(z [N, nz], label [N] int64) → image [N, C, S, S] in [-1, 1]."""

    def __init__(self, cfg: CGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.num_classes, cfg.embed_dim)
        self.main = nn.Sequential(*generator_layers(cfg.nz + cfg.embed_dim, cfg.ngf, cfg.channels, cfg.image_size))

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1)  # [N, nz] (also accepts [N, nz, 1, 1])
        h = torch.cat([z, self.embed(label)], dim=1)  # [N, nz + embed_dim]
        return self.main(h[:, :, None, None])  # [N, C, S, S]


class Discriminator(nn.Module):
    """(image [N, C, S, S], label [N]) → one logit per image [N]."""

    def __init__(self, cfg: CGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        width = cfg.ndf * 2 ** (n_upsamplings(cfg.image_size) - 1)
        self.main = nn.Sequential(*discriminator_layers(cfg.channels, cfg.ndf, cfg.image_size, cfg.d_norm))
        self.head = nn.Conv2d(width, 1, 4, 1, 0, bias=False)  # [N, width, 4, 4] → [N, 1, 1, 1]
        self.embed = nn.Embedding(cfg.num_classes, width)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = self.main(x)  # [N, width, 4, 4]
        projection = (self.embed(label) * h.sum(dim=(2, 3))).sum(dim=1)  # [N]
        return self.head(h).flatten() + projection


def build_generator(cfg: CGANConfig) -> Generator:
    g = Generator(cfg)
    g.apply(dcgan_init)
    return g


def build_discriminator(cfg: CGANConfig) -> Discriminator:
    d = Discriminator(cfg)
    d.apply(dcgan_init)
    return d


def generator_io(cfg: CGANConfig) -> GeneratorIO:
    return GeneratorIO(inputs=(latent(cfg.nz), class_label(cfg.num_classes)),
                       outputs=(image_output(cfg.channels, cfg.image_size, cfg.image_size),))


SPEC = ModelSpec(
    name="cgan",
    description="Conditional DCGAN: label embedding joined to z in G, projection discriminator",
    config_cls=CGANConfig,
    family="gan",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny={"nz": 8, "ngf": 4, "ndf": 4, "channels": 1, "image_size": 32, "num_classes": 10, "embed_dim": 4},
    smoke_dataset="digits",
)
