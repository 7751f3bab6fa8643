"""Unpaired image domains for CycleGAN: ``<root>/<name>/{trainA, trainB, testA, testB}`` of image files.

Images load lazily with PIL. Training augmentation is the paper's — resize to ``load_size`` (286), random crop
to ``image_size`` (256), random horizontal flip — and the unpaired B partner of each A image is drawn at
random; all of it from the ``torch.Generator`` the trainer passes, so a resumed run sees the same batches.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gandeploy.data.download import (
    DOMAIN_DIRS,
    download_cyclegan_set,
)
from gandeploy.errors import DataError
from gandeploy.utils import paths
from gandeploy.utils.logging import get_logger

log = get_logger("data.unpaired")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp"})
SPLITS = ("train", "test")
LAYOUT = "<root>/{trainA,trainB,testA,testB}"
DEFAULT_LOAD_SIZE, PAPER_CROP = 286, 256  # the paper's resize before random 256x256 crops


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted so the order is the same on every machine)."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def load_image(path: Path, channels: int) -> Image.Image:
    """Open one image as RGB (3 channels) or greyscale (1); a broken file is a ``DataError`` naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB" if channels == 3 else "L")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read image '{path}' ({exc}); remove or replace the file.") from None


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image → float32 [C, H, W] in [-1, 1] (x / 127.5 - 1)."""
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]  # [H, W] → [H, W, 1]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()) / 127.5 - 1.0  # [H, W, C] → [C, H, W]


class UnpairedImages:
    """Two image folders (domains A and B) served as unpaired batches ``(a, b)``, each [B, C, S, S] in [-1, 1]."""

    class_names = None

    def __init__(self, root: Path, *, image_size: int, channels: int = 3, split: str = "train",
                 load_size: int = 286, flip: bool = True) -> None:
        if split not in SPLITS:
            raise DataError(f"split must be one of {', '.join(SPLITS)}, got '{split}'.")
        if channels not in (1, 3):
            raise DataError(f"image folders give 1 (grey) or 3 (RGB) channels, not {channels}; "
                            "set the model's input_nc/output_nc to 1 or 3.")
        self.root = root
        self.image_size = int(image_size)
        self.channels = channels
        self.split = split
        self.load_size = max(int(load_size), self.image_size)
        self.flip = flip
        self.files_a = self._domain(f"{split}A")
        self.files_b = self._domain(f"{split}B")
        if self.load_size > 2 * self.image_size:
            log.warning("load_size %d is more than twice image_size %d: random crops will be small zooms; "
                        "set load_size to about 1.12 x image_size", self.load_size, self.image_size)
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None

    def _domain(self, sub: str) -> list[Path]:
        folder = self.root / sub
        if not folder.is_dir():
            raise DataError(f"'{self.root}' has no {sub}/ folder; unpaired data sets use the layout {LAYOUT}.")
        files = list_images(folder)
        if not files:
            raise DataError(f"no images in '{folder}' (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}).")
        return files

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def _augment(self, path: Path, gen: torch.Generator) -> torch.Tensor:
        """Resize to load_size, random crop to image_size, random flip: → [C, S, S] in [-1, 1]."""
        img = load_image(path, self.channels)
        load, size = self.load_size, self.image_size
        img = img.resize((load, load), Image.Resampling.BICUBIC)
        x, y = (int(v) for v in torch.randint(0, load - size + 1, (2,), generator=gen))
        img = img.crop((x, y, x + size, y + size))
        if self.flip and float(torch.rand((), generator=gen)) < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_tensor(img)

    def _plain(self, path: Path) -> torch.Tensor:
        """Deterministic resize to image_size (the reference's test-time transform): → [C, S, S]."""
        img = load_image(path, self.channels).resize((self.image_size, self.image_size), Image.Resampling.BICUBIC)
        return to_tensor(img)

    def get_batch(self, indices: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A images at ``indices`` (mod len A) with random B partners: two float32 [B, C, S, S] in [-1, 1]."""
        a_list, b_list = [], []
        for i in indices.tolist():
            path_a = self.files_a[int(i) % len(self.files_a)]
            path_b = self.files_b[int(torch.randint(0, len(self.files_b), (), generator=gen))]
            if self.split == "train":
                a_list.append(self._augment(path_a, gen))
                b_list.append(self._augment(path_b, gen))
            else:
                a_list.append(self._plain(path_a))
                b_list.append(self._plain(path_b))
        return torch.stack(a_list), torch.stack(b_list)

    def test_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` images of testA and testB (train folders if there are none), resized: [n', C, S, S]."""
        if self._test is None or self._test[0].shape[0] < n:
            files_a, files_b = self.files_a, self.files_b
            if (self.root / "testA").is_dir() and (self.root / "testB").is_dir():
                files_a = list_images(self.root / "testA") or files_a
                files_b = list_images(self.root / "testB") or files_b
            k = min(n, len(files_a), len(files_b))
            self._test = (torch.stack([self._plain(p) for p in files_a[:k]]),
                          torch.stack([self._plain(p) for p in files_b[:k]]))
        return self._test[0][:n], self._test[1][:n]


def _augmentation(augment: Mapping[str, Any] | None, image_size: int) -> tuple[int, bool]:
    """(load_size, flip) from ``augment`` (the task's data options). The default load_size (286, the paper's for
    256 crops) scales with other crop sizes."""
    augment = augment or {}
    load_size = int(augment.get("load_size", DEFAULT_LOAD_SIZE))
    if load_size == DEFAULT_LOAD_SIZE and image_size != PAPER_CROP:
        load_size = round(image_size * DEFAULT_LOAD_SIZE / PAPER_CROP)
        log.info("resize to %d before random %d crops (the paper's 286/256 ratio)", load_size, image_size)
    return load_size, bool(augment.get("flip", True))


def open_unpaired_folder(path: str | os.PathLike[str], *, image_size: int = 256, channels: int | None = 3,
                         split: str = "train", data_root: str | os.PathLike[str] | None = None,
                         augment: Mapping[str, Any] | None = None) -> UnpairedImages:
    """``folder:PATH``: any folder with the CycleGAN layout (``data_root`` is not used)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"DATASET folder '{root}' does not exist.")
    load_size, flip = _augmentation(augment, image_size)
    return UnpairedImages(root, image_size=image_size, channels=channels or 3, split=split, load_size=load_size,
                          flip=flip)


def open_cyclegan_set(name: str, *, image_size: int = 256, channels: int | None = 3, split: str = "train",
                      data_root: str | os.PathLike[str] | None = None,
                      augment: Mapping[str, Any] | None = None) -> UnpairedImages:
    """One of the CycleGAN authors' sets at ``<data_root>/<name>``; downloaded there first when missing."""
    root = Path(data_root).expanduser() if data_root is not None else paths.data_dir()
    folder = root / name
    if not folder.exists():
        log.info("%s not found under %s: downloading it (--data-root changes the location)", name, root)
        folder = download_cyclegan_set(name, root)
    elif not any((folder / d).is_dir() for d in DOMAIN_DIRS):
        raise DataError(f"'{folder}' exists but holds no trainA/trainB/testA/testB folders; fix or remove it "
                        f"(or pass another --data-root).")
    load_size, flip = _augmentation(augment, image_size)
    return UnpairedImages(folder, image_size=image_size, channels=channels or 3, split=split, load_size=load_size,
                          flip=flip)
