"""ESRGAN (Wang et al., 2018): RRDBNet, the Residual-in-Residual Dense Block network, as BasicSR builds it.

``state_dict`` keys equal BasicSR's / Real-ESRGAN's ``RRDBNet`` (so their published weights load unchanged):
``conv_first``, ``body.N.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``,
``conv_last``. The trunk always upsamples x4 (two nearest x2 + conv stages); the x2 and x1 models first
pixel-unshuffle the input by 2 and 4 (so the input channels of ``conv_first`` are 4x and 16x ``num_in_ch``),
written as reshape + transpose so it exports to ONNX ops every runtime runs. Pictures are in [0, 1].

The discriminator is the VGG-style one (``sr_common.VGGStyleDiscriminator``, BasicSR's layout at a 128 crop),
trained with the relativistic average loss (``gandeploy.training.sr``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gandeploy.models.common import ModelSpec
from gandeploy.models.io import GeneratorIO, image_input, image_output
from gandeploy.models.sr_common import VGGStyleDiscriminator, check_d_crop, pixel_unshuffle, scaled_kaiming_init

VALUE_RANGE = (0.0, 1.0)
UNSHUFFLE = {4: 1, 2: 2, 1: 4}  # scale → pixel-unshuffle factor of the input (the trunk always upsamples x4)


@dataclass(frozen=True)
class ESRGANConfig:
    """Architecture only (BasicSR's ``RRDBNet`` arguments first). ``image_size`` is the training crop of the
    high-resolution target (the discriminator's input side); ``num_feat_d`` the discriminator's first width."""

    num_in_ch: int = 3
    num_out_ch: int = 3
    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    num_feat_d: int = 64
    image_size: int = 128

    def __post_init__(self) -> None:
        if min(self.num_in_ch, self.num_out_ch, self.num_feat, self.num_block, self.num_grow_ch,
               self.num_feat_d) < 1:
            raise ValueError("channel counts, num_feat, num_block, num_grow_ch and num_feat_d must be positive")
        if self.scale not in UNSHUFFLE:
            raise ValueError(f"scale must be one of {tuple(sorted(UNSHUFFLE))}, got {self.scale}")
        check_d_crop(self.image_size)
        if self.image_size % 4:  # the low-resolution crop must meet the size rule: (S / scale) % (4 / scale)
            raise ValueError(f"image_size must be a multiple of 4, got {self.image_size}")

    @property
    def size_multiple(self) -> int:
        """H and W of the input must be multiples of this (the pixel-unshuffle factor)."""
        return UNSHUFFLE[self.scale]


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; x + 0.2 · conv5([x, x1..x4]): [N, F, H, W] → [N, F, H, W]."""

    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        g = num_grow_ch
        self.conv1 = nn.Conv2d(num_feat, g, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + g, g, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * g, g, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * g, g, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * g, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        scaled_kaiming_init([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))  # [N, G, H, W]
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))  # [N, G, H, W]
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))  # [N, F, H, W]
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual in residual: x + 0.2 · rdb3(rdb2(rdb1(x))); keys rdb1, rdb2, rdb3."""

    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """image [N, in, H, W] in [0, 1] → image [N, out, sH, sW] (not clamped); H, W multiples of 4 / s."""

    def __init__(self, cfg: ESRGANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.unshuffle = UNSHUFFLE[cfg.scale]
        nf = cfg.num_feat
        self.conv_first = nn.Conv2d(cfg.num_in_ch * self.unshuffle**2, nf, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(nf, cfg.num_grow_ch) for _ in range(cfg.num_block)))
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, cfg.num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        feat = image
        if self.unshuffle > 1:  # x2 / x1: [N, C, H, W] → [N, C·u², H/u, W/u]
            feat = pixel_unshuffle(image, self.unshuffle)
        feat = self.conv_first(feat)  # [N, F, h, w], h = H / u
        feat = feat + self.conv_body(self.body(feat))  # [N, F, h, w]
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))  # [N, F, 2h, 2w]
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))  # [N, F, 4h, 4w]
        return self.conv_last(self.lrelu(self.conv_hr(feat)))  # [N, out, sH, sW] (4h = sH)


def build_generator(cfg: ESRGANConfig) -> RRDBNet:
    return RRDBNet(cfg)  # dense blocks take BasicSR's scaled Kaiming init; the rest PyTorch's, as BasicSR


def build_discriminator(cfg: ESRGANConfig) -> VGGStyleDiscriminator:
    return VGGStyleDiscriminator(cfg.num_out_ch, cfg.num_feat_d, cfg.image_size)


def generator_io(cfg: ESRGANConfig) -> GeneratorIO:
    return GeneratorIO(inputs=(image_input(cfg.num_in_ch, multiple=cfg.size_multiple, value_range=VALUE_RANGE),),
                       outputs=(image_output(cfg.num_out_ch, scale=cfg.scale, value_range=VALUE_RANGE),))


SPEC = ModelSpec(
    name="esrgan",
    description="ESRGAN: RRDBNet (BasicSR keys; x1/x2/x4) + VGG-style D, L1 + relativistic average GAN",
    config_cls=ESRGANConfig,
    family="paired",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny={"num_feat": 4, "num_block": 1, "num_grow_ch": 4, "num_feat_d": 4, "image_size": 16},
    smoke_dataset="photos",
    trainer="gandeploy.training.sr:ESRGANTask",
)
