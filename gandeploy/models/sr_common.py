"""Pieces the super-resolution model files share: BasicSR's scaled Kaiming init, an exportable pixel-unshuffle,
and the VGG-style discriminator of SRGAN / ESRGAN.

The discriminator follows BasicSR's ``VGGStyleDiscriminator`` (its key names and, at a 128 crop, its exact
layout): a first 3x3 conv, then stages of (3x3 conv, BN, LeakyReLU, 4x4 stride-2 conv, BN, LeakyReLU) with
channels doubling up to 8x, and two linear layers on the last map. BasicSR fixes the crop at 128 (or 256);
here the number of stride-2 stages follows the crop, log2(crop / 4), so tiny crops train too.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LRELU_SLOPE_D = 0.2


@torch.no_grad()
def scaled_kaiming_init(modules: list[nn.Module], scale: float = 0.1) -> None:
    """BasicSR's ``default_init_weights``: Kaiming-normal conv/linear weights times ``scale``, zero biases.

    The small scale keeps deep residual stacks near the identity at the start of training.
    """
    for module in modules:
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.zero_()


def pixel_unshuffle(x: torch.Tensor, factor: int) -> torch.Tensor:
    """[N, C, H, W] → [N, C·f², H/f, W/f], the inverse of ``PixelShuffle(f)`` (torch's channel order).

    Written as one 6-D view and a transpose, which ONNX exports as Reshape + Transpose (ops ONNX Runtime and
    TensorRT both run), not as a SpaceToDepth some runtimes reject. H and W must be multiples of ``factor``.
    """
    n, c, hh, ww = x.shape
    h, w = hh // factor, ww // factor
    x = x.reshape(n, c, h, factor, w, factor)  # [N, C, h, f, w, f]
    x = x.permute(0, 1, 3, 5, 2, 4)  # [N, C, f, f, h, w]
    return x.reshape(n, c * factor * factor, h, w)  # [N, C·f², h, w]


def d_stages(crop: int) -> int:
    """Stride-2 stages of the VGG-style discriminator for a ``crop``-pixel picture: log2(crop / 4), at least 1
    (5 at BasicSR's 128)."""
    return max(1, int(math.floor(math.log2(max(crop, 8) / 4))))


def check_d_crop(crop: int) -> None:
    """A crop the discriminator takes: >= 8 and divisible by 2**stages (raises ValueError otherwise)."""
    stages = d_stages(crop)
    if crop < 8 or crop % 2**stages:
        raise ValueError(f"image_size {crop} does not fit the VGG-style discriminator: it needs >= 8 and a "
                         f"multiple of {2**stages}")


class VGGStyleDiscriminator(nn.Module):
    """picture [N, C, S, S] → logit [N, 1]; keys ``conv0_0``, ``conv0_1``, ``bn0_1``, ``conv{i}_{0,1}``,
    ``bn{i}_{0,1}``, ``linear1``, ``linear2`` as BasicSR's (identical layout at S = 128)."""

    def __init__(self, num_in_ch: int, num_feat: int, crop: int) -> None:
        super().__init__()
        check_d_crop(crop)
        self.stages = d_stages(crop)
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)  # [N, nf, S, S]
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)  # [N, nf, S/2, S/2]
        self.bn0_1 = nn.BatchNorm2d(num_feat, affine=True)
        channels = num_feat
        for i in range(1, self.stages):  # stage i: [N, c, S/2^i, S/2^i] → [N, c', S/2^(i+1), S/2^(i+1)]
            out = num_feat * min(2**i, 8)
            setattr(self, f"conv{i}_0", nn.Conv2d(channels, out, 3, 1, 1, bias=False))
            setattr(self, f"bn{i}_0", nn.BatchNorm2d(out, affine=True))
            setattr(self, f"conv{i}_1", nn.Conv2d(out, out, 4, 2, 1, bias=False))
            setattr(self, f"bn{i}_1", nn.BatchNorm2d(out, affine=True))
            channels = out
        side = crop // 2**self.stages
        self.linear1 = nn.Linear(channels * side * side, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(LRELU_SLOPE_D, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))  # [N, nf, S/2, S/2]
        for i in range(1, self.stages):
            feat = self.lrelu(getattr(self, f"bn{i}_0")(getattr(self, f"conv{i}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{i}_1")(getattr(self, f"conv{i}_1")(feat)))
        feat = feat.flatten(1)  # [N, c · side²]
        return self.linear2(self.lrelu(self.linear1(feat)))  # [N, 1]
