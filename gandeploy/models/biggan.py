"""BigGAN (Brock et al., 2019), the structure of the authors' BigGAN-PyTorch at a CPU-sized width.

G: a hierarchical latent z [N, nz] is split into n + 1 equal chunks (n up-sampling blocks, 4x4 → S). Chunk 0
   goes through an SN linear to [N, ngf·2^n, 4, 4]; block i gets ``c_i = shared(y) ⊕ z_{i+1}`` (the *shared*
   class embedding, one for all blocks, concatenated with its own z chunk), which feeds both conditional
   BatchNorms of the block (gain ``1 + W_g c``, bias ``W_b c``, SN linear maps). Residual up-blocks halve the
   width per doubling; one self-attention block at ``attn_res``; output BN → ReLU → SN conv3x3 → tanh.
D: residual down-blocks (SN convs, width doubling per halving) with attention at ``attn_res``, ReLU, sum over
   positions, SN linear → logit, plus the projection term ⟨SN embed(y), h⟩.

Orthogonal init everywhere; spectral norm in G and D. ``ortho_exclude`` names what orthogonal regularisation
skips (the shared embedding, as in BigGAN-PyTorch). Training adds hinge loss, TTUR, EMA and orthogonal
regularisation (the training family's options).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gandeploy.models.blocks import (DBlock, GBlock, Norm2d, SelfAttention, apply_spectral_norm,
                                     orthogonal_init)
from gandeploy.models.common import ModelSpec, n_upsamplings
from gandeploy.models.io import GeneratorIO, class_label, image_output, latent


@dataclass(frozen=True)
class BigGANConfig:
    """Architecture only. ``nz`` must split into n + 1 equal chunks (n = log2(S) - 2 up-blocks: 4 at 32 px)."""

    nz: int = 120
    ngf: int = 32
    ndf: int = 32
    channels: int = 3
    image_size: int = 64
    num_classes: int = 10
    shared_dim: int = 64  # the shared class embedding
    attn_res: int = 16  # 0: no attention

    def __post_init__(self) -> None:
        n = n_upsamplings(self.image_size)
        if min(self.nz, self.ngf, self.ndf, self.channels, self.shared_dim) < 1 or self.num_classes < 2:
            raise ValueError("nz, ngf, ndf, channels, shared_dim must be positive and num_classes >= 2")
        if self.nz % (n + 1):
            raise ValueError(f"nz must be a multiple of {n + 1} at image_size {self.image_size} "
                             f"(one z chunk for the input linear and one per up-block), got {self.nz}")
        sides = tuple(2 ** k for k in range(3, n + 2))
        if self.attn_res and self.attn_res not in sides:
            raise ValueError(f"attn_res must be 0 or one of {sides} at image_size {self.image_size}")
        if self.attn_res and (g_width(self, self.attn_res) % 8 or d_width(self, self.attn_res) % 8):
            raise ValueError(f"attention at {self.attn_res}x{self.attn_res} needs 8 | the widths there "
                             f"(G {g_width(self, self.attn_res)}, D {d_width(self, self.attn_res)})")

    @property
    def z_chunk(self) -> int:
        return self.nz // (n_upsamplings(self.image_size) + 1)


def g_width(cfg: BigGANConfig, side: int) -> int:
    """G's channels at feature side ``side``: ngf·2^n at 4x4, halving per doubling, ngf at S."""
    return cfg.ngf * cfg.image_size // side


def d_width(cfg: BigGANConfig, side: int) -> int:
    """D's channels at feature side ``side``: ndf at S/2, doubling per halving, ndf·2^(n-1) at 4x4."""
    return cfg.ndf * cfg.image_size // (2 * side)


class Generator(nn.Module):
    """(z [N, nz], label [N] int64) → image [N, C, S, S] in [-1, 1]."""

    ortho_exclude = ("shared",)  # orthogonal regularisation leaves the shared class embedding alone

    def __init__(self, cfg: BigGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        cond = cfg.shared_dim + cfg.z_chunk
        self.shared = nn.Embedding(cfg.num_classes, cfg.shared_dim)
        self.linear = nn.Linear(cfg.z_chunk, g_width(cfg, 4) * 16)  # z chunk 0 → [N, width·4·4]
        self.blocks = nn.ModuleList()
        self.attn: nn.ModuleDict = nn.ModuleDict()
        side = 4
        while side < cfg.image_size:
            self.blocks.append(GBlock(g_width(cfg, side), g_width(cfg, side * 2), cond))
            side *= 2
            if side == cfg.attn_res:
                self.attn[str(len(self.blocks) - 1)] = SelfAttention(g_width(cfg, side))
        self.out_norm = Norm2d(cfg.ngf)
        self.to_rgb = nn.Conv2d(cfg.ngf, cfg.channels, 3, 1, 1)

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1)  # [N, nz]
        chunks = torch.split(z, self.cfg.z_chunk, dim=1)  # n + 1 x [N, z_chunk]
        y = self.shared(label.reshape(-1))  # [N, shared_dim]
        h = self.linear(chunks[0]).reshape(z.shape[0], -1, 4, 4)  # [N, ngf·2^n, 4, 4]
        for i, block in enumerate(self.blocks):
            h = block(h, torch.cat([y, chunks[i + 1]], dim=1))  # c_i [N, shared_dim + z_chunk]; side doubles
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        return torch.tanh(self.to_rgb(F.relu(self.out_norm(h))))  # [N, C, S, S]


class Discriminator(nn.Module):
    """(image [N, C, S, S], label [N]) → one logit per image [N]."""

    def __init__(self, cfg: BigGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.blocks = nn.ModuleList()
        self.attn: nn.ModuleDict = nn.ModuleDict()
        side, c_in = cfg.image_size, cfg.channels
        while side > 4:
            side //= 2
            self.blocks.append(DBlock(c_in, d_width(cfg, side), down=True, first=not self.blocks))
            c_in = d_width(cfg, side)
            if side == cfg.attn_res:
                self.attn[str(len(self.blocks) - 1)] = SelfAttention(c_in)
        self.blocks.append(DBlock(c_in, c_in, down=False))  # BigGAN's last block keeps 4x4
        self.linear = nn.Linear(c_in, 1)
        self.embed = nn.Embedding(cfg.num_classes, c_in)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)  # [N, width, side, side]
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        h = F.relu(h).sum(dim=(2, 3))  # [N, width]
        return self.linear(h).flatten() + (self.embed(label.reshape(-1)) * h).sum(dim=1)  # [N]


def build_generator(cfg: BigGANConfig) -> Generator:
    g = Generator(cfg)
    g.apply(orthogonal_init)
    return apply_spectral_norm(g, exclude=[g.shared])  # type: ignore[return-value]


def build_discriminator(cfg: BigGANConfig) -> Discriminator:
    d = Discriminator(cfg)
    d.apply(orthogonal_init)
    return apply_spectral_norm(d, (nn.Conv2d, nn.Linear, nn.Embedding))  # type: ignore[return-value]


def generator_io(cfg: BigGANConfig) -> GeneratorIO:
    return GeneratorIO(inputs=(latent(cfg.nz), class_label(cfg.num_classes)),
                       outputs=(image_output(cfg.channels, cfg.image_size, cfg.image_size),))


SPEC = ModelSpec(
    name="biggan",
    description="BigGAN: residual G with conditional BN from a shared class embedding + hierarchical z chunks, "
                "projection D, spectral norm in both, one self-attention block",
    config_cls=BigGANConfig,
    family="gan",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny={"nz": 8, "ngf": 4, "ndf": 8, "channels": 1, "image_size": 32, "num_classes": 10, "shared_dim": 4,
          "attn_res": 16},
    smoke_dataset="digits",
    # BigGAN's rule: hinge, TTUR G 1e-4 / D 4e-4, Adam (0, 0.999), EMA of G, orthogonal regularisation 1e-4
    train_defaults={"loss": "hinge", "lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.999, "ema": 0.999,
                    "ortho": 1e-4},
)
