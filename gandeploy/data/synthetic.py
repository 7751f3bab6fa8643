"""``digits2inverted``: an unpaired domain pair whose true A→B map is known, so translation can be scored.

Domain A: scikit-learn's real handwritten digits (8x8, resized), grey, ink bright on a dark background.
Domain B: ``true_map`` of *other* digits — colour-inverted and tinted (dark ink on a warm background).
The two domains never share a digit image (unpaired), and B partners are drawn at random per batch.
A held-out split (digits in neither training domain) measures ``G_A(x)`` against ``true_map(x)``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gandeploy.errors import DataError

PAPER = (1.0, 0.78, 0.40)  # B's background colour (RGB in [0, 1]): warm paper
INK = (0.10, 0.10, 0.50)  # B's ink colour: dark blue. Neither lies on A's grey axis, so a B pixel never
# equals an A pixel and the identity loss (G_A(b) = b) does not contradict the true map.
SPLIT_SEED = 0
N_TEST = 297  # 1797 digits: 1500 for training (750 per domain), 297 held out


def true_map(a: torch.Tensor) -> torch.Tensor:
    """The known A→B map on [N, C, H, W] in [-1, 1]: invert and tint (RGB); grey (C=1) is inverted only.

    With p = (a + 1) / 2 the ink intensity in [0, 1], B's colour is ``PAPER + p · (INK - PAPER)`` (dark ink on
    paper where A has bright ink on black), returned in [-1, 1]. A per-pixel affine map.
    """
    if a.shape[1] == 1:
        return -a
    if a.shape[1] != len(PAPER):
        raise ValueError(f"true_map takes 1 or 3 channels, got {a.shape[1]}")
    paper = torch.tensor(PAPER, dtype=a.dtype, device=a.device).view(1, -1, 1, 1)  # [1, 3, 1, 1]
    ink = torch.tensor(INK, dtype=a.dtype, device=a.device).view(1, -1, 1, 1)  # [1, 3, 1, 1]
    p = (a + 1.0) * 0.5  # [N, 3, H, W] in [0, 1]
    return (paper + p * (ink - paper)) * 2.0 - 1.0


def _digits(image_size: int, channels: int) -> torch.Tensor:
    """All 1,797 digits as float32 [1797, C, S, S] in [-1, 1] (ink bright), in a fixed shuffled order."""
    from sklearn.datasets import load_digits  # local: sklearn is slow to import

    images = load_digits().images.astype(np.float32) / 16.0  # [1797, 8, 8] in [0, 1]
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    x = torch.from_numpy(images[order])[:, None]  # [N, 1, 8, 8]
    if image_size != 8:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)  # [N,1,S,S]
    x = x.clamp(0.0, 1.0) * 2.0 - 1.0
    return x.repeat(1, channels, 1, 1).contiguous()  # [N, C, S, S], grey in every channel


class DigitsPair:
    """In-memory unpaired pair: ``get_batch`` → (a, b) float32 [B, C, S, S] in [-1, 1]."""

    class_names = None

    def __init__(self, image_size: int, channels: int, split: str) -> None:
        if split not in ("train", "test"):
            raise DataError(f"split must be 'train' or 'test', got '{split}'.")
        if channels not in (1, 3):
            raise DataError(f"digits2inverted has 1 or 3 channels, not {channels}; set input_nc/output_nc.")
        if image_size < 8 or image_size % 4:
            raise DataError(f"digits2inverted needs an image size >= 8 and a multiple of 4, got {image_size}.")
        x = _digits(image_size, channels)
        train, test = x[:-N_TEST], x[-N_TEST:]
        half_train, half_test = len(train) // 2, len(test) // 2
        self.heldout_a = test[:half_test]  # evaluation inputs: digits seen by neither training domain
        self.heldout_b = true_map(test[half_test:])
        if split == "train":
            self.a, self.b = train[:half_train], true_map(train[half_train:])
        else:
            self.a, self.b = self.heldout_a, self.heldout_b
        self.image_size, self.channels, self.split = image_size, channels, split

    true_map = staticmethod(true_map)

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def get_batch(self, indices: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A at ``indices`` (mod len A); B partners drawn at random from ``gen`` (unpaired)."""
        a = self.a[indices.long() % len(self.a)]  # [B, C, S, S]
        b = self.b[torch.randint(0, len(self.b), (len(indices),), generator=gen)]  # [B, C, S, S]
        return a, b

    def test_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` held-out A digits and held-out B images (fixed)."""
        return self.heldout_a[:n], self.heldout_b[:n]


def open_digits_pair(name: str = "digits2inverted", *, image_size: int | None = 32, channels: int | None = 3,
                     split: str = "train", data_root: str | os.PathLike[str] | None = None,
                     augment: Any = None) -> DigitsPair:
    """Open ``digits2inverted`` (ships with scikit-learn; ``data_root`` and ``augment`` are not used)."""
    return DigitsPair(int(image_size or 32), int(channels or 3), split)
