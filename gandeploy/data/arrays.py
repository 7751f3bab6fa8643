"""In-memory image datasets (digits, image folders): the ``Dataset`` protocol over tensors.

Images are stored as uint8 [N, C, S, S] (folders) or float32 in [-1, 1] (digits) and served as float32
in [-1, 1]; labels as int64 [N] or ``None``.
"""

from __future__ import annotations

import torch

from gandeploy.data import KIND_IMAGES


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x.float()


class ImageArrayDataset:
    """Images + optional labels in memory; ``test_*`` is the held-out part used for grids and evaluation."""

    kind = KIND_IMAGES

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, class_names: tuple[str, ...] | None,
                 test_images: torch.Tensor | None = None, test_labels: torch.Tensor | None = None) -> None:
        self.images, self.labels, self.class_names = images, labels, class_names
        self.test_images = test_images if test_images is not None else images
        self.test_labels = test_labels if test_images is not None else labels
        self.channels, self.image_size = int(images.shape[1]), int(images.shape[-1])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def get_batch(self, indices: torch.Tensor, gen: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x [B, C, S, S] float32 in [-1, 1], y [B] int64 or None) for ``indices`` [B]."""
        x = _as_float(self.images[indices])
        return x, (self.labels[indices] if self.labels is not None else None)

    def test_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The first ``n`` held-out items (all of them if fewer)."""
        x = _as_float(self.test_images[:n])
        return x, (self.test_labels[:n] if self.test_labels is not None else None)
