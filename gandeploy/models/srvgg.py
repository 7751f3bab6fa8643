"""SRVGGNetCompact, Real-ESRGAN's compact super-resolution net (the ``realesr-general`` / anime-video models).

A plain stack of 3x3 convs with an activation after each (PReLU by default), a last conv to out · s² channels,
PixelShuffle(s), plus the nearest-upsampled input: the net learns the residual. ``state_dict`` keys equal
Real-ESRGAN's: ``body.N.weight`` / ``body.N.bias`` where even N are convs and odd N the activations (PReLU holds
one weight per channel; ReLU / LeakyReLU hold none, but still take an index), so its published ``.pth`` files
load unchanged. Pictures are in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gandeploy.models.common import ModelSpec
from gandeploy.models.io import GeneratorIO, image_input, image_output
from gandeploy.models.sr_common import VGGStyleDiscriminator, check_d_crop

VALUE_RANGE = (0.0, 1.0)
ACTIVATIONS = ("prelu", "relu", "leakyrelu")


@dataclass(frozen=True)
class SRVGGConfig:
    """Architecture only (Real-ESRGAN's ``SRVGGNetCompact`` arguments first). ``image_size`` is the training crop
    of the high-resolution target (the discriminator's input side); ``num_feat_d`` the discriminator's width."""

    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64
    num_conv: int = 16
    upscale: int = 4
    act_type: str = "prelu"
    num_feat_d: int = 64
    image_size: int = 128

    def __post_init__(self) -> None:
        if min(self.num_in_ch, self.num_out_ch, self.num_feat, self.num_feat_d, self.upscale) < 1 or \
                self.num_conv < 0:
            raise ValueError("channel counts, num_feat, num_feat_d and upscale must be positive, num_conv >= 0")
        if self.act_type not in ACTIVATIONS:
            raise ValueError(f"act_type must be one of {ACTIVATIONS}, got '{self.act_type}'")
        check_d_crop(self.image_size)
        if self.image_size % self.upscale:
            raise ValueError(f"image_size {self.image_size} must be a multiple of upscale {self.upscale}")


def _activation(kind: str, num_feat: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    return nn.LeakyReLU(negative_slope=0.1, inplace=True)


class SRVGGNetCompact(nn.Module):
    """image [N, in, H, W] in [0, 1] → image [N, out, sH, sW] (not clamped), any H, W."""

    def __init__(self, cfg: SRVGGConfig) -> None:
        super().__init__()
        self.cfg = cfg
        nf = cfg.num_feat
        layers: list[nn.Module] = [nn.Conv2d(cfg.num_in_ch, nf, 3, 1, 1), _activation(cfg.act_type, nf)]
        for _ in range(cfg.num_conv):
            layers += [nn.Conv2d(nf, nf, 3, 1, 1), _activation(cfg.act_type, nf)]
        layers.append(nn.Conv2d(nf, cfg.num_out_ch * cfg.upscale**2, 3, 1, 1))  # [N, out·s², H, W]
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(cfg.upscale)  # [N, out·s², H, W] → [N, out, sH, sW]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = image
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)  # [N, out, sH, sW]
        base = F.interpolate(image, scale_factor=self.cfg.upscale, mode="nearest")  # [N, in, sH, sW]
        return out + base


def build_generator(cfg: SRVGGConfig) -> SRVGGNetCompact:
    return SRVGGNetCompact(cfg)  # PyTorch's default init, as Real-ESRGAN


def build_discriminator(cfg: SRVGGConfig) -> VGGStyleDiscriminator:
    return VGGStyleDiscriminator(cfg.num_out_ch, cfg.num_feat_d, cfg.image_size)


def generator_io(cfg: SRVGGConfig) -> GeneratorIO:
    return GeneratorIO(inputs=(image_input(cfg.num_in_ch, multiple=1, value_range=VALUE_RANGE),),
                       outputs=(image_output(cfg.num_out_ch, scale=cfg.upscale, value_range=VALUE_RANGE),))


SPEC = ModelSpec(
    name="srvgg",
    description="SRVGGNetCompact (Real-ESRGAN's compact net, its keys): convs + PReLU, PixelShuffle, + input",
    config_cls=SRVGGConfig,
    family="paired",
    build_generator=build_generator,
    build_discriminator=build_discriminator,
    io=generator_io,
    tiny={"num_feat": 4, "num_conv": 1, "num_feat_d": 4, "image_size": 16},
    smoke_dataset="photos",
    trainer="gandeploy.training.sr:SRVGGTask",
)
