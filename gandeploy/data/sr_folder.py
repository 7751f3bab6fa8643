"""``folder:PATH`` for the paired super-resolution families: any folder of pictures, high-resolution crops, the
low-resolution partners made on the fly (bicubic, or Real-ESRGAN's degradation with ``degradation="realesrgan"``).

Held-out pictures, split **by picture**:

* ``PATH/train/`` beside ``PATH/test/`` (or ``val/``, ``valid/``): those folders (DIV2K-style layouts);
* otherwise every 10th picture in name order (the last one when there are fewer than 10) is held out.

Pictures load as uint8 RGB (or greyscale when ``channels`` is 1, or when every picture is grey). A folder whose
pictures would take more than ``EAGER_BYTES`` decoded is read lazily, picture by picture, with a small cache;
for fast training on large pictures (DIV2K's 2K photos) cut them into sub-images first, as BasicSR's
``extract_subimages.py`` does.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gandeploy.data.folder import GREY_MODES, IMAGE_SUFFIXES
from gandeploy.errors import DataError
from gandeploy.utils.logging import get_logger

log = get_logger("data.sr_folder")

HELD_OUT_DIRS = ("test", "val", "valid")
HOLD_OUT_EVERY = 10
EAGER_BYTES = 2 << 30  # decoded size above which pictures are read on demand
CACHE_PICTURES = 64


def list_pictures(folder: Path) -> list[Path]:
    """Picture files under ``folder`` (recursively, sorted, hidden files skipped)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def split_pictures(root: Path) -> tuple[list[Path], list[Path], str]:
    """(training files, held-out files, how they were split) for folder ``root`` (module docstring)."""
    held_dir = next((root / d for d in HELD_OUT_DIRS if (root / d).is_dir()), None)
    if (root / "train").is_dir() and held_dir is not None:
        train, held = list_pictures(root / "train"), list_pictures(held_dir)
        how = f"train/ and {held_dir.name}/"
    else:
        files = list_pictures(root)
        if len(files) < 2:
            raise DataError(f"DATASET folder '{root}' holds {len(files)} picture(s) ({', '.join(IMAGE_SUFFIXES)}); "
                            "super-resolution needs at least 2 (one is held out for evaluation).")
        every = HOLD_OUT_EVERY if len(files) >= HOLD_OUT_EVERY else len(files)
        held = [f for i, f in enumerate(files) if i % every == every - 1]
        train = [f for f in files if f not in set(held)]
        how = f"every {every}th picture held out"
    for where, group in (("training", train), ("held-out", held)):
        if not group:
            raise DataError(f"DATASET folder '{root}' has no {where} pictures ({how}).")
    return train, held, how


def read_picture(path: Path, channels: int) -> torch.Tensor:
    """One file → uint8 [channels, H, W]; a broken file is a ``DataError`` naming it."""
    try:
        with Image.open(path) as img:
            arr = np.array(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)  # a writable copy
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read picture '{path}' ({type(exc).__name__}: {str(exc)[:120]}); remove or replace "
                        "it.") from None
    return torch.from_numpy(np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)))


def picture_size(path: Path) -> tuple[int, int, bool]:
    """(height, width, is grey) from the file's header, without decoding it."""
    try:
        with Image.open(path) as img:
            return img.height, img.width, img.mode in GREY_MODES
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"cannot read picture '{path}' ({type(exc).__name__}); remove or replace it.") from None


class LazyPictures(Sequence):
    """Pictures read from disk when indexed (a ``CACHE_PICTURES`` LRU cache), for folders too large to hold."""

    def __init__(self, files: list[Path], channels: int) -> None:
        self.files, self.channels = files, channels
        self._read = functools.lru_cache(maxsize=CACHE_PICTURES)(self._load)

    def _load(self, i: int) -> torch.Tensor:
        return read_picture(self.files[i], self.channels)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:  # type: ignore[override]
        return self._read(int(i) % len(self.files))


def load_pictures(files: list[Path], channels: int, sizes: list[tuple[int, int, bool]]) -> Sequence[torch.Tensor]:
    """The pictures in memory, or a ``LazyPictures`` when they would take more than ``EAGER_BYTES``."""
    total = sum(h * w * channels for h, w, _ in sizes)
    if total > EAGER_BYTES:
        log.warning("%d pictures take %.1f GiB decoded: reading them on demand (cut them into sub-images for fast "
                    "training)", len(files), total / 2**30)
        return LazyPictures(files, channels)
    return [read_picture(f, channels) for f in files]


def open_sr_folder(name: str, *, image_size: int | None = None, channels: int | None = None, split: str = "train",
                   data_root: Path | None = None, augment: Mapping[str, Any] | None = None, scale: int = 4) -> Any:
    """``folder:PATH`` for paired super-resolution (module docstring); ``augment``: ``flip`` (default on) and
    ``degradation`` ("bicubic" | "realesrgan")."""
    from gandeploy.data.photos import DEFAULT_SIZE, PairedCrops

    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got '{split}'.")
    root = Path(name).expanduser()
    train, held, how = split_pictures(root)
    sizes = {f: picture_size(f) for f in train + held}
    nc = int(channels) if channels else (1 if all(grey for _, _, grey in sizes.values()) else 3)
    if nc not in (1, 3):
        raise DataError(f"folder pictures load with 1 or 3 channels (--arch num_in_ch), got {nc}.")
    size = int(image_size or DEFAULT_SIZE)
    for where, group in (("training", train), ("held-out", held)):
        small = [f.name for f in group if min(sizes[f][:2]) < size]
        if small:
            raise DataError(f"DATASET folder '{root}': {len(small)} {where} picture(s) are smaller than the "
                            f"{size}-px crop ({', '.join(small[:3])}); pass a smaller --image-size or remove them.")
    held_pics = load_pictures(held, nc, [sizes[f] for f in held])
    train_pics = held_pics if split == "test" else load_pictures(train, nc, [sizes[f] for f in train])
    options = dict(augment or {})
    log.info("%s: %d training and %d held-out pictures (%s), %d channel(s), x%d", root, len(train), len(held), how,
             nc, scale)
    return PairedCrops(train_pics, held_pics, image_size=size, scale=int(scale),
                       flip=bool(options.get("flip", True)) and split == "train",
                       degradation=str(options.get("degradation", "bicubic")), source=f"folder:{root}",
                       held_out_names=tuple(f.name for f in held), check_sizes=False)  # sizes checked above
