"""Super-resolution quality as the SR papers measure it (BasicSR's ``calculate_psnr`` / ``calculate_ssim`` with
``test_y_channel=True``), and the bicubic baseline they are reported against.

* Pictures are uint8 levels (what a user receives), [C, H, W] with C = 3 (RGB) or 1.
* ``crop_border`` pixels are cut from every side first (the scale factor, by convention).
* RGB → Y of ITU-R BT.601 YCbCr on [0, 255]: ``Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16`` (range 16..235),
  BasicSR's ``rgb2ycbcr(..., y_only=True)``; a grey picture is its own Y.
* PSNR = 10 log10(255² / MSE) in float64 (inf for identical pictures).
* SSIM: Wang et al. 2004 with BasicSR's constants — an 11x11 Gaussian window (sigma 1.5), C1 = (0.01·255)²,
  C2 = (0.03·255)², statistics over the *valid* part only (no padding), averaged over the map. torchmetrics'
  SSIM pads by reflection and differs from this by ~3e-5 (measured), so this is written out once instead.
"""

from __future__ import annotations

import numpy as np

Y_FROM_RGB = (65.481, 128.553, 24.966)  # BT.601, per unit of [0, 1] input, output on [0, 255]
Y_OFFSET = 16.0
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def to_y(picture: np.ndarray) -> np.ndarray:
    """uint8 (or float on [0, 255]) [C, H, W] → float64 Y [H, W] on [0, 255] (BT.601; grey passes through)."""
    x = np.asarray(picture, dtype=np.float64)
    if x.shape[0] == 1:
        return x[0]
    if x.shape[0] != 3:
        raise ValueError(f"Y channel needs 1 or 3 channels, got {x.shape[0]}")
    r, g, b = x
    return (Y_FROM_RGB[0] * r + Y_FROM_RGB[1] * g + Y_FROM_RGB[2] * b) / 255.0 + Y_OFFSET


def crop(picture: np.ndarray, border: int) -> np.ndarray:
    """[..., H, W] without ``border`` pixels on every side."""
    return picture[..., border:picture.shape[-2] - border, border:picture.shape[-1] - border] if border else picture


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two same-shape pictures on [0, 255]."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def _gaussian() -> np.ndarray:
    ax = np.arange(SSIM_WINDOW, dtype=np.float64) - SSIM_WINDOW // 2
    g = np.exp(-(ax ** 2) / (2 * SSIM_SIGMA ** 2))
    return g / g.sum()  # [11]; the 11x11 window is its outer product


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two same-shape one-channel pictures [H, W] on [0, 255] (module docstring; needs H, W >= 11).

    The Gaussian window is separable: each local mean is a column pass then a row pass (scipy), of which the
    valid part (no border effects) is kept.
    """
    from scipy.ndimage import correlate1d

    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if min(x.shape) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs pictures of at least {SSIM_WINDOW}x{SSIM_WINDOW} after the border crop")
    g, r = _gaussian(), SSIM_WINDOW // 2
    maps = np.stack([x, y, x * x, y * y, x * y])  # [5, H, W]
    maps = correlate1d(correlate1d(maps, g, axis=1), g, axis=2)[:, r:-r, r:-r]  # valid: [5, H-10, W-10]
    mu_x, mu_y, xx, yy, xy = maps
    var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + C1) * (2 * cov + C2)) / ((mu_x ** 2 + mu_y ** 2 + C1) * (var_x + var_y + C2))
    return float(ssim_map.mean())


def psnr_ssim_y(restored: np.ndarray, original: np.ndarray, crop_border: int) -> dict[str, float]:
    """{"psnr": dB, "ssim": ...} of uint8 [C, H, W] ``restored`` against ``original`` on the Y channel, with
    ``crop_border`` pixels cut from every side."""
    if restored.shape != original.shape:
        raise ValueError(f"pictures differ in shape: {restored.shape} vs {original.shape}")
    a, b = crop(to_y(restored), crop_border), crop(to_y(original), crop_border)
    return {"psnr": psnr(a, b), "ssim": ssim(a, b)}


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The baseline: uint8 [C, h, w] → uint8 [C, h·scale, w·scale] by bicubic interpolation with the cubic kernel
    a = -0.5 of MATLAB's ``imresize`` and Pillow (torch's antialiased bicubic; for upscaling it equals Pillow's
    BICUBIC within rounding), rounded to uint8 levels."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(lr)).double()[None] / 255.0  # [1, C, h, w]
    up = F.interpolate(x, size=(lr.shape[1] * scale, lr.shape[2] * scale), mode="bicubic", antialias=True,
                       align_corners=False)
    return np.clip(np.rint(up[0].numpy() * 255.0), 0, 255).astype(np.uint8)
