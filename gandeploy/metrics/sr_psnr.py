"""PSNR on the Y channel, as the super-resolution papers measure it, and the ``photos`` quality line.

The measure (BasicSR's ``calculate_psnr(..., crop_border=scale, test_y_channel=True)``): both pictures rounded
to uint8 levels, converted to BT.601 luma Y = 16 + 65.481 R + 128.553 G + 24.966 B (R, G, B in [0, 1]; grey
pictures are their own Y), ``scale`` pixels cropped at every border, PSNR = 10 log10(255² / MSE).
The baseline is bicubic upscaling of the same source (torch's antialiased bicubic, a = -0.5 as MATLAB's).

The run's closing quality line; the measure itself is ``sr_metrics`` (shared with ``gandeploy evaluate``, which
adds SSIM and runs on exports and served models).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def quantize(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] float → the nearest uint8 level, as float in [0, 255]."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0)


def psnr_y(pred: torch.Tensor, target: torch.Tensor, border: int) -> float:
    """PSNR (dB) on Y between ``pred`` and ``target`` ([1, C, H, W] in [0, 1]), ``border`` pixels cropped: the
    uint8 levels through ``sr_metrics`` (the one PSNR ``gandeploy evaluate`` reports too)."""
    from gandeploy.metrics.sr_metrics import crop, psnr, to_y

    a, b = (to_y(quantize(x)[0].cpu().numpy()) for x in (pred, target))
    return psnr(crop(a, border), crop(b, border))


def bicubic(source: torch.Tensor, scale: int) -> torch.Tensor:
    """The baseline: ``source`` [N, C, h, w] in [0, 1] upscaled by ``scale``, bicubic (a = -0.5)."""
    h, w = source.shape[-2:]
    return F.interpolate(source, size=(h * scale, w * scale), mode="bicubic", antialias=True,
                         align_corners=False).clamp(0.0, 1.0)


@torch.no_grad()
def upscale(generator: nn.Module, source: torch.Tensor, scale: int, multiple: int,
            value_range: tuple[float, float]) -> torch.Tensor:
    """``generator`` on ``source`` [N, C, h, w] in [0, 1]: mapped to its ``value_range``, reflect-padded to its
    size ``multiple`` and cropped back; returns [N, C, h·scale, w·scale] in [0, 1]."""
    lo, hi = value_range
    h, w = source.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    x = lo + source * (hi - lo)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    out = generator(x).float()[..., :h * scale, :w * scale]
    return ((out - lo) / (hi - lo)).clamp(0.0, 1.0)


@dataclass(frozen=True)
class PSNRResult:
    """Mean PSNR-Y of a generator and of bicubic over some pictures, and each picture's."""

    model: float
    bicubic: float
    per_picture: dict[str, tuple[float, float]]  # name → (model, bicubic)

    @property
    def gain(self) -> float:
        return self.model - self.bicubic


def psnr_vs_bicubic(generator: nn.Module, pairs: list[tuple[str, torch.Tensor, torch.Tensor]], scale: int,
                    multiple: int, value_range: tuple[float, float]) -> PSNRResult:
    """PSNR-Y (border ``scale``) of ``generator`` and of bicubic on (name, source, target) pairs in [0, 1]."""
    per: dict[str, tuple[float, float]] = {}
    for name, source, target in pairs:
        sr = upscale(generator, source, scale, multiple, value_range)
        per[name] = (psnr_y(sr, target, scale), psnr_y(bicubic(source, scale), target, scale))
    n = len(per)
    return PSNRResult(sum(v[0] for v in per.values()) / n, sum(v[1] for v in per.values()) / n, per)
