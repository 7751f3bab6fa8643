"""``photos``: the colour photographs scikit-image and scikit-learn ship, as a paired super-resolution data set.

No download: the pictures come inside the two wheels. They are split **by picture**, so no held-out pixel is
ever seen in training (the stereo pair's two views stay on the same side):

    train     astronaut, rocket, hubble_deep_field, retina, immunohistochemistry, motorcycle_left,
              motorcycle_right (scikit-image), china (scikit-learn)
    held out  chelsea, coffee (scikit-image), flower (scikit-learn)

A training item is a random ``image_size`` crop of a training picture (every picture equally often), with
random flips and transposes (the 8 symmetries of the square) unless ``augment["flip"]`` is false. Its
low-resolution partner is made on the fly by ``make_lr``: antialiased bicubic downscaling by ``scale``, rounded
to uint8 levels as a real picture would be. Batches are ``(source [B, C, S/scale, S/scale], target [B, C, S, S])``
float32 in [-1, 1]; ``test_batch(n)`` gives fixed crops of the held-out pictures and ``held_out_pairs`` the
whole held-out pictures (for PSNR).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gandeploy.data import KIND_IMAGES
from gandeploy.errors import DataError

TRAIN_PHOTOS = ("astronaut", "rocket", "hubble_deep_field", "retina", "immunohistochemistry", "motorcycle_left",
                "motorcycle_right", "china")
HELD_OUT_PHOTOS = ("chelsea", "coffee", "flower")
SKLEARN_PHOTOS = {"china": "china.jpg", "flower": "flower.jpg"}
STEREO = {"motorcycle_left": 0, "motorcycle_right": 1}  # views of skimage.data.stereo_motorcycle()
CROPS_PER_PICTURE = 128  # items per training picture in one epoch (1,024 crops of the 8 pictures)
DEFAULT_SIZE, DEFAULT_SCALE = 128, 4
TEST_SEED = 1234  # positions of the fixed held-out crops
Y_WEIGHTS = (0.299, 0.587, 0.114)  # BT.601 luma, for channels=1
BICUBIC, REALESRGAN = "bicubic", "realesrgan"
DEGRADATIONS = (BICUBIC, REALESRGAN)  # how low-resolution inputs are made (data option ``degradation``)


@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """One shipped photograph as uint8 [H, W, 3] (read once per process)."""
    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        return np.ascontiguousarray(load_sample_image(SKLEARN_PHOTOS[name]))
    import skimage.data

    if name in STEREO:
        return np.ascontiguousarray(skimage.data.stereo_motorcycle()[STEREO[name]])
    return np.ascontiguousarray(getattr(skimage.data, name)())


def make_lr(hr: torch.Tensor, scale: int, gen: torch.Generator | None = None,
            degradation: str = BICUBIC) -> torch.Tensor:
    """The low-resolution partner of ``hr`` [B, C, H, W] in [0, 1] (H, W multiples of ``scale``), [B, C, H/scale,
    W/scale] in uint8 levels: antialiased bicubic downscaling, or with ``degradation="realesrgan"`` Real-ESRGAN's
    second-order blur / noise / JPEG degradation (``gandeploy.data.degradations``).

    ``gen`` feeds the degradation's random draws (bicubic draws none); None draws from a fixed seed.
    """
    if degradation not in DEGRADATIONS:
        raise DataError(f"degradation must be one of {', '.join(DEGRADATIONS)}, got '{degradation}'.")
    if degradation == REALESRGAN:
        from gandeploy.data.degradations import realesrgan_degrade

        return realesrgan_degrade(hr, scale, gen if gen is not None else torch.Generator().manual_seed(TEST_SEED))
    h, w = hr.shape[-2] // scale, hr.shape[-1] // scale
    lr = F.interpolate(hr, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
    return torch.round(lr.clamp(0.0, 1.0) * 255.0) / 255.0


def to_channels(pictures: list[torch.Tensor], channels: int) -> list[torch.Tensor]:
    """uint8 [3, H, W] pictures → ``channels`` 3 (unchanged) or 1 (BT.601 luma)."""
    if channels == 3:
        return pictures
    weights = torch.tensor(Y_WEIGHTS).view(3, 1, 1)
    return [torch.round((p.float() * weights).sum(0, keepdim=True)).to(torch.uint8) for p in pictures]


def dihedral(x: torch.Tensor, code: int) -> torch.Tensor:
    """One of the 8 symmetries of the square on [..., S, S]: bit 0 flips W, bit 1 flips H, bit 2 transposes."""
    if code & 1:
        x = x.flip(-1)
    if code & 2:
        x = x.flip(-2)
    if code & 4:
        x = x.transpose(-1, -2)
    return x


class PairedCrops:
    """Random high-resolution crops of a few pictures and their ``make_lr`` partners (see the module doc).

    ``pictures`` / ``held_out`` are uint8 [C, H, W] tensors; other paired SR data sets (``folder:PATH``) reuse
    this class with pictures of their own.
    """

    kind = KIND_IMAGES
    class_names = None

    def __init__(self, pictures: Sequence[torch.Tensor], held_out: Sequence[torch.Tensor], *, image_size: int,
                 scale: int, flip: bool = True, crops_per_picture: int = CROPS_PER_PICTURE, source: str = "photos",
                 degradation: str = BICUBIC, held_out_names: Sequence[str] = (),
                 check_sizes: bool = True) -> None:
        if degradation not in DEGRADATIONS:
            raise DataError(f"degradation must be one of {', '.join(DEGRADATIONS)}, got '{degradation}'.")
        if image_size % scale:
            raise DataError(f"image_size {image_size} must be a multiple of the model's scale {scale} (the "
                            "low-resolution crop is image_size / scale); pass --image-size.")
        for where, group in (("training", pictures), ("held-out", held_out)):
            if not group:
                raise DataError(f"'{source}' has no {where} pictures.")
            smallest = min(min(p.shape[-2:]) for p in group) if check_sizes else image_size
            if smallest < image_size:
                raise DataError(f"image_size {image_size} is larger than the smallest {where} picture of "
                                f"'{source}' ({smallest} px); pass a smaller --image-size.")
        self.pictures, self.held_out = pictures, held_out
        self.image_size, self.scale, self.flip = int(image_size), int(scale), bool(flip)
        self.channels = int(pictures[0].shape[0])
        self.crops_per_picture = int(crops_per_picture)
        self.degradation = degradation
        self.held_out_names = tuple(held_out_names)  # for per-picture evaluation rows
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.pictures) * self.crops_per_picture

    def _crop(self, picture: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A random ``image_size`` square of ``picture`` [C, H, W] uint8 → [C, S, S] uint8."""
        s = self.image_size
        h, w = picture.shape[-2:]
        top = int(torch.randint(0, h - s + 1, (), generator=gen))
        left = int(torch.randint(0, w - s + 1, (), generator=gen))
        return picture[:, top:top + s, left:left + s]

    def pair(self, hr_u8: torch.Tensor, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 [B, C, S, S] → (source [B, C, S/scale, S/scale], target [B, C, S, S]) float32 in [-1, 1]."""
        hr = hr_u8.float() / 255.0  # [B, C, S, S] in [0, 1]
        lr = make_lr(hr, self.scale, gen, self.degradation)
        return lr * 2.0 - 1.0, hr * 2.0 - 1.0

    def get_batch(self, indices: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        crops = []
        for i in indices.tolist():
            crop = self._crop(self.pictures[i % len(self.pictures)], gen)  # [C, S, S]
            if self.flip:
                crop = dihedral(crop, int(torch.randint(0, 8, (), generator=gen)))
            crops.append(crop)
        return self.pair(torch.stack(crops), gen)  # [B, C, s, s], [B, C, S, S]

    def test_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` fixed crops of the held-out pictures (cycling through them), the same on every call."""
        if self._test is None or self._test[0].shape[0] < n:
            gen = torch.Generator().manual_seed(TEST_SEED)
            crops = [self._crop(self.held_out[i % len(self.held_out)], gen) for i in range(n)]
            self._test = self.pair(torch.stack(crops), None)
        return self._test[0][:n], self._test[1][:n]


def held_out_pairs(scale: int, channels: int = 3, names: tuple[str, ...] = HELD_OUT_PHOTOS,
                   ) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """The whole held-out photographs: (name, source [1, C, h, w], target [1, C, h·scale, w·scale]) float32 in
    [0, 1], each cropped at the bottom / right to a multiple of ``scale``."""
    out = []
    for name, picture in zip(names, to_channels([_chw(load_photo(n)) for n in names], channels)):
        h, w = (picture.shape[-2] // scale) * scale, (picture.shape[-1] // scale) * scale
        hr = picture[None, :, :h, :w].float() / 255.0  # [1, C, H, W]
        out.append((name, make_lr(hr, scale), hr))
    return out


def _chw(picture: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(picture)).permute(2, 0, 1).contiguous()  # [H, W, 3] → [3, H, W]


def open_photos(name: str, *, image_size: int | None = None, channels: int | None = None, split: str = "train",
                data_root: Path | None = None, augment: Mapping[str, Any] | None = None,
                scale: int = DEFAULT_SCALE) -> PairedCrops:
    """The ``photos`` data set (``split`` "train": crops of the training pictures; "test": of the held-out ones)."""
    channels = int(channels or 3)
    if channels not in (1, 3):
        raise DataError(f"'photos' holds colour pictures: channels must be 3 (or 1 for grey), got {channels}.")
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got '{split}'.")
    held_out = to_channels([_chw(load_photo(n)) for n in HELD_OUT_PHOTOS], channels)
    train = held_out if split == "test" else to_channels([_chw(load_photo(n)) for n in TRAIN_PHOTOS], channels)
    options = dict(augment or {})
    flip = bool(options.get("flip", True)) and split == "train"
    return PairedCrops(train, held_out, image_size=int(image_size or DEFAULT_SIZE), scale=int(scale), flip=flip,
                       source=name, degradation=str(options.get("degradation", BICUBIC)),
                       held_out_names=HELD_OUT_PHOTOS)
