"""pix2pix (Isola et al., 2017): U-Net generator with skip connections and a 70x70 PatchGAN on (input, output).

The generator's module tree equals the reference ``UnetGenerator`` / ``UnetSkipConnectionBlock`` of
pytorch-CycleGAN-and-pix2pix, so its ``latest_net_G.pth`` loads by key: ``model`` is the outermost block and each
block keeps its layers in ``model`` (a Sequential), the next block nested at index 1 (outermost) or 3::

    outermost  [down conv, block, ReLU, up conv, Tanh]                      model.model.0 / .1 / .3
    middle     [LeakyReLU, down conv, norm, block, ReLU, up conv, norm(, Dropout 0.5)]
    innermost  [LeakyReLU, down conv, ReLU, up conv, norm]

Level ``i`` (0 = outermost) maps ``w[i-1]`` channels (the picture's at level 0) to ``w[i] = ngf * min(2**i, 8)``;
every non-outermost block returns ``cat([x, block(x)])``. Dropout follows the reference: the blocks between
level 4 and the innermost one (``num_downs - 5`` of them: 3 in ``unet_256``, none at ``num_downs`` 5). The
reference needs ``num_downs >= 5``; fewer levels (tiny test nets) keep the same rule for the widths.

``num_downs`` stride-2 convolutions: H and W must be multiples of ``2**num_downs`` (the declared ``multiple``;
serving pads and crops back). BatchNorm at test time: ``norm_stats="running"`` uses the running statistics (eval
mode); ``"sample"`` normalises each picture by its own statistics with BatchNorm's affine, which is what the
reference ``test.py`` computes without ``--eval`` at batch size 1 (exported as InstanceNormalization). Dropout
is off in both (the reference's test-time dropout is random noise, not reproducible).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gandeploy.models.common import ModelSpec, dcgan_init
from gandeploy.models.io import GeneratorIO, image_input, image_output

NORMS = ("batch", "instance")
NORM_STATS = ("running", "sample")
MAX_MULT = 8  # widths stop growing at ngf * 8
FIRST_DROPOUT_LEVEL = 4  # the reference's dropout blocks sit below the four fixed outer levels


@dataclass(frozen=True)
class Pix2PixConfig:
    """Architecture only; defaults are the reference's ``unet_256`` + basic PatchGAN with BatchNorm."""

    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    ndf: int = 64
    num_downs: int = 8  # unet_256: 8, unet_128: 7, 32x32 digits: 5
    norm: str = "batch"  # batch | instance
    use_dropout: bool = True
    n_layers_d: int = 3
    image_size: int = 256  # the training crop and the default serving size
    norm_stats: str = "running"  # BatchNorm at test time: running (eval mode) | sample (each picture's own)

    def __post_init__(self) -> None:
        if min(self.input_nc, self.output_nc, self.ngf, self.ndf, self.n_layers_d) < 1 or self.num_downs < 2:
            raise ValueError("channel counts, ngf, ndf and n_layers_d must be >= 1, num_downs >= 2")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got '{self.norm}'")
        if self.norm_stats not in NORM_STATS:
            raise ValueError(f"norm_stats must be one of {', '.join(NORM_STATS)}, got '{self.norm_stats}'")
        if self.image_size % self.multiple:
            raise ValueError(f"image_size must be a multiple of 2**num_downs = {self.multiple}, got {self.image_size}")

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this: one halving per level."""
        return 2**self.num_downs


class SampleStatsBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d (same parameters and buffers, so the same state_dict keys) that always normalises each
    picture by its own mean and biased variance over H, W and applies BatchNorm's affine: the train-mode BatchNorm
    of a batch of one, without touching the running statistics. Exported as InstanceNormalization."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)  # [N, C, H, W]


def norm_layer(cfg: Pix2PixConfig, channels: int) -> nn.Module:
    """The reference's ``get_norm_layer``: BatchNorm with affine, or InstanceNorm without affine or statistics."""
    if cfg.norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return SampleStatsBatchNorm2d(channels) if cfg.norm_stats == "sample" else nn.BatchNorm2d(channels)


def widths(cfg: Pix2PixConfig) -> list[int]:
    """Inner channels per level, outermost first: ngf, 2ngf, 4ngf, 8ngf, 8ngf, ..."""
    return [cfg.ngf * min(2**i, MAX_MULT) for i in range(cfg.num_downs)]


class UnetSkipConnectionBlock(nn.Module):
    """One level: x [N, outer, H, W] → cat([x, up(block(down(x)))]) [N, 2 outer, H, W]; outermost: the picture."""

    def __init__(self, cfg: Pix2PixConfig, outer_nc: int, inner_nc: int, *, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False, innermost: bool = False,
                 dropout: bool = False) -> None:
        super().__init__()
        self.outermost = outermost
        bias = cfg.norm == "instance"  # the reference: convs carry a bias only when the norm has no affine
        down = nn.Conv2d(input_nc or outer_nc, inner_nc, 4, stride=2, padding=1, bias=bias)  # H → H/2
        if outermost:
            layers: list[nn.Module] = [down, submodule, nn.ReLU(True),  # type: ignore[list-item]
                                       nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias),
                      norm_layer(cfg, outer_nc)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, norm_layer(cfg, inner_nc), submodule,  # type: ignore[list-item]
                      nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias),
                      norm_layer(cfg, outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)  # [N, out_nc, H, W]
        return torch.cat([x, self.model(x)], 1)  # skip connection: [N, 2 * outer, H, W]


class UnetGenerator(nn.Module):
    """image [N, input_nc, H, W] in [-1, 1] → image [N, output_nc, H, W] in [-1, 1]; H, W multiples of
    ``2**num_downs``."""

    def __init__(self, cfg: Pix2PixConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = widths(cfg)
        last = cfg.num_downs - 1
        block = UnetSkipConnectionBlock(cfg, w[last - 1], w[last], innermost=True)  # 1x1 at the bottom
        for i in range(last - 1, 0, -1):  # from just above the innermost level out to level 1
            block = UnetSkipConnectionBlock(cfg, w[i - 1], w[i], submodule=block,
                                            dropout=cfg.use_dropout and i >= FIRST_DROPOUT_LEVEL)
        self.model = UnetSkipConnectionBlock(cfg, cfg.output_nc, w[0], input_nc=cfg.input_nc, submodule=block,
                                             outermost=True)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image)


class NLayerDiscriminator(nn.Module):
    """The reference PatchGAN on the (input, output) pair: [N, input_nc + output_nc, H, W] → patch logits
    [N, 1, h, w] (30x30 at 256 with 3 layers: each logit sees a 70x70 patch)."""

    def __init__(self, cfg: Pix2PixConfig) -> None:
        super().__init__()
        ndf, bias = cfg.ndf, cfg.norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(cfg.input_nc + cfg.output_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, cfg.n_layers_d + 1):
            prev, mult = mult, min(2**n, MAX_MULT)
            stride = 2 if n < cfg.n_layers_d else 1
            norm = (nn.InstanceNorm2d(ndf * mult) if cfg.norm == "instance" else nn.BatchNorm2d(ndf * mult))
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias), norm, nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        return self.model(pair)


def build_generator(cfg: Pix2PixConfig) -> UnetGenerator:
    g = UnetGenerator(cfg)
    g.apply(dcgan_init)  # the reference's 'normal' init, gain 0.02
    return g


def build_discriminator(cfg: Pix2PixConfig) -> NLayerDiscriminator:
    d = NLayerDiscriminator(cfg)
    d.apply(dcgan_init)
    return d


def generator_io(cfg: Pix2PixConfig) -> GeneratorIO:
    return GeneratorIO(inputs=(image_input(cfg.input_nc, multiple=cfg.multiple),),
                       outputs=(image_output(cfg.output_nc),))


SPEC = ModelSpec(
    name="pix2pix",
    description="pix2pix: U-Net generator (reference key layout) and PatchGAN on (input, output), paired A->B",
    config_cls=Pix2PixConfig,
    family="paired",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny={"ngf": 4, "ndf": 4, "num_downs": 3, "n_layers_d": 1, "image_size": 16},
    smoke_dataset="digits-edges",
    trainer="gandeploy.training.pix2pix:Pix2PixTask",
)
