"""Paired digits for pix2pix: a corrupted real digit (source) and the digit itself (target), both in [-1, 1].

Each built-in set is one corruption of scikit-learn's real digits (data/digits.py), with the digits' own
held-out split, so quality is measurable against a known true target:

==================  ============  ========================================================================
data set            corruption    source picture
==================  ============  ========================================================================
``digits-edges``    ``edges``     the digit's outline: morphological gradient of the ink, thresholded
``digits-noisy``    ``noisy``     the digit plus Gaussian noise (σ = ``NOISE_STD`` in [-1, 1] units), clipped
``digits-masked``   ``masked``    the digit with one square box (side 3/8 of the picture) set to grey 0
==================  ============  ========================================================================

``corrupt(kind, images, seed)`` is the public definition: float32 [N, 1, S, S] in [-1, 1] in, the same shape
out, deterministic in ``seed`` (NumPy PCG64 ``default_rng(seed)`` for the whole batch). The training split is
corrupted once with ``TRAIN_SEED`` and the held-out split with ``TEST_SEED``, so
``corrupt(kind, load_split("test", 32)[0], TEST_SEED)`` rebuilds exactly the held-out inputs the evaluation
uses (and ``TRAIN_SEED`` on the training split what training saw). ``box_masks(n, size, seed)`` gives the
masked boxes of the same draw.

Batches are ``(source [B, 1, S, S], target [B, 1, S, S])``; ``test_batch(n)`` gives the first ``n`` held-out
pairs, ``test_labels`` their digits and ``test_masks`` (masked only) their boxes. ``measures`` declares what can
be measured on the set (metrics/paired.py decides by it, not by the set's name).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gandeploy.data import KIND_PAIRED  # ``Dataset.kind`` of (source, target) picture pairs
from gandeploy.errors import DataError

CORRUPTIONS = ("edges", "noisy", "masked")
TRAIN_SEED, TEST_SEED = 0, 1
NOISE_STD = 0.5  # in [-1, 1] units: 0.25 of the full grey range
EDGE_THRESHOLD = 0.25  # morphological gradient of the ink (0..1) above this is an edge
MASK_FILL = 0.0  # mid-grey: neither background (-1) nor ink (+1)
MASK_FRACTION = 3 / 8  # box side / picture side (12 px at 32x32)

# What each corruption's pairs allow to measure (metrics/paired.py): the judge's label agreement and FID
# against held-out digits where the output must *be* a digit of the source's class; PSNR beside the noisy
# input's where the target is the clean picture; MAE inside the box where only the box is unknown.
MEASURES = {"edges": ("label_agreement", "fid"), "noisy": ("psnr",),
            "masked": ("label_agreement", "fid", "masked_mae")}
SET_NAMES = {"digits-edges": "edges", "digits-noisy": "noisy", "digits-masked": "masked"}


def _check(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must be float32 [N, 1, S, S], got shape {tuple(x.shape)}")
    return x


def edges(images: torch.Tensor) -> torch.Tensor:
    """Outline of the ink: ink p = (x + 1) / 2; max over a 3x3 window minus min over it (the morphological
    gradient), above ``EDGE_THRESHOLD`` → +1, else -1. No randomness."""
    p = (images + 1.0) * 0.5  # [N, 1, S, S] in [0, 1]
    dilated = F.max_pool2d(p, 3, stride=1, padding=1)  # [N, 1, S, S]
    eroded = -F.max_pool2d(-p, 3, stride=1, padding=1)
    return torch.where(dilated - eroded > EDGE_THRESHOLD, 1.0, -1.0).to(torch.float32)


def noisy(images: torch.Tensor, seed: int) -> torch.Tensor:
    """``clip(x + NOISE_STD · n, -1, 1)``, n ~ N(0, 1) drawn as ``default_rng(seed).standard_normal(shape)``."""
    n = np.random.default_rng(int(seed)).standard_normal(tuple(images.shape))  # float64 [N, 1, S, S]
    return (images + NOISE_STD * torch.from_numpy(n).float()).clamp(-1.0, 1.0)


def box_masks(n: int, size: int, seed: int) -> torch.Tensor:
    """The masked boxes: bool [n, 1, size, size], one square of side ``round(size · MASK_FRACTION)`` per picture
    at top-left ``default_rng(seed).integers(0, size - side + 1, (n, 2))`` (row, column)."""
    side = max(1, round(size * MASK_FRACTION))
    corners = np.random.default_rng(int(seed)).integers(0, size - side + 1, size=(int(n), 2))
    masks = torch.zeros(int(n), 1, size, size, dtype=torch.bool)
    for i, (r, c) in enumerate(corners.tolist()):
        masks[i, :, r:r + side, c:c + side] = True
    return masks


def masked(images: torch.Tensor, seed: int) -> torch.Tensor:
    """The picture with its ``box_masks`` box set to ``MASK_FILL`` (grey)."""
    masks = box_masks(images.shape[0], int(images.shape[-1]), seed)
    return torch.where(masks, torch.tensor(MASK_FILL), images)


def corrupt(kind: str, images: np.ndarray | torch.Tensor, seed: int) -> np.ndarray:
    """The public corruption: ``kind`` in ``CORRUPTIONS``, float32 [N, 1, S, S] in [-1, 1] → the same shape,
    deterministic in ``seed`` (``edges`` ignores it)."""
    x = _check(images)
    if kind == "edges":
        out = edges(x)
    elif kind == "noisy":
        out = noisy(x, seed)
    elif kind == "masked":
        out = masked(x, seed)
    else:
        raise ValueError(f"kind must be one of {', '.join(CORRUPTIONS)}, got '{kind}'")
    return out.numpy().astype(np.float32)


class PairedDigits:
    """In-memory (corrupted digit, digit) pairs of one split; see the module docstring."""

    kind = KIND_PAIRED
    class_names = None  # the digit labels judge outputs; they are no input of the model

    def __init__(self, corruption: str, image_size: int, split: str) -> None:
        from gandeploy.data.digits import load_split

        if corruption not in CORRUPTIONS:
            raise DataError(f"unknown corruption '{corruption}' (one of {', '.join(CORRUPTIONS)}).")
        if split not in ("train", "test"):
            raise DataError(f"split must be 'train' or 'test', got '{split}'.")
        if image_size < 8:
            raise DataError(f"--image-size {image_size} is too small for paired digits (use 8 or more).")
        self.corruption, self.image_size, self.channels, self.split = corruption, int(image_size), 1, split
        self.measures = MEASURES[corruption]
        test_x, self.test_labels = load_split("test", self.image_size, 1)  # [n, 1, S, S], [n]
        self.test_source = torch.from_numpy(corrupt(corruption, test_x, TEST_SEED))
        self.test_target = test_x
        self.test_masks = box_masks(len(test_x), self.image_size, TEST_SEED) if corruption == "masked" else None
        if split == "train":
            x, _ = load_split("train", self.image_size, 1)
            self.source, self.target = torch.from_numpy(corrupt(corruption, x, TRAIN_SEED)), x
        else:
            self.source, self.target = self.test_source, self.test_target

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def get_batch(self, indices: torch.Tensor, gen: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(source, target) at ``indices``: two float32 [B, 1, S, S] in [-1, 1] (no augmentation)."""
        idx = indices.long() % len(self)
        return self.source[idx], self.target[idx]

    def test_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` held-out pairs (all of them if fewer)."""
        return self.test_source[:n], self.test_target[:n]


def open_paired_digits(name: str, *, image_size: int | None = None, channels: int | None = None,
                       split: str = "train", data_root: str | os.PathLike[str] | None = None,
                       augment: Any = None, scale: int = 1) -> PairedDigits:
    """``digits-edges`` / ``digits-noisy`` / ``digits-masked`` (scikit-learn's digits; nothing downloaded)."""
    if int(channels or 1) != 1:
        raise DataError(f"{name} is greyscale: the model needs input_nc=output_nc=1, got channels={channels}.")
    if int(scale) != 1:
        raise DataError(f"{name} pairs pictures of one size (scale 1), not scale {scale}.")
    return PairedDigits(SET_NAMES[name], int(image_size or 32), split)
