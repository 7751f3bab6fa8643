"""InfoGAN (Chen et al., 2016) on the DCGAN body: latent codes whose meaning the generator must keep readable.

G: (z [N, nz], code [N] int64 in [0, n_cat), continuous [N, n_cont]) → image. The categorical code is made
one-hot *inside* the graph by a row lookup in a fixed identity matrix (ONNX ``Gather``, which ONNX Runtime and
TensorRT both run), joined to z and the continuous codes, then the DCGAN generator stack.

D: the DCGAN trunk with two heads on its last feature map: the real/fake logit, and Q — categorical logits
[N, n_cat] and continuous means [N, n_cont]. The continuous posterior is a Gaussian of *fixed* unit variance, so
its negative log-likelihood is ½‖c − μ‖² (+ a constant), as in the paper's MNIST setting. Q shares D's trunk
and belongs to D's parameters (and so to D's optimizer), as in the reference implementation; the mutual-
information loss trains Q and the trunk in the D step and G in the G step (``training/infogan.py``).

``z_scale`` < 1 shrinks z inside G before it joins the codes: G then sees z ~ N(0, z_scale²), ClusterGAN's
remedy (Mukherjee et al., 2019, σ = 0.1) for a noise vector that draws different classes by itself, so that the
categorical code has to carry the class. The served input stays z ~ N(0, 1).

``z_at`` > 1 lets z join G later, at that resolution (z broadcast over the map as extra channels), instead of
beside the codes at the input: the 4x4 layout, and with it the digit's shape, then comes from the codes alone and z
only draws details at the finer maps (the coarse / fine split of FineGAN, Singh et al., 2019, and StyleGAN's
coarse styles). The served inputs do not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gandeploy.models.common import D_NORMS, ModelSpec, dcgan_init, n_upsamplings
from gandeploy.models.dcgan import discriminator_layers, generator_layers
from gandeploy.models.io import GeneratorIO, categorical_code, continuous_code, image_output, latent


@dataclass(frozen=True)
class InfoGANConfig:
    """Architecture only. ``n_cat`` categories of the code, ``n_cont`` continuous codes U(-1, 1) in training."""

    nz: int = 62
    n_cat: int = 10
    n_cont: int = 2
    ngf: int = 64
    ndf: int = 64
    channels: int = 1
    image_size: int = 32
    q_hidden: int = 128
    d_norm: str = "batch"
    z_scale: float = 1.0  # G multiplies z by this first: < 1 lets the codes, not z, decide what is drawn
    z_at: int = 1  # resolution at which z joins G: 1 = beside the codes at the input; 4, 8, ... = later

    def __post_init__(self) -> None:
        n_upsamplings(self.image_size)
        if self.z_at != 1 and self.z_at not in [2 ** k for k in range(2, n_upsamplings(self.image_size) + 2)]:
            raise ValueError(f"z_at must be 1 or a power of 2 from 4 to image_size / 2 = {self.image_size // 2}, "
                             f"got {self.z_at}")
        if not self.z_scale > 0:
            raise ValueError(f"z_scale must be > 0, got {self.z_scale}")
        if min(self.nz, self.ngf, self.ndf, self.channels, self.q_hidden) < 1:
            raise ValueError("nz, ngf, ndf, channels and q_hidden must be positive")
        if self.n_cat < 2 or self.n_cont < 1:
            raise ValueError("n_cat must be >= 2 and n_cont >= 1")
        if self.d_norm not in D_NORMS:
            raise ValueError(f"d_norm must be one of {D_NORMS}")


class Generator(nn.Module):
    """(z [N, nz], code [N] int64, continuous [N, n_cont]) → image [N, C, S, S] in [-1, 1]."""

    def __init__(self, cfg: InfoGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("eye", torch.eye(cfg.n_cat), persistent=False)  # one-hot rows, not in the state dict
        late = cfg.z_at > 1
        layers = generator_layers(cfg.n_cat + cfg.n_cont + (0 if late else cfg.nz), cfg.ngf, cfg.channels,
                                  cfg.image_size)
        # z joins before the transposed conv that reads the z_at x z_at map (each stage is conv, BN, ReLU)
        self.z_index = 3 * int(math.log2(cfg.z_at) - 1) if late else 0
        if late:
            conv = layers[self.z_index]
            layers[self.z_index] = nn.ConvTranspose2d(conv.in_channels + cfg.nz, conv.out_channels, 4, 2, 1,
                                                      bias=False)
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, code: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1) * self.cfg.z_scale  # [N, nz]
        onehot = self.eye[code.reshape(-1)]  # [N, n_cat] (Gather)
        codes = [onehot, continuous.reshape(z.shape[0], -1)]
        if not self.z_index:
            h = torch.cat([z, *codes], dim=1)  # [N, nz + n_cat + n_cont]
            return self.main(h[:, :, None, None])  # [N, C, S, S]
        h = torch.cat(codes, dim=1)[:, :, None, None]  # [N, n_cat + n_cont, 1, 1]
        for i, layer in enumerate(self.main):
            if i == self.z_index:  # [N, W, z_at, z_at] → [N, W + nz, z_at, z_at]
                h = torch.cat([h, z[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])], dim=1)
            h = layer(h)
        return h  # [N, C, S, S]


class Discriminator(nn.Module):
    """image [N, C, S, S] → logit [N], and on request Q's categorical logits and continuous means."""

    def __init__(self, cfg: InfoGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        width = cfg.ndf * 2 ** (n_upsamplings(cfg.image_size) - 1)
        self.main = nn.Sequential(*discriminator_layers(cfg.channels, cfg.ndf, cfg.image_size, cfg.d_norm))
        self.head = nn.Conv2d(width, 1, 4, 1, 0, bias=False)  # [N, width, 4, 4] → [N, 1, 1, 1]
        self.q = nn.Sequential(  # [N, width, 4, 4] → [N, n_cat + n_cont]
            nn.Conv2d(width, cfg.q_hidden, 4, 1, 0, bias=False),
            nn.Flatten(),
            nn.LeakyReLU(0.2, True),
            nn.Linear(cfg.q_hidden, cfg.n_cat + cfg.n_cont),
        )

    def forward(self, x: torch.Tensor, with_q: bool = False) -> Any:
        """logit [N]; ``with_q``: (logit [N], categorical logits [N, n_cat], continuous means [N, n_cont]) from one
        trunk pass (a keyword of ``forward``, so DDP wrappers see it)."""
        h = self.main(x)  # [N, width, 4, 4]
        logit = self.head(h).flatten()
        if not with_q:
            return logit
        q = self.q(h)  # [N, n_cat + n_cont]
        return logit, q[:, : self.cfg.n_cat], q[:, self.cfg.n_cat:]


def build_generator(cfg: InfoGANConfig) -> Generator:
    g = Generator(cfg)
    g.apply(dcgan_init)
    return g


def build_discriminator(cfg: InfoGANConfig) -> Discriminator:
    d = Discriminator(cfg)
    d.apply(dcgan_init)
    return d


def generator_io(cfg: InfoGANConfig) -> GeneratorIO:
    inputs = (latent(cfg.nz), categorical_code(cfg.n_cat), continuous_code(cfg.n_cont))
    return GeneratorIO(inputs=inputs, outputs=(image_output(cfg.channels, cfg.image_size, cfg.image_size),))


SPEC = ModelSpec(
    name="infogan",
    description="InfoGAN: DCGAN body with a categorical and continuous codes, Q head sharing D's trunk",
    config_cls=InfoGANConfig,
    family="gan",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny={"nz": 8, "n_cat": 10, "n_cont": 2, "ngf": 4, "ndf": 4, "q_hidden": 8, "channels": 1, "image_size": 32},
    smoke_dataset="digits",
    trainer="gandeploy.training.infogan:InfoGANTask",
)
