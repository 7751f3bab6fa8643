"""Real-ESRGAN's second-order degradation: deterministic per generator, the right size and levels, and each
piece equal to its definition (kernels, the FFT filter, the sinc)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import j1

from gandeploy.data.degradations import FIRST, SECOND, blur_kernel, filter2d, realesrgan_degrade, sinc_kernel


def _photo(b: int = 3, c: int = 3, s: int = 64) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32), indexing="ij")
    planes = [0.5 + 0.4 * torch.sin(xs / (3 + i) + ch) * torch.cos(ys / 5) for i in range(b) for ch in range(c)]
    return torch.stack(planes).view(b, c, s, s)


def test_deterministic_given_the_generator_and_sized():
    hr = _photo()
    a = realesrgan_degrade(hr, 4, torch.Generator().manual_seed(0))
    b = realesrgan_degrade(hr, 4, torch.Generator().manual_seed(0))
    c = realesrgan_degrade(hr, 4, torch.Generator().manual_seed(1))
    assert a.shape == (3, 3, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a, torch.round(a * 255) / 255) and a.min() >= 0 and a.max() <= 1  # uint8 levels


def test_degraded_is_worse_than_bicubic_but_keeps_the_picture():
    hr = _photo(b=8)
    bicubic = F.interpolate(hr, scale_factor=0.25, mode="bicubic", antialias=True)
    lr = realesrgan_degrade(hr, 4, torch.Generator().manual_seed(3))
    err = (lr - bicubic).abs().mean(dim=(1, 2, 3))
    assert (err > 0.005).all()  # every picture really degraded
    assert (lr.mean(dim=(1, 2, 3)) - bicubic.mean(dim=(1, 2, 3))).abs().max() < 0.1  # brightness kept
    grey = realesrgan_degrade(hr[:, :1], 2, torch.Generator().manual_seed(3))
    assert grey.shape == (8, 1, 32, 32)


@pytest.mark.parametrize("stage", [FIRST, SECOND])
def test_kernels_are_normalised_odd_and_varied(stage):
    gen = torch.Generator().manual_seed(7)
    kernels = [blur_kernel(gen, stage) for _ in range(40)]
    assert all(abs(float(k.sum()) - 1) < 1e-9 and k.shape[0] % 2 == 1 and 7 <= k.shape[0] <= 21 for k in kernels)
    assert len({k.shape[0] for k in kernels}) > 3  # sizes drawn, not fixed
    symmetric = [torch.allclose(k, k.T) for k in kernels]
    assert any(symmetric) and not all(symmetric)  # isotropic and anisotropic ones both drawn


def test_sinc_kernel_is_basicsr_circular_lowpass():
    size, cutoff = 9, 1.3
    c = (size - 1) / 2
    with np.errstate(invalid="ignore"):  # the centre (r = 0) is set below, as upstream does
        r = np.fromfunction(lambda x, y: np.hypot(x - c, y - c), (size, size))
        ref = cutoff * j1(cutoff * r) / (2 * np.pi * r)
    ref[size // 2, size // 2] = cutoff**2 / (4 * np.pi)
    ref /= ref.sum()
    np.testing.assert_allclose(sinc_kernel(cutoff, size).numpy(), ref, atol=1e-7)  # torch J1: ~1e-8


def test_fft_filter_equals_the_direct_convolution():
    x = torch.rand(2, 3, 30, 41)
    k = blur_kernel(torch.Generator().manual_seed(11), FIRST).float()
    p = k.shape[-1] // 2
    direct = F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), k.expand(3, 1, *k.shape), groups=3)
    assert (filter2d(x, k) - direct).abs().max() < 1e-5
    assert math.isclose(float(filter2d(torch.ones(1, 1, 12, 12), k).mean()), 1.0, rel_tol=1e-5)
