"""Differentiable augmentation (DiffAugment, Zhao et al., NeurIPS 2020) for GANs trained on little data.

The same kind of random transform is applied to every picture D sees, real and generated, in both D's and G's
steps, and it is differentiable, so G's gradient flows through it. D (and any head on its trunk, such as
InfoGAN's Q) then cannot tell pictures apart by what the transforms change, and it does not overfit the few
training pictures. The policies follow the paper's reference code: ``color`` (brightness ± 0.5, saturation × [0,
2), contrast × [0.5, 1.5)), ``translation`` (an integer shift of up to 1/8 of each side, zero-filled) and
``cutout`` (a zeroed square of half the side at a random place). Every draw comes from the step's
``torch.Generator``, so a run is reproducible from its seed.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str) -> tuple[str, ...]:
    """``"translation,cutout"`` → ("translation", "cutout"); ``""`` → (); ValueError naming an unknown name."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"diffaug: unknown polic{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                         f"choose from {', '.join(POLICIES)} (comma-separated)")
    if len(set(names)) != len(names):
        raise ValueError(f"diffaug: a policy is named twice in {text!r}")
    return names


def _uniform(n: int, gen: torch.Generator, x: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, generator=gen).to(device=x.device, dtype=x.dtype)  # [N, 1, 1, 1]


def color(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Brightness, saturation (a no-op on one channel) and contrast, each drawn per picture."""
    n = x.shape[0]
    x = x + (_uniform(n, gen, x) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(n, gen, x) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(n, gen, x) + 0.5) + mean


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each picture by whole pixels, up to ``ratio`` of its side each way; uncovered pixels become 0."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), generator=gen).to(x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=gen).to(x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = (gy + ty + 1).clamp(0, h + 1)  # [N, H, W] rows of the 1-pixel zero-padded picture
    gx = (gx + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # [N, H + 2, W + 2, C]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, gy, gx].permute(0, 3, 1, 2)  # [N, C, H, W] (laid out channels-last)


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of the side, centred at a random pixel (clipped at the borders), per picture."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=gen).to(x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=gen).to(x.device)
    gy, gx = torch.meshgrid(torch.arange(ch, device=x.device), torch.arange(cw, device=x.device), indexing="ij")
    gy = (gy + oy - ch // 2).clamp(0, h - 1)  # [N, ch, cw]
    gx = (gx + ox - cw // 2).clamp(0, w - 1)
    mask = torch.ones(n, h, w, device=x.device, dtype=x.dtype)
    mask[torch.arange(n, device=x.device)[:, None, None], gy, gx] = 0
    return x * mask.unsqueeze(1)


TRANSFORMS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "color": color, "translation": translation, "cutout": cutout}


def augment(x: torch.Tensor, policy: tuple[str, ...], gen: torch.Generator) -> torch.Tensor:
    """``x`` [N, C, H, W] through each transform of ``policy`` in order; ``x`` itself for an empty policy."""
    for name in policy:
        x = TRANSFORMS[name](x, gen)
    return x


def style_jitter(x: torch.Tensor, gen: torch.Generator, degrees: float = 15.0, zoom: float = 0.1,
                 shift: float = 0.0625) -> torch.Tensor:
    """A random change of style that keeps what a digit is, drawn per picture: rotation by up to ``degrees``, zoom
    by up to ``zoom`` either way, a shift of up to ``shift`` of the side (bilinear, uncovered pixels -1, the
    background of pictures in [-1, 1]), then strokes one pixel thicker, thinner or unchanged (a 3x3 max / min
    filter) — Elastic-InfoGAN's identity-preserving transformations (Ojha et al., NeurIPS 2020). Differentiable in
    ``x``."""
    n = x.shape[0]

    def u() -> torch.Tensor:  # [N] uniform in [-1, 1)
        return _uniform(n, gen, x).flatten() * 2 - 1

    angle, scale = u() * degrees * torch.pi / 180, 1 + u() * zoom
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos, -sin, u() * 2 * shift], 1),
                         torch.stack([sin, cos, u() * 2 * shift], 1)], 1)  # [N, 2, 3]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    moved = F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
    stroke = torch.randint(0, 3, (n, 1, 1, 1), generator=gen).to(x.device)  # 0 same, 1 thicker, 2 thinner
    thicker, thinner = F.max_pool2d(moved, 3, 1, 1), -F.max_pool2d(-moved, 3, 1, 1)
    return torch.where(stroke == 1, thicker, torch.where(stroke == 2, thinner, moved))
