"""``stacked-digits``: three independently drawn real digits stacked as the R, G and B channels of one picture.

The stacked-MNIST benchmark of VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al., 2018), built on the
digits this project already uses (data/digits.py): 10 x 10 x 10 = 1,000 modes, a mode being the triple of digit
labels (``label = 100 R + 10 G + B``). A generator's mode coverage is counted by classifying each channel with
the held-out digits judge (evaluation/stacked_modes.py).

The data set is a fixed list of ``LENGTH`` index triples drawn uniformly and independently (``TRIPLE_SEED``)
from the digits of one split — ``train`` (~1,437 digits, what GANs train on) or ``test`` (the ~360 held-out
digits, which the judge learns from and nothing trains on). Pictures are built on the fly from the cached
digits, so 25,600 items cost ~30 KB of indices rather than 300 MB of pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from gandeploy.data import KIND_IMAGES
from gandeploy.data.digits import DEFAULT_SIZE, load_split
from gandeploy.errors import DataError

LENGTH = 25_600  # items per epoch (400 batches of 64)
TEST_LENGTH = 2_600
TRIPLE_SEED = 2017  # fixed: the triples never change between runs or machines
N_MODES = 1000


def draw_triples(pool: int, n: int, seed: int) -> np.ndarray:
    """``n`` index triples [n, 3] into a pool of ``pool`` digits, each index uniform and independent."""
    return np.random.default_rng(seed).integers(0, pool, size=(n, 3), dtype=np.int64)


def mode_index(labels: torch.Tensor) -> torch.Tensor:
    """labels [N, 3] (R, G, B digits) → mode [N] in 0..999 (100 R + 10 G + B)."""
    return labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2]


class StackedDigits:
    """Three digits of one split per picture, one per channel: x [B, 3, S, S] in [-1, 1], y [B] = mode 0..999."""

    kind = KIND_IMAGES
    channels = 3
    class_names = None  # 1,000 modes are a benchmark's bins, not classes a conditional model should take

    def __init__(self, split: str, image_size: int, length: int, seed: int) -> None:
        self.digits, self.digit_labels = load_split(split, image_size, 1)  # [P, 1, S, S], [P]
        self.triples = torch.from_numpy(draw_triples(len(self.digit_labels), length, seed))  # [L, 3]
        self.image_size = image_size
        self.labels = mode_index(self.digit_labels[self.triples])  # [L]
        test_digits, test_labels = load_split("test", image_size, 1)
        self._test = (test_digits, test_labels,
                      torch.from_numpy(draw_triples(len(test_labels), TEST_LENGTH, TRIPLE_SEED + 1)))

    def __len__(self) -> int:
        return int(self.triples.shape[0])

    @staticmethod
    def _stack(digits: torch.Tensor, labels: torch.Tensor, triples: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        x = digits[triples.flatten()]  # [B * 3, 1, S, S]
        x = x.reshape(triples.shape[0], 3, *digits.shape[-2:])  # [B, 3, S, S]: channel c is digit triples[:, c]
        return x.contiguous(), mode_index(labels[triples])

    def get_batch(self, indices: torch.Tensor, gen: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x [B, 3, S, S] float32 in [-1, 1], mode [B] int64) for ``indices`` [B]."""
        return self._stack(self.digits, self.digit_labels, self.triples[indices])

    def test_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` held-out stacks (made of held-out digits only; at most ``TEST_LENGTH``)."""
        digits, labels, triples = self._test
        return self._stack(digits, labels, triples[:n])


def open_stacked_digits(name: str = "stacked-digits", *, image_size: int | None = None, channels: int | None = None,
                        split: str = "train", data_root: Path | None = None, augment: Any = None,
                        length: int = LENGTH, seed: int = TRIPLE_SEED) -> StackedDigits:
    """Stacked digits at ``image_size`` (default 32); ``split`` "train" stacks training digits, "test" held-out."""
    size = int(image_size or DEFAULT_SIZE)
    if channels not in (None, 3):
        raise DataError(f"stacked-digits pictures have 3 channels (one digit each): use --arch channels=3, "
                        f"got {channels}.")
    if size < 4:
        raise DataError(f"--image-size {size} is too small for stacked-digits (use 8 or more; models take 32/64).")
    if split not in ("train", "test"):
        raise DataError(f"stacked-digits split must be 'train' or 'test', got '{split}'.")
    return StackedDigits(split, size, TEST_LENGTH if split == "test" else length,
                         seed if split == "train" else seed + 1)
