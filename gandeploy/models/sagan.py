"""SAGAN (Zhang et al., 2019): a DCGAN-style body with one self-attention block and spectral norm in G and D.

The layout of the authors' reference code (heykeetae/Self-Attention-GAN), with one attention block placed by
``attn_res`` (the feature-map side it sees, e.g. 16 → after the layer that outputs 16x16, in G and in D):

G: z [N, nz] → SN ConvT 4x4 → [N, ngf·2^(n-1), 4, 4] → (SN ConvT 4/2/1 → BN → ReLU) x (n-1), attention at
   ``attn_res`` → SN ConvT → tanh → [N, C, S, S]. ``num_classes > 0``: every BN is conditional, fed by a
   learned class embedding (the paper's conditional BN), and ``label`` [N] is a second input.
D: [N, C, S, S] → (SN Conv 4/2/1 → LeakyReLU 0.1) x n, attention at ``attn_res`` → [N, ndf·2^(n-1), 4, 4]
   → SN Conv 4x4 → logit [N]; conditional: + ⟨SN embed(y), Σ_hw h⟩ (projection, Miyato & Koyama 2018).

Trained with the hinge loss and TTUR (G 1e-4, D 4e-4, Adam betas (0, 0.9)) in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gandeploy.models.blocks import SelfAttention, apply_spectral_norm, norm2d, orthogonal_init
from gandeploy.models.common import ModelSpec, n_upsamplings
from gandeploy.models.io import GeneratorIO, class_label, image_output, latent


@dataclass(frozen=True)
class SAGANConfig:
    """Architecture only. ``num_classes`` 0: unconditional; ≥ 2: conditional BN in G, projection D.

    ``attn_res`` 0 removes the attention block and ``g_sn`` False spectral norm in G (ablations).
    """

    nz: int = 128
    ngf: int = 64
    ndf: int = 64
    channels: int = 3
    image_size: int = 64
    num_classes: int = 0
    embed_dim: int = 64  # class embedding feeding the conditional BNs
    attn_res: int = 16
    g_sn: bool = True

    def __post_init__(self) -> None:
        n_upsamplings(self.image_size)
        if min(self.nz, self.ngf, self.ndf, self.channels, self.embed_dim) < 1:
            raise ValueError("nz, ngf, ndf, channels and embed_dim must be positive")
        if self.num_classes == 1 or self.num_classes < 0:
            raise ValueError("num_classes must be 0 (unconditional) or >= 2")
        sides = attention_sides(self.image_size)
        if self.attn_res and self.attn_res not in sides:
            raise ValueError(f"attn_res must be 0 or one of {sides} at image_size {self.image_size}")
        if self.attn_res and (g_width(self, self.attn_res) % 8 or d_width(self, self.attn_res) % 8):
            raise ValueError(f"attention at {self.attn_res}x{self.attn_res} needs 8 | the widths there "
                             f"(G {g_width(self, self.attn_res)}, D {d_width(self, self.attn_res)})")


def attention_sides(image_size: int) -> tuple[int, ...]:
    """Feature-map sides where the attention block may sit: 8 .. image_size/2 (the inner layers)."""
    return tuple(2 ** k for k in range(3, n_upsamplings(image_size) + 2))


def g_width(cfg: SAGANConfig, side: int) -> int:
    """G's channels at feature side ``side`` (4 → ngf·2^(n-1), halving per doubling)."""
    return cfg.ngf * 2 ** (n_upsamplings(cfg.image_size) - 1) * 4 // side


def d_width(cfg: SAGANConfig, side: int) -> int:
    """D's channels at feature side ``side`` (S/2 → ndf, doubling per halving)."""
    return cfg.ndf * cfg.image_size // (2 * side)


class Generator(nn.Module):
    """z [N, nz] (+ label [N] int64 when conditional) → image [N, C, S, S] in [-1, 1]."""

    def __init__(self, cfg: SAGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        cond = cfg.embed_dim if cfg.num_classes else 0
        self.embed = nn.Embedding(cfg.num_classes, cfg.embed_dim) if cfg.num_classes else None
        side = 4
        self.convs = nn.ModuleList([nn.ConvTranspose2d(cfg.nz, g_width(cfg, 4), 4, 1, 0, bias=False)])
        self.norms = nn.ModuleList([norm2d(g_width(cfg, 4), cond)])
        self.attn: nn.ModuleDict = nn.ModuleDict()
        while side < cfg.image_size // 2:
            c_in, side = g_width(cfg, side), side * 2
            self.convs.append(nn.ConvTranspose2d(c_in, g_width(cfg, side), 4, 2, 1, bias=False))
            self.norms.append(norm2d(g_width(cfg, side), cond))
            if side == cfg.attn_res:
                self.attn[str(len(self.convs) - 1)] = SelfAttention(g_width(cfg, side))
        self.to_rgb = nn.ConvTranspose2d(cfg.ngf, cfg.channels, 4, 2, 1, bias=False)  # [N, C, S, S]

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        c = None
        if self.embed is not None:
            if label is None:
                raise ValueError("this SAGAN is class-conditional: pass label [N]")
            c = self.embed(label.reshape(-1))  # [N, embed_dim]
        h = z.reshape(z.shape[0], -1)[:, :, None, None]  # [N, nz, 1, 1]
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            h = torch.relu(norm(conv(h), c))  # [N, width, side, side]
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        return torch.tanh(self.to_rgb(h))  # [N, C, S, S]


class Discriminator(nn.Module):
    """image [N, C, S, S] (+ label [N] when conditional) → one logit per image [N]."""

    def __init__(self, cfg: SAGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        side = cfg.image_size // 2
        self.convs = nn.ModuleList([nn.Conv2d(cfg.channels, d_width(cfg, side), 4, 2, 1)])
        self.attn: nn.ModuleDict = nn.ModuleDict()
        while True:
            if side == cfg.attn_res:
                self.attn[str(len(self.convs) - 1)] = SelfAttention(d_width(cfg, side))
            if side == 4:
                break
            self.convs.append(nn.Conv2d(d_width(cfg, side), d_width(cfg, side // 2), 4, 2, 1))
            side //= 2
        width = d_width(cfg, 4)
        self.head = nn.Conv2d(width, 1, 4, 1, 0)  # [N, width, 4, 4] → [N, 1, 1, 1]
        self.embed = nn.Embedding(cfg.num_classes, width) if cfg.num_classes else None

    def forward(self, x: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for i, conv in enumerate(self.convs):
            h = nn.functional.leaky_relu(conv(h), 0.1)  # [N, width, side, side]
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        logit = self.head(h).flatten()  # [N]
        if self.embed is not None:
            if label is None:
                raise ValueError("this SAGAN is class-conditional: pass label [N]")
            logit = logit + (self.embed(label.reshape(-1)) * h.sum(dim=(2, 3))).sum(dim=1)  # projection
        return logit


SN_WITH_EMBEDDING = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


def build_generator(cfg: SAGANConfig) -> Generator:
    g = Generator(cfg)
    g.apply(orthogonal_init)
    if cfg.g_sn:  # convs, attention and conditional-BN projections; the class embedding stays plain
        apply_spectral_norm(g, exclude=[g.embed] if g.embed is not None else ())
    return g


def build_discriminator(cfg: SAGANConfig) -> Discriminator:
    d = Discriminator(cfg)
    d.apply(orthogonal_init)
    return apply_spectral_norm(d, SN_WITH_EMBEDDING)  # type: ignore[return-value]


def generator_io(cfg: SAGANConfig) -> GeneratorIO:
    inputs = (latent(cfg.nz),) + ((class_label(cfg.num_classes),) if cfg.num_classes else ())
    return GeneratorIO(inputs=inputs, outputs=(image_output(cfg.channels, cfg.image_size, cfg.image_size),))


SPEC = ModelSpec(
    name="sagan",
    description="SAGAN: DCGAN-style body, one self-attention block, spectral norm in G and D "
                "(conditional BN + projection D with num_classes > 0)",
    config_cls=SAGANConfig,
    family="gan",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny={"nz": 8, "ngf": 8, "ndf": 8, "channels": 1, "image_size": 32, "attn_res": 16, "embed_dim": 4},
    smoke_dataset="digits",
    # SAGAN's rule: hinge loss, TTUR G 1e-4 / D 4e-4, Adam (0, 0.9)
    train_defaults={"loss": "hinge", "lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9},
)
