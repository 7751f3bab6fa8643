"""The fixed test pictures that parity, the INT8 verdict, the tiled check and the benchmarks feed image inputs."""

from __future__ import annotations

import numpy as np

from gandeploy.models.io import HW


def test_image(seed: int, hw: HW, channels: int = 3) -> np.ndarray:
    """A deterministic photo-like picture, uint8 [H, W, C]: smooth gradients, a disc, stripes and mild noise.

    Real pictures have large flat areas, edges and texture; uniform noise would exercise none of that.
    """
    rng = np.random.default_rng(10_000 + seed)
    h, w = hw
    yy, xx = np.meshgrid(np.linspace(0, 1, h, dtype=np.float32), np.linspace(0, 1, w, dtype=np.float32),
                         indexing="ij")  # [H, W]
    planes = []
    for _ in range(channels):
        a, b, f = rng.uniform(0.2, 0.8, 3)
        base = a * xx + (1 - a) * yy + 0.15 * np.sin(2 * np.pi * (3 + 5 * b) * (xx * f + yy * (1 - f)))
        cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3)
        base = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 1.0 - base, base)  # a disc with sharp edges
        planes.append(base + rng.normal(0.0, 0.03, size=(h, w)).astype(np.float32))
    image = np.stack(planes, axis=-1)  # [H, W, C]
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
