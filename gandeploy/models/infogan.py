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
"""

from __future__ import annotations

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

    def __post_init__(self) -> None:
        n_upsamplings(self.image_size)
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
        width_in = cfg.nz + cfg.n_cat + cfg.n_cont
        self.main = nn.Sequential(*generator_layers(width_in, cfg.ngf, cfg.channels, cfg.image_size))

    def forward(self, z: torch.Tensor, code: torch.Tensor, continuous: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1) * self.cfg.z_scale  # [N, nz]
        onehot = self.eye[code.reshape(-1)]  # [N, n_cat] (Gather)
        h = torch.cat([z, onehot, continuous.reshape(z.shape[0], -1)], dim=1)  # [N, nz + n_cat + n_cont]
        return self.main(h[:, :, None, None])  # [N, C, S, S]


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
