"""Real-ESRGAN's second-order degradation: how a low-resolution training input is made from a high-resolution
picture so the model learns real-world blur, noise and compression, not clean bicubic downscaling only.

Following xinntao/Real-ESRGAN ``realesrgan/models/realesrgan_model.py`` (``feed_data``) with the kernels of
``realesrgan/data/realesrgan_dataset.py`` and ``basicsr/data/degradations.py``, at the parameters of its
``train_realesrgan_x4plus.yml``::

    blur (kernel 1) → random resize → Gaussian or Poisson noise → JPEG          first order
    blur (kernel 2, p 0.8) → resize to (H/scale)·s → noise → JPEG ⟷ [resize to H/scale + sinc filter]
                                                                           (the two in random order)
    round to uint8 levels

Kernels: a random odd size 7..21; with p 0.1 a 2-D sinc (circular low-pass), else one of isotropic /
anisotropic Gaussian (p 0.45 / 0.25), generalized Gaussian (0.12 / 0.03) or plateau (0.12 / 0.03). The final
sinc filter is applied with p 0.8. Resize modes are area, bilinear or bicubic, equally likely.

Differences, on purpose: every picture of a batch draws its own parameters (upstream shares the resize and JPEG
draws across a batch and reshuffles through a 180-picture queue instead); JPEG is Pillow's encoder at an integer
quality (upstream: a differentiable JPEG with a float quality); the target is not USM-sharpened (a training-loss
choice of Real-ESRGAN, not part of the degradation). Every draw comes from the ``torch.Generator`` passed in, so
the same generator state gives the same low-resolution picture.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

RESIZE_MODES = ("area", "bilinear", "bicubic")
KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
KERNEL_PROBS = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
KERNEL_SIZES = tuple(range(7, 22, 2))  # 7, 9, ..., 21
FINAL_SINC_PROB = 0.8
SECOND_BLUR_PROB = 0.8
GREY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision rgb_to_grayscale, as BasicSR's Poisson noise uses


@dataclass(frozen=True)
class Stage:
    """The random ranges of one degradation order (Real-ESRGAN's x4plus options)."""

    blur_sigma: tuple[float, float]
    resize_prob: tuple[float, float, float]  # up, down, keep
    resize_range: tuple[float, float]
    noise_range: tuple[float, float]  # Gaussian sigma on the 0..255 scale
    poisson_scale_range: tuple[float, float]
    sinc_prob: float = 0.1
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    gaussian_noise_prob: float = 0.5
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)


FIRST = Stage(blur_sigma=(0.2, 3.0), resize_prob=(0.2, 0.7, 0.1), resize_range=(0.15, 1.5), noise_range=(1.0, 30.0),
              poisson_scale_range=(0.05, 3.0))
SECOND = Stage(blur_sigma=(0.2, 1.5), resize_prob=(0.3, 0.4, 0.3), resize_range=(0.3, 1.2), noise_range=(1.0, 25.0),
               poisson_scale_range=(0.05, 2.5))


# --------------------------------------------------------------------------------------------- random draws
def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def _pick(gen: torch.Generator, weights: tuple[float, ...]) -> int:
    return int(torch.multinomial(torch.tensor(weights, dtype=torch.float64), 1, generator=gen))


def _beta(gen: torch.Generator, low: float, high: float) -> float:
    """BasicSR's shape draw: below or above 1 with equal odds."""
    return _uniform(gen, low, 1.0) if _uniform(gen, 0.0, 1.0) < 0.5 else _uniform(gen, 1.0, high)


# --------------------------------------------------------------------------------------------- kernels
def _grid(size: int) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return torch.stack([xx, yy], dim=-1)  # [k, k, 2] of (x, y)


def sinc_kernel(cutoff: float, size: int) -> torch.Tensor:
    """BasicSR's ``circular_lowpass_kernel``: the 2-D sinc ``ω J1(ω r) / (2π r)``, normalised: [size, size]."""
    r = _grid(size).norm(dim=-1)
    kernel = cutoff * torch.special.bessel_j1(cutoff * r) / (2 * math.pi * r)
    kernel[(size - 1) // 2, (size - 1) // 2] = cutoff ** 2 / (4 * math.pi)
    return kernel / kernel.sum()


def _cutoff(gen: torch.Generator, size: int) -> float:
    """Sinc cut-off for a blur kernel: wider range for the large kernels, as the Real-ESRGAN data set draws it."""
    return _uniform(gen, math.pi / 3 if size < 13 else math.pi / 5, math.pi)


def blur_kernel(gen: torch.Generator, stage: Stage) -> torch.Tensor:
    """One random blur kernel of ``stage`` (module docstring): float64 [k, k], k odd in 7..21, summing to 1."""
    size = KERNEL_SIZES[int(torch.randint(len(KERNEL_SIZES), (), generator=gen))]
    if _uniform(gen, 0.0, 1.0) < stage.sinc_prob:
        return sinc_kernel(_cutoff(gen, size), size)
    kind = KERNEL_TYPES[_pick(gen, KERNEL_PROBS)]
    sig_x = _uniform(gen, *stage.blur_sigma)
    if kind.endswith("aniso"):
        sig_y, theta = _uniform(gen, *stage.blur_sigma), _uniform(gen, -math.pi, math.pi)
    else:
        sig_y, theta = sig_x, 0.0
    rot = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=torch.float64)
    cov = rot @ torch.diag(torch.tensor([sig_x ** 2, sig_y ** 2], dtype=torch.float64)) @ rot.T
    grid = _grid(size)
    quad = ((grid @ torch.linalg.inv(cov)) * grid).sum(-1)  # [k, k]: x^T Σ^-1 x
    if kind.startswith("generalized"):
        kernel = torch.exp(-0.5 * quad ** _beta(gen, *stage.betag_range))
    elif kind.startswith("plateau"):
        kernel = 1.0 / (quad ** _beta(gen, *stage.betap_range) + 1.0)
    else:
        kernel = torch.exp(-0.5 * quad)
    return kernel / kernel.sum()


def filter2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] correlated with ``kernel`` [k, k] (as BasicSR's filter2D), reflect-padded by k // 2.

    Computed through the FFT (a product of spectra, then the part no wrap-around reaches): on CPU that is ~10x
    faster than a direct 21x21 convolution and equal to it within float32 rounding.
    """
    k = kernel.shape[-1]
    pad = k // 2
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    padded = F.pad(x, (pad, pad, pad, pad), mode=mode)  # [B, C, H+2p, W+2p]
    size = padded.shape[-2:]
    flipped = kernel.flip(0, 1).to(x.dtype)  # correlation = convolution with the flipped kernel
    spectrum = torch.fft.rfft2(padded, s=size) * torch.fft.rfft2(flipped, s=size)
    return torch.fft.irfft2(spectrum, s=size)[..., k - 1:, k - 1:]  # [B, C, H, W]


# --------------------------------------------------------------------------------------------- resize, noise, JPEG
def _resize(x: torch.Tensor, size: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    mode = RESIZE_MODES[int(torch.randint(len(RESIZE_MODES), (), generator=gen))]
    size = (max(1, size[0]), max(1, size[1]))
    return F.interpolate(x, size=size, mode=mode, **({} if mode == "area" else {"align_corners": False}))


def _random_factor(gen: torch.Generator, stage: Stage) -> float:
    updown = _pick(gen, stage.resize_prob)
    if updown == 0:
        return _uniform(gen, 1.0, stage.resize_range[1])
    if updown == 1:
        return _uniform(gen, stage.resize_range[0], 1.0)
    return 1.0


def add_noise(x: torch.Tensor, gen: torch.Generator, stage: Stage) -> torch.Tensor:
    """Gaussian (sigma on the 0..255 scale) or Poisson noise, grey (one draw for all channels) with p 0.4; clipped
    to [0, 1]. ``x``: [1, C, H, W] in [0, 1]."""
    gaussian = _uniform(gen, 0.0, 1.0) < stage.gaussian_noise_prob
    grey = _uniform(gen, 0.0, 1.0) < stage.gray_noise_prob
    if gaussian:
        sigma = _uniform(gen, *stage.noise_range) / 255.0
        shape = (1, 1, *x.shape[-2:]) if grey else tuple(x.shape)
        noise = torch.randn(shape, generator=gen, dtype=x.dtype) * sigma
    else:
        scale = _uniform(gen, *stage.poisson_scale_range)
        base = x
        if grey and x.shape[1] == 3:
            base = (x * torch.tensor(GREY_WEIGHTS, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
        base = torch.clamp(torch.round(base * 255.0), 0, 255) / 255.0
        levels = 2 ** math.ceil(math.log2(max(2, len(torch.unique(base)))))  # BasicSR's vals
        noise = (torch.poisson(base * levels, generator=gen) / levels - base) * scale
    return torch.clamp(x + noise, 0.0, 1.0)


def jpeg(x: torch.Tensor, gen: torch.Generator, stage: Stage) -> torch.Tensor:
    """JPEG round trip at a random quality in ``stage.jpeg_range`` (Pillow's encoder): [1, C, H, W] in [0, 1]."""
    from PIL import Image

    quality = int(round(_uniform(gen, *stage.jpeg_range)))
    u8 = torch.clamp(torch.round(x[0] * 255.0), 0, 255).to(torch.uint8).permute(1, 2, 0).numpy()  # [H, W, C]
    img = Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as decoded:
        arr = np.asarray(decoded.convert(img.mode), dtype=np.float32) / 255.0
    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr).permute(2, 0, 1)[None].to(x.dtype)


# --------------------------------------------------------------------------------------------- the pipeline
def degrade_one(hr: torch.Tensor, scale: int, gen: torch.Generator) -> torch.Tensor:
    """One picture [1, C, H, W] in [0, 1] → its degraded low-resolution partner [1, C, H/scale, W/scale] (module
    docstring), in uint8 levels."""
    h, w = hr.shape[-2:]
    k1, k2 = blur_kernel(gen, FIRST), blur_kernel(gen, SECOND)
    final_sinc = None
    if _uniform(gen, 0.0, 1.0) < FINAL_SINC_PROB:
        size = KERNEL_SIZES[int(torch.randint(len(KERNEL_SIZES), (), generator=gen))]
        final_sinc = sinc_kernel(_uniform(gen, math.pi / 3, math.pi), size)

    out = filter2d(hr, k1)  # first order
    factor = _random_factor(gen, FIRST)
    out = _resize(out, (int(h * factor), int(w * factor)), gen)
    out = jpeg(add_noise(out, gen, FIRST), gen, FIRST)

    if _uniform(gen, 0.0, 1.0) < SECOND_BLUR_PROB:  # second order
        out = filter2d(out, k2)
    factor = _random_factor(gen, SECOND)
    out = _resize(out, (int(h / scale * factor), int(w / scale * factor)), gen)
    out = add_noise(out, gen, SECOND)

    def back(x: torch.Tensor) -> torch.Tensor:  # resize to the target size + the final sinc filter
        x = _resize(x, (h // scale, w // scale), gen)
        return filter2d(x, final_sinc) if final_sinc is not None else x

    if _uniform(gen, 0.0, 1.0) < 0.5:
        out = jpeg(back(out), gen, SECOND)
    else:
        out = back(jpeg(out, gen, SECOND))
    return torch.clamp(torch.round(out * 255.0), 0, 255) / 255.0


def realesrgan_degrade(hr: torch.Tensor, scale: int, gen: torch.Generator) -> torch.Tensor:
    """A batch [B, C, H, W] in [0, 1] (H, W multiples of ``scale``) → [B, C, H/scale, W/scale] in [0, 1], uint8
    levels; each picture draws its own degradation from ``gen``."""
    return torch.cat([degrade_one(hr[i:i + 1].float(), int(scale), gen) for i in range(hr.shape[0])])
