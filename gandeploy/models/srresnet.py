"""SRResNet / SRGAN (Ledig et al., 2017): a residual generator with PixelShuffle upsampling.

The generator is BasicSR's ``MSRResNet`` (the "modified SRResNet" the later SR papers train: no BatchNorm in
the residual blocks, LeakyReLU 0.1, bilinear upsampling of the input added back), with its ``state_dict`` keys:
``conv_first``, ``body.N.conv1`` / ``body.N.conv2``, ``upconv1`` (and ``upconv2`` at x4), ``conv_hr``,
``conv_last``. x4 upsamples in two PixelShuffle(2) stages, x2 in one. Pictures are in [0, 1], in and out.

Two registry entries share it: ``srresnet`` trains it with a pixel loss only (the PSNR stage), ``srgan``
adds the adversarial loss against the VGG-style discriminator, starting from a srresnet run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gandeploy.models.common import ModelSpec
from gandeploy.models.io import GeneratorIO, image_input, image_output
from gandeploy.models.sr_common import VGGStyleDiscriminator, check_d_crop, scaled_kaiming_init

VALUE_RANGE = (0.0, 1.0)
SCALES = (2, 4)


@dataclass(frozen=True)
class SRResNetConfig:
    """Architecture only. ``image_size`` is the training crop of the high-resolution target (the
    discriminator's input side); ``num_feat_d`` the discriminator's first width."""

    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64
    num_block: int = 16
    scale: int = 4
    num_feat_d: int = 64
    image_size: int = 128

    def __post_init__(self) -> None:
        if min(self.num_in_ch, self.num_out_ch, self.num_feat, self.num_block, self.num_feat_d) < 1:
            raise ValueError("num_in_ch, num_out_ch, num_feat, num_block and num_feat_d must be positive")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale}")
        check_d_crop(self.image_size)
        if self.image_size % self.scale:
            raise ValueError(f"image_size {self.image_size} must be a multiple of scale {self.scale}")


class ResidualBlockNoBN(nn.Module):
    """x + conv2(ReLU(conv1(x))): [N, F, H, W] → [N, F, H, W]; keys conv1, conv2."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x)))


class MSRResNet(nn.Module):
    """image [N, in, H, W] in [0, 1] → image [N, out, sH, sW] in [0, 1] (not clamped), s = 2 or 4."""

    def __init__(self, cfg: SRResNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        nf = cfg.num_feat
        self.conv_first = nn.Conv2d(cfg.num_in_ch, nf, 3, 1, 1)
        self.body = nn.Sequential(*(ResidualBlockNoBN(nf) for _ in range(cfg.num_block)))
        self.upconv1 = nn.Conv2d(nf, nf * 4, 3, 1, 1)  # PixelShuffle(2): [N, 4F, H, W] → [N, F, 2H, 2W]
        self.upconv2 = nn.Conv2d(nf, nf * 4, 3, 1, 1) if cfg.scale == 4 else None
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, cfg.num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(0.1, inplace=True)
        scaled_kaiming_init([self.conv_first, self.upconv1, self.conv_hr, self.conv_last], 0.1)
        scaled_kaiming_init([self.body], 0.1)
        if self.upconv2 is not None:
            scaled_kaiming_init([self.upconv2], 0.1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        feat = self.lrelu(self.conv_first(image))  # [N, F, H, W]
        out = self.body(feat)  # [N, F, H, W]
        out = self.lrelu(self.pixel_shuffle(self.upconv1(out)))  # [N, F, 2H, 2W]
        if self.upconv2 is not None:
            out = self.lrelu(self.pixel_shuffle(self.upconv2(out)))  # [N, F, 4H, 4W]
        out = self.conv_last(self.lrelu(self.conv_hr(out)))  # [N, out, sH, sW]
        base = F.interpolate(image, scale_factor=self.cfg.scale, mode="bilinear", align_corners=False)
        return out + base  # the net learns the residual over bilinear upsampling


def build_generator(cfg: SRResNetConfig) -> MSRResNet:
    return MSRResNet(cfg)  # BasicSR's scaled Kaiming init, in the constructor


def build_discriminator(cfg: SRResNetConfig) -> VGGStyleDiscriminator:
    return VGGStyleDiscriminator(cfg.num_out_ch, cfg.num_feat_d, cfg.image_size)


def generator_io(cfg: SRResNetConfig) -> GeneratorIO:
    return GeneratorIO(inputs=(image_input(cfg.num_in_ch, multiple=1, value_range=VALUE_RANGE),),
                       outputs=(image_output(cfg.num_out_ch, scale=cfg.scale, value_range=VALUE_RANGE),))


TINY = {"num_feat": 4, "num_block": 1, "num_feat_d": 4, "image_size": 16}

SPEC = ModelSpec(
    name="srresnet",
    description="SRResNet (BasicSR's MSRResNet keys): residual blocks + PixelShuffle, x2/x4, pixel loss",
    config_cls=SRResNetConfig,
    family="paired",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny=TINY,
    smoke_dataset="photos",
    trainer="gandeploy.training.sr:SRResNetTask",
)

SRGAN_SPEC = ModelSpec(
    name="srgan",
    description="SRGAN: the SRResNet generator + VGG-style D, content + 1e-3 adversarial loss (--pretrained)",
    config_cls=SRResNetConfig,
    family="paired",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny=TINY,
    smoke_dataset="photos",
    trainer="gandeploy.training.sr:SRGANTask",
)
