"""``folder:PATH``: any folder of images for the "gan" family.

* images directly in PATH → unlabelled data (DCGAN, MLP);
* one sub-folder per class (PATH/cat/*.jpg, PATH/dog/*.png, ...) → labels = sorted sub-folder names (CGAN).

Every image is centre-cropped to a square, resized (bilinear) to ``image_size`` and kept in memory as uint8.
``channels`` 1 or 3; ``None`` picks 1 when every image is greyscale, else 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from gandeploy.data.arrays import ImageArrayDataset
from gandeploy.errors import DataError
from gandeploy.utils.logging import get_logger

log = get_logger("data.folder")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
DEFAULT_SIZE = 64


def _images_in(directory: Path, recursive: bool) -> list[Path]:
    pattern = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def scan_folder(root: Path) -> tuple[list[Path], list[int] | None, tuple[str, ...] | None]:
    """(files, labels or None, class names or None); class sub-folders win over loose top-level files."""
    if not root.is_dir():
        raise DataError(f"DATASET folder '{root}' does not exist.")
    classes = [(d.name, _images_in(d, recursive=True)) for d in sorted(root.iterdir())
               if d.is_dir() and not d.name.startswith(".")]
    classes = [(name, files) for name, files in classes if files]
    loose = _images_in(root, recursive=False)
    if classes:
        if loose:
            log.warning("%s: %d images beside the class sub-folders are ignored", root, len(loose))
        files = [f for _, fs in classes for f in fs]
        labels = [i for i, (_, fs) in enumerate(classes) for _ in fs]
        return files, labels, tuple(name for name, _ in classes)
    if not loose:
        raise DataError(f"DATASET folder '{root}' holds no images ({', '.join(IMAGE_SUFFIXES)}): put images in "
                        "it, or in one sub-folder per class.")
    return loose, None, None


def load_image(path: Path, size: int, channels: int) -> np.ndarray:
    """One file → uint8 [channels, size, size]: centre square crop, bilinear resize."""
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            w, h = img.size
            s = min(w, h)
            img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
            img = img.resize((size, size), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read image '{path}' ({type(exc).__name__}: {str(exc)[:120]}); remove or "
                        "replace it.") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _all_grey(files: list[Path]) -> bool:
    for f in files:
        try:
            with Image.open(f) as img:
                if img.mode not in GREY_MODES:
                    return False
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"cannot read image '{f}' ({type(exc).__name__}); remove or replace it.") from None
    return True


def open_image_folder(name: str, *, image_size: int | None = None, channels: int | None = None,
                      split: str = "train", data_root: Path | None = None, augment: Any = None) -> ImageArrayDataset:
    """Load every image under folder ``name`` (see the module docstring); all of it trains (no held-out part)."""
    root = Path(name).expanduser()
    files, labels, class_names = scan_folder(root)
    size = int(image_size or DEFAULT_SIZE)
    nc = int(channels) if channels else (1 if _all_grey(files) else 3)
    if nc not in (1, 3):
        raise DataError(f"folder images load with 1 or 3 channels (--arch channels=), got {nc}.")
    pix = np.empty((len(files), nc, size, size), dtype=np.uint8)  # [N, C, S, S]
    for i, f in enumerate(tqdm(files, desc=f"loading {root.name}", unit="img", disable=len(files) < 500)):
        pix[i] = load_image(f, size, nc)
    images = torch.from_numpy(pix)
    y = torch.tensor(labels, dtype=torch.int64) if labels is not None else None
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(0))  # fixed grid/eval order
    log.info("%s: %d images%s at %dx%d, %d channel(s)", root, len(files),
             f" in {len(class_names)} classes" if class_names else "", size, size, nc)
    return ImageArrayDataset(images, y, class_names, images[order], y[order] if y is not None else None)
