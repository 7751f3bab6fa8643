"""PSNR / SSIM on Y equal BasicSR's ``calculate_psnr`` / ``calculate_ssim(..., test_y_channel=True)``, transcribed
here from basicsr/metrics/psnr_ssim.py + metric_util.py (BGR HWC input, border cropped before the Y conversion,
cv2.filter2D ≙ scipy's correlate with reflect-101 borders, then the valid [5:-5, 5:-5] part)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import correlate

from gandeploy.metrics.sr_metrics import bicubic_upscale, psnr_ssim_y


def _basicsr_y(img_bgr_hwc: np.ndarray) -> np.ndarray:
    img = img_bgr_hwc.astype(np.float32) / 255.0
    y = np.dot(img, [24.966, 128.553, 65.481]) + 16.0  # bgr2ycbcr(y_only=True) on [0, 1] input
    return (y / 255.0)[..., None] * 255.0


def _basicsr_ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    ax = np.arange(11) - 5
    g = np.exp(-(ax**2) / (2 * 1.5**2))
    g /= g.sum()
    w = np.outer(g, g)
    f = lambda x: correlate(x, w, mode="mirror")[5:-5, 5:-5]  # noqa: E731
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - mu1**2, f(b * b) - mu2**2, f(a * b) - mu1 * mu2
    return float((((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))).mean())


def _basicsr(img_rgb_chw: np.ndarray, img2_rgb_chw: np.ndarray, crop_border: int) -> tuple[float, float]:
    a = img_rgb_chw.transpose(1, 2, 0)[..., ::-1]  # RGB CHW → BGR HWC, as cv2 reads files
    b = img2_rgb_chw.transpose(1, 2, 0)[..., ::-1]
    a, b = (x[crop_border:-crop_border, crop_border:-crop_border, ...] for x in (a, b))
    a, b = _basicsr_y(a).astype(np.float64), _basicsr_y(b).astype(np.float64)
    mse = np.mean((a - b) ** 2)
    return 10.0 * math.log10(255.0**2 / mse), _basicsr_ssim_channel(a[..., 0], b[..., 0])


@pytest.mark.parametrize("noise", [2.0, 12.0])
def test_psnr_ssim_equal_basicsr(noise):
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:48, 0:60]
    original = np.stack([128 + 100 * np.sin(xs / (5 + c)) * np.cos(ys / 7) for c in range(3)])
    original = np.clip(original, 0, 255).astype(np.uint8)
    restored = np.clip(original + rng.normal(0, noise, original.shape), 0, 255).astype(np.uint8)
    ours = psnr_ssim_y(restored, original, crop_border=4)
    ref_psnr, ref_ssim = _basicsr(restored, original, 4)
    assert abs(ours["psnr"] - ref_psnr) < 1e-4  # BasicSR's Y is float32, ours float64
    assert abs(ours["ssim"] - ref_ssim) < 1e-6


def test_known_values():
    original = np.full((3, 20, 20), 100, np.uint8)
    assert psnr_ssim_y(original, original, 2)["psnr"] == float("inf")
    one_level = psnr_ssim_y(original + 1, original, 2)  # Y moves by 219/255 of a level
    assert one_level["psnr"] == pytest.approx(10 * math.log10(255**2 / (219 / 255) ** 2))
    grey = psnr_ssim_y(original[:1] + 2, original[:1], 2)  # one channel is its own Y
    assert grey["psnr"] == pytest.approx(10 * math.log10(255**2 / 4))


def test_bicubic_upscale_shape_and_levels():
    lr = np.random.default_rng(1).integers(0, 256, (3, 7, 9), dtype=np.uint8)
    up = bicubic_upscale(lr, 4)
    assert up.shape == (3, 28, 36) and up.dtype == np.uint8
    assert (bicubic_upscale(np.full((1, 5, 5), 77, np.uint8), 3) == 77).all()
