"""Tiny super-resolution generators for the export tests, registered for a test with ``register_sr``.

They follow the shared SR design (value range (0, 1), declared ``scale`` and ``multiple``): ``TinySR``
optionally pixel-unshuffles its input by 2 the way BasicSR's x2 RRDBNet does (reshape + permute, 6-D), runs a
few 3x3 convolutions at that resolution and upsamples with PixelShuffle. ``OverflowSR`` plants activations past
FP16's range (a convolution scaled up by ``gain``, then scaled back down) for the FP16 safety tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from gandeploy.models.common import ModelSpec
from gandeploy.models.io import GeneratorIO, image_input, image_output
from gandeploy.registry import MODELS

RANGE = (0.0, 1.0)


@dataclass(frozen=True)
class TinySRConfig:
    channels: int = 3
    feat: int = 8
    convs: int = 3
    scale: int = 2
    unshuffle: int = 1  # 2: pixel-unshuffle the input by 2 first (BasicSR's x2 RRDBNet), size rule 2
    gain: float = 1.0  # OverflowSR: the planted scale of its first convolution


def pixel_unshuffle(x: torch.Tensor, factor: int) -> torch.Tensor:
    """[N, C, H, W] → [N, C·f², H/f, W/f], written as BasicSR writes it (6-D view + permute)."""
    n, c, h, w = x.shape
    x = x.view(n, c, h // factor, factor, w // factor, factor)  # [N, C, h, f, w, f]
    return x.permute(0, 1, 3, 5, 2, 4).reshape(n, c * factor * factor, h // factor, w // factor)


class TinySR(nn.Module):
    def __init__(self, cfg: TinySRConfig) -> None:
        super().__init__()
        self.cfg = cfg
        up = cfg.scale * cfg.unshuffle  # the upsampling the body must do
        self.head = nn.Conv2d(cfg.channels * cfg.unshuffle**2, cfg.feat, 3, padding=1)
        self.body = nn.Sequential(*[m for _ in range(cfg.convs)
                                    for m in (nn.Conv2d(cfg.feat, cfg.feat, 3, padding=1), nn.LeakyReLU(0.2))])
        self.tail = nn.Sequential(nn.Conv2d(cfg.feat, cfg.channels * up * up, 3, padding=1), nn.PixelShuffle(up))

    def forward(self, image: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] in (0, 1)
        x = pixel_unshuffle(image, self.cfg.unshuffle) if self.cfg.unshuffle > 1 else image
        x = self.head(x)  # [N, F, H/u, W/u]
        x = x + self.body(x)
        return torch.sigmoid(self.tail(x))  # [N, C, sH, sW] in (0, 1)


class OverflowSR(TinySR):
    """TinySR whose first feature map is multiplied by ``gain`` (past 65504 for gain 1e5) and divided back
    right after: the same function in exact arithmetic, an inf in FP16. The gain is applied as two factors of
    sqrt(gain), so no single weight passes FP16's range (the converter would clip it, a different failure)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        g = float(self.cfg.gain) ** 0.5
        x = self.head(image * 4.0 - 2.0) * g * g  # [N, F, H, W], |x| up to ~1e5 · |head|
        x = torch.relu(x) / g / g - 0.1 * torch.relu(-x) / g / g  # a leaky ReLU, back at |x| ~ 1
        x = x + self.body(x)
        return torch.sigmoid(self.tail(x))


def _io(cfg: TinySRConfig) -> GeneratorIO:
    return GeneratorIO((image_input(cfg.channels, multiple=max(1, cfg.unshuffle), value_range=RANGE),),
                       (image_output(cfg.channels, scale=cfg.scale, value_range=RANGE),))


def _spec(name: str, cls: type[TinySR]) -> ModelSpec:
    return ModelSpec(name=name, description="test SR net", config_cls=TinySRConfig, family="paired",
                     build_generator=cls, build_discriminator=lambda cfg: nn.Identity(), io=_io)


TINY_SR = _spec("tiny-sr", TinySR)
OVERFLOW_SR = _spec("overflow-sr", OverflowSR)


@pytest.fixture
def register_sr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the test SR families into the registry for one test."""
    monkeypatch.setitem(MODELS, TINY_SR.name, TINY_SR)
    monkeypatch.setitem(MODELS, OVERFLOW_SR.name, OVERFLOW_SR)
