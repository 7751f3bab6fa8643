"""``digits``: scikit-learn's 1,797 real handwritten digits (8x8, 16 grey levels, labels 0-9).

A fixed, stratified 20 % of each class is held out (``split="test"``: ~360 images) and never trained on;
the digits classifier (metrics/classifier.py) learns from it. Images are resized bilinearly to
``image_size`` and mapped to [-1, 1] (background -1, ink +1); ``channels=3`` repeats the grey channel.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gandeploy.data.arrays import ImageArrayDataset
from gandeploy.errors import DataError

HELD_OUT = 0.2
SPLIT_SEED = 2014  # fixed: the split never changes between runs or machines
DEFAULT_SIZE = 32
CLASS_NAMES = tuple(str(d) for d in range(10))


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images.astype(np.float32), data.target.astype(np.int64)  # [1797, 8, 8] in 0..16, [1797]


def split_indices() -> dict[str, np.ndarray]:
    """Stratified held-out split: per class, a fixed 20 % goes to ``test``."""
    _, labels = _raw()
    rng = np.random.default_rng(SPLIT_SEED)
    test: list[np.ndarray] = []
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        test.append(rng.permutation(idx)[: int(round(len(idx) * HELD_OUT))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return {"train": train_idx, "test": test_idx}


@functools.lru_cache(maxsize=8)
def load_split(split: str, image_size: int, channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [N, channels, S, S] float32 in [-1, 1], labels [N]) of ``split`` ("train" | "test")."""
    images, labels = _raw()
    idx = split_indices()[split]
    x = torch.from_numpy(images[idx] / 16.0)[:, None]  # [N, 1, 8, 8] in [0, 1]
    if image_size != 8:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = (x.clamp(0.0, 1.0) * 2.0 - 1.0).repeat(1, channels, 1, 1).contiguous()  # [N, C, S, S] in [-1, 1]
    return x, torch.from_numpy(labels[idx])


def open_digits(name: str = "digits", *, image_size: int | None = None, channels: int | None = None,
                split: str = "train", data_root: Path | None = None, augment: Any = None) -> ImageArrayDataset:
    """The digits dataset at ``image_size`` (default 32); ``split`` "train" (~1,437) or "test" (~360)."""
    size = int(image_size or DEFAULT_SIZE)
    nc = int(channels or 1)
    if nc not in (1, 3):
        raise DataError(f"digits are greyscale: channels must be 1 or 3 (--arch channels=), got {nc}.")
    if size < 4:
        raise DataError(f"--image-size {size} is too small for digits (use 8 or more; models take 32/64/128).")
    if split not in ("train", "test"):
        raise DataError(f"digits split must be 'train' or 'test', got '{split}'.")
    x, y = load_split(split, size, nc)
    tx, ty = load_split("test", size, nc)
    return ImageArrayDataset(x, y, CLASS_NAMES, tx, ty)
