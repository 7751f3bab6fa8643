"""CycleGAN (Zhu et al., 2017): ResNet generator and 70x70 PatchGAN discriminator.

The generator's ``state_dict`` keys and shapes equal the reference ``ResnetGenerator`` of
pytorch-CycleGAN-and-pix2pix (InstanceNorm without affine, no dropout), so its published ``*.pth`` files
load unchanged: ``model.1`` first 7x7 conv, ``model.4`` / ``model.7`` downsampling convs, residual blocks at
``model.10`` … ``model.(9 + n_blocks)`` with ``conv_block.1`` / ``conv_block.5``, transposed convs after them,
and the last 7x7 conv at ``model.26`` for 9 blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gandeploy.models.common import ModelSpec, dcgan_init
from gandeploy.models.io import GeneratorIO, image_input, image_output

SIZE_MULTIPLE = 4  # two stride-2 downsamplings: H and W must be multiples of 4


@dataclass(frozen=True)
class CycleGANConfig:
    """Architecture only. ``image_size`` is the training crop and the default serving size."""

    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    ndf: int = 64
    n_blocks: int = 9
    n_layers_d: int = 3
    image_size: int = 256

    def __post_init__(self) -> None:
        if min(self.input_nc, self.output_nc, self.ngf, self.ndf, self.n_blocks, self.n_layers_d) < 1:
            raise ValueError("channel counts, ngf, ndf, n_blocks and n_layers_d must be positive")
        if self.image_size % SIZE_MULTIPLE:
            raise ValueError(f"image_size must be a multiple of {SIZE_MULTIPLE}, got {self.image_size}")


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """x + [pad, conv3x3, IN, ReLU, pad, conv3x3, IN](x); keys conv_block.1 and conv_block.5."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), _norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), _norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class Generator(nn.Module):
    """image [N, in_nc, H, W] in [-1, 1] → image [N, out_nc, H, W] in [-1, 1]; H, W multiples of 4."""

    def __init__(self, cfg: CycleGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ngf = cfg.ngf
        layers: list[nn.Module] = [  # [N, in, H, W] → [N, ngf, H, W]
            nn.ReflectionPad2d(3), nn.Conv2d(cfg.input_nc, ngf, 7, bias=True), _norm(ngf), nn.ReLU(True),
        ]
        for i in range(2):  # → [N, 4ngf, H/4, W/4]
            mult = 2**i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                       _norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(cfg.n_blocks)]
        for i in range(2):  # → [N, ngf, H, W]
            mult = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=True),
                       _norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cfg.output_nc, 7), nn.Tanh()]  # → [N, out, H, W]
        self.model = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image)


class Discriminator(nn.Module):
    """70x70 PatchGAN: image [N, C, H, W] → patch logits [N, 1, H/8 - 2, W/8 - 2] (30x30 at 256)."""

    def __init__(self, cfg: CycleGANConfig, in_channels: int | None = None) -> None:
        super().__init__()
        ndf = cfg.ndf
        layers: list[nn.Module] = [nn.Conv2d(in_channels or cfg.output_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, cfg.n_layers_d + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < cfg.n_layers_d else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=True), _norm(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_generator(cfg: CycleGANConfig) -> Generator:
    g = Generator(cfg)
    g.apply(dcgan_init)
    return g


def build_discriminator(cfg: CycleGANConfig) -> Discriminator:
    d = Discriminator(cfg)
    d.apply(dcgan_init)
    return d


def generator_io(cfg: CycleGANConfig) -> GeneratorIO:
    return GeneratorIO(inputs=(image_input(cfg.input_nc, multiple=SIZE_MULTIPLE),),
                       outputs=(image_output(cfg.output_nc),))


SPEC = ModelSpec(
    name="cyclegan",
    description="CycleGAN: ResNet generator (reference key layout) and 70x70 PatchGAN, unpaired A<->B",
    config_cls=CycleGANConfig,
    family="cyclegan",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny={"ngf": 4, "ndf": 4, "n_blocks": 1, "n_layers_d": 2, "image_size": 16},
    smoke_dataset="digits2inverted",
    generator_keys=("G_A", "G_B"),
    domains=((0, 1), (1, 0)),  # G_A: A → B, G_B: B → A
    trainer="gandeploy.training.cyclegan:CycleGANTask",
)
