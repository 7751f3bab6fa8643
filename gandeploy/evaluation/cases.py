"""Parity and benchmark cases: deterministic inputs that exercise every input a generator declares, and the
fixed test pictures (``test_image``) for image inputs.

The default fill of the served contract (``ServedContract.values``) sets continuous codes to the centre of their
range; a case spreads them over their training range instead, so parity, benchmarks, load tests and evaluation
samples exercise every input. Class labels and categorical codes are ``seed % classes`` as in the default fill;
continuous codes of seed s are ``default_rng(CASE_SALT + s).uniform(low, high)``; latents come from the seeds
(``latent_from_seed``) through the contract's own feeds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from gandeploy.contract import ServedContract
from gandeploy.models import io as gio
from gandeploy.models.io import HW

CASE_SALT = 7_919  # case_values: continuous codes of seed s come from default_rng(CASE_SALT + s)


def case_values(contract: ServedContract, seeds: Iterable[int]) -> dict[str, np.ndarray | None]:
    """Every served non-image input for ``seeds`` (the contract's ``values``, checked): indices
    ``seed % classes``; continuous codes ``default_rng(CASE_SALT + seed).uniform(low, high)``."""
    seed_arr = np.asarray(list(seeds), dtype=np.int64).reshape(-1)
    given: dict[str, Any] = {}
    for t in contract.inputs:
        if t.role == gio.CONTINUOUS_CODE:
            lo, hi = (t.low, t.high) if t.low is not None else (-1.0, 1.0)
            given[t.name] = np.stack([np.random.default_rng(CASE_SALT + int(s)).uniform(lo, hi, t.dims)
                                      for s in seed_arr]).astype(np.float32)  # [N, *dims]
    return contract.values(seed_arr, **given)


def case_io(contract: ServedContract, seeds: Iterable[int], images: np.ndarray | None = None,
         ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(generator feeds, served request) of one deterministic case: ``case_values`` of ``seeds``, or the
    pictures ``images`` (uint8 [N, H, W, C]) for an image-to-image generator."""
    if contract.translation:
        return contract.generator_feeds(images=images), contract.request(images=images)
    vals = case_values(contract, seeds)
    return contract.feeds_from_values(vals), {k: v for k, v in vals.items() if v is not None}


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
