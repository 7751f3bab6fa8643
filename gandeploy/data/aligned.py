"""Aligned pairs in the pix2pix reference layout: each picture holds A (left half) and B (right half) side by side,
in ``<root>/train/``, ``<root>/val/`` and ``<root>/test/``.

``aligned:PATH`` opens any such folder; ``facades``, ``maps``, ``edges2shoes``, ... are the pix2pix authors'
sets, fetched by name on first use (``<name>.tar.gz`` from their published URL, or ``$GANDEPLOY_PIX2PIX_URL``)
into ``<data_root>/pix2pix/<name>`` (beside, not over, CycleGAN's unpaired ``facades``/``maps``). The download is
checked against ``Content-Length`` and the gzip CRC, and must hold a ``train/`` folder; then renamed into place.

Batches are ``(source, target)`` = (A, B) for ``direction`` AtoB, (B, A) for BtoA. Training augmentation is the
reference's: both halves resized to ``load_size``, one random crop to ``image_size`` and one random flip applied
to both (from the trainer's ``torch.Generator``); held-out pictures are resized to ``image_size``.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from gandeploy.data.download import fetch_into
from gandeploy.data import KIND_PAIRED
from gandeploy.data.unpaired import _augmentation, list_images, load_image, to_tensor
from gandeploy.errors import DataError
from gandeploy.utils.logging import get_logger
from gandeploy.utils import paths

log = get_logger("data.aligned")

PIX2PIX_BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
PIX2PIX_URL_ENV = "GANDEPLOY_PIX2PIX_URL"
SUBDIR = "pix2pix"  # under --data-root
LAYOUT = "<root>/{train,val,test}/ of pictures holding A|B side by side"


class AlignedPairs:
    """Side-by-side A|B pictures of one split served as (source, target) float32 [B, C, S, S] in [-1, 1]."""

    kind = KIND_PAIRED
    class_names = None
    measures: tuple[str, ...] = ()  # no known target measure beyond the pictures themselves

    def __init__(self, root: Path, *, image_size: int, channels: int = 3, split: str = "train",
                 direction: str = "AtoB", load_size: int = 286, flip: bool = True) -> None:
        if channels not in (1, 3):
            raise DataError(f"aligned pictures give 1 (grey) or 3 (RGB) channels, not {channels}.")
        if direction not in ("AtoB", "BtoA"):
            raise DataError(f"--direction must be AtoB or BtoA, got '{direction}'.")
        self.root, self.channels, self.split = root, channels, split
        self.image_size, self.load_size = int(image_size), max(int(load_size), int(image_size))
        self.flip, self.swap = flip, direction == "BtoA"
        self.files = self._files(split)
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None

    def _files(self, split: str) -> list[Path]:
        names = ("test", "val") if split == "test" else (split,)  # held out: test/, else val/
        for name in names:
            folder = self.root / name
            if folder.is_dir() and (files := list_images(folder)):
                return files
        raise DataError(f"no pictures in '{self.root}/{'/ or '.join(names)}/'; aligned data sets use the layout "
                        f"{LAYOUT}.")

    def __len__(self) -> int:
        return len(self.files)

    def _halves(self, path: Path) -> tuple[Image.Image, Image.Image]:
        img = load_image(path, self.channels)
        w, h = img.size
        if w < 2:
            raise DataError(f"'{path}' is {w}x{h}: an aligned picture holds A and B side by side (width 2x).")
        a, b = img.crop((0, 0, w // 2, h)), img.crop((w // 2, 0, 2 * (w // 2), h))
        return (b, a) if self.swap else (a, b)

    def _augment(self, path: Path, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Resize both to load_size, crop both at one random place, flip both or neither: → two [C, S, S]."""
        load, size = self.load_size, self.image_size
        x, y = (int(v) for v in torch.randint(0, load - size + 1, (2,), generator=gen))
        flip = self.flip and float(torch.rand((), generator=gen)) < 0.5
        out = []
        for half in self._halves(path):
            half = half.resize((load, load), Image.Resampling.BICUBIC).crop((x, y, x + size, y + size))
            out.append(to_tensor(half.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else half))
        return out[0], out[1]

    def _plain(self, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        """Both halves resized to image_size (the reference's test-time transform)."""
        s = self.image_size
        a, b = (to_tensor(h.resize((s, s), Image.Resampling.BICUBIC)) for h in self._halves(path))
        return a, b

    def get_batch(self, indices: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(source, target) at ``indices`` (mod len): two float32 [B, C, S, S] in [-1, 1]."""
        pairs = [self._augment(self.files[int(i) % len(self.files)], gen) if self.split == "train"
                 else self._plain(self.files[int(i) % len(self.files)]) for i in indices.tolist()]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def test_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``n`` held-out pairs (test/, else val/), resized: two [n', C, S, S]."""
        if self._test is None or self._test[0].shape[0] < min(n, len(self._held_out())):
            pairs = [self._plain(p) for p in self._held_out()[:n]]
            self._test = (torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]))
        return self._test[0][:n], self._test[1][:n]

    def _held_out(self) -> list[Path]:
        try:
            return self._files("test")
        except DataError:
            return self.files


def _open(root: Path, image_size: int | None, channels: int | None, split: str,
          augment: Mapping[str, Any] | None) -> AlignedPairs:
    size = int(image_size or 256)
    load_size, flip = _augmentation(augment, size)
    direction = str((augment or {}).get("direction", "AtoB"))
    return AlignedPairs(root, image_size=size, channels=int(channels or 3), split=split, direction=direction,
                        load_size=load_size, flip=flip)


def open_aligned_folder(path: str | os.PathLike[str], *, image_size: int | None = 256, channels: int | None = 3,
                        split: str = "train", data_root: str | os.PathLike[str] | None = None,
                        augment: Mapping[str, Any] | None = None, scale: int = 1) -> AlignedPairs:
    """``aligned:PATH`` (``data_root`` is not used)."""
    if int(scale) != 1:
        raise DataError(f"aligned A|B pictures pair two pictures of one size (scale 1), not scale {scale}.")
    return _open(Path(path).expanduser(), image_size, channels, split, augment)


def open_pix2pix_set(name: str, *, image_size: int | None = 256, channels: int | None = 3, split: str = "train",
                     data_root: str | os.PathLike[str] | None = None, augment: Mapping[str, Any] | None = None,
                     scale: int = 1) -> AlignedPairs:
    """One of the pix2pix authors' sets at ``<data_root>/pix2pix/<name>``; downloaded there first when missing."""
    if int(scale) != 1:
        raise DataError(f"{name} pairs two pictures of one size (scale 1), not scale {scale}.")
    root = Path(data_root).expanduser() if data_root is not None else paths.data_dir()
    folder = root / SUBDIR / name
    if not folder.exists():
        log.info("%s not found under %s: downloading it (--data-root changes the location)", name, root / SUBDIR)
        folder = download_pix2pix_set(name, root)
    return _open(folder, image_size, channels, split, augment)


def pix2pix_url(name: str, base_url: str | None = None) -> str:
    """``<base>/<name>.tar.gz``; the base is ``base_url``, else $GANDEPLOY_PIX2PIX_URL, else the authors' site."""
    base = base_url or os.environ.get(PIX2PIX_URL_ENV) or PIX2PIX_BASE_URL
    return f"{base.rstrip('/')}/{name}.tar.gz"


def download_pix2pix_set(name: str, data_root: str | os.PathLike[str] | None = None, *,
                         base_url: str | None = None, timeout: float = 60.0) -> Path:
    """Download and extract ``<name>.tar.gz`` into ``<data_root>/pix2pix/<name>`` and return that folder.

    Raises ``DataError`` (and leaves nothing behind) on a network or HTTP error, a download shorter than its
    ``Content-Length``, a corrupt archive (gzip CRC / length, tar structure), unsafe member paths, or an archive
    without a ``train/`` folder.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise DataError(f"invalid data set name '{name}'.")
    root = (Path(data_root) if data_root is not None else paths.data_dir()) / SUBDIR
    target = root / name
    if target.exists():
        return target
    return fetch_into(pix2pix_url(name, base_url), root, name, ".tar.gz.part", _unpack_tar, timeout)


def _unpack_tar(archive: Path, extract_dir: Path, name: str, url: str) -> Path:
    _extract(archive, extract_dir, url)
    found = next((c for c in (extract_dir / name, extract_dir) if (c / "train").is_dir()), None)
    if found is None:
        raise DataError(f"{url} does not hold a pix2pix data set: no {name}/train/ folder inside.")
    return found


def _extract(archive: Path, dest: Path, url: str) -> None:
    """Extract a .tar.gz whole: gzip's CRC and length are checked at the end of the stream; members must be
    plain files or folders inside ``dest`` (the 'data' filter)."""
    try:
        with tarfile.open(archive, "r:gz") as tf:
            tf.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:  # zlib/gzip errors are OSError subclasses
        raise DataError(f"{url} is not a valid .tar.gz archive ({type(exc).__name__}: {exc}); run the command "
                        "again.") from None
