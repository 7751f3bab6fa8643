"""PSNR on the Y channel (BasicSR's definition), the bicubic baseline and the padded upscale helper."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import numpy as np

from gandeploy.metrics.sr_metrics import to_y
from gandeploy.metrics.sr_psnr import bicubic, psnr_vs_bicubic, psnr_y, upscale


def test_psnr_y_matches_the_formula() -> None:
    target = torch.full((1, 3, 12, 12), 100 / 255)
    pred = torch.full((1, 3, 12, 12), 101 / 255)  # one uint8 level on every channel
    dy = (65.481 + 128.553 + 24.966) / 255  # the Y difference in [0, 255] units
    assert math.isclose(psnr_y(pred, target, 0), 10 * math.log10(255**2 / dy**2), rel_tol=1e-9)
    assert psnr_y(target, target, 0) == math.inf


def test_border_is_cropped() -> None:
    target = torch.rand(1, 3, 16, 16)
    pred = target.clone()
    pred[..., :4, :] = 0  # damage only the top 4 rows
    assert psnr_y(pred, target, 4) == math.inf and psnr_y(pred, target, 0) < 40


def test_luma_of_white_and_grey() -> None:
    white = np.full((3, 1, 1), 255.0)
    assert math.isclose(float(to_y(white)[0, 0]), 235.0, abs_tol=1e-9)  # BT.601 studio range
    grey = np.full((1, 2, 2), 7.0)
    assert np.array_equal(to_y(grey), grey[0])


class NearestX4(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-1] % 4 == 0 and x.shape[-2] % 4 == 0  # the size rule is met after padding
        return F.interpolate(x, scale_factor=4, mode="nearest")


def test_upscale_pads_to_the_size_rule_and_crops_back() -> None:
    source = torch.rand(1, 3, 5, 7)
    out = upscale(NearestX4(), source, 4, 4, (-1.0, 1.0))  # a [-1, 1] model: mapped there and back
    assert out.shape == (1, 3, 20, 28)
    torch.testing.assert_close(out, F.interpolate(source, scale_factor=4, mode="nearest"))


def test_bicubic_beats_nearest_on_a_smooth_picture() -> None:
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    target = torch.stack([x, y, (x + y) / 2])[None]  # smooth ramps [1, 3, 64, 64]
    source = F.interpolate(target, size=(16, 16), mode="bicubic", antialias=True, align_corners=False)
    r = psnr_vs_bicubic(NearestX4(), [("ramp", source, target)], 4, 1, (0.0, 1.0))
    assert r.bicubic > r.model and math.isclose(r.gain, r.model - r.bicubic)
    assert bicubic(source, 4).shape == target.shape
