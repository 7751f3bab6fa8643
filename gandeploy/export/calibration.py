"""Real inputs for the measurements ``export`` makes (FP16 safety, receptive field), chosen by declared IO.

- A generator with a picture input gets real pictures: the held-out photographs of the ``photos`` data set
  (``SHIPPED_PHOTOS``: chelsea and coffee from scikit-image, flower from scikit-learn; no download) or the
  user's own with ``--calibration DIR``. Each
  is converted to the input's channels, centre-cropped to at most ``CALIBRATION_SIDE`` on the declared size
  rule, and mapped into the declared value range (``from_uint8``).
- A sampling generator gets its usual deterministic inputs (``example_inputs``, seeds 0 and 1, batch 8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gandeploy.data.photos import HELD_OUT_PHOTOS, load_photo
from gandeploy.errors import UserInputError
from gandeploy.models.io import GeneratorIO, example_inputs, from_uint8

SHIPPED_PHOTOS = HELD_OUT_PHOTOS  # the photos data set's held-out pictures
CALIBRATION_SIDE = 128  # pictures are centre-cropped to this (bounds the FP32 scan's memory and time)
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
SAMPLING_BATCH = 8


@dataclass(frozen=True)
class Calibration:
    """Feeds (one dict per run) and a line saying what they are, for the manifest."""

    feeds: list[dict[str, np.ndarray]]
    measured_on: str


def shipped_photo(name: str) -> np.ndarray:
    """One of the photographs scikit-image / scikit-learn ship, uint8 [H, W, 3] (``photos.load_photo``)."""
    photo = np.asarray(load_photo(name))
    return photo if photo.ndim == 3 else np.repeat(photo[..., None], 3, axis=-1)


def load_pictures(directory: Path, flag: str = "--calibration") -> list[tuple[str, np.ndarray]]:
    """Every picture file of ``directory`` as (name, uint8 [H, W, 3 or 4]); clear errors name the flag/file."""
    from PIL import Image, UnidentifiedImageError

    if not directory.is_dir():
        raise UserInputError(f"{flag} '{directory}' is not a directory of pictures.")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in PICTURE_SUFFIXES)
    if not files:
        raise UserInputError(f"{flag} '{directory}' holds no pictures ({', '.join(PICTURE_SUFFIXES)}).")
    out = []
    for path in files:
        try:
            with Image.open(path) as img:
                img.seek(0)
                out.append((path.name, np.asarray(img.convert("RGBA" if "A" in img.getbands() else "RGB"))))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise UserInputError(f"{flag}: '{path}' is not a readable picture ({exc}).") from None
    return out


def to_channels(picture: np.ndarray, channels: int) -> np.ndarray:
    """uint8 [H, W, 3|4] → uint8 [H, W, channels]: grey by BT.601 luma, RGB, or RGBA (opaque alpha added)."""
    rgb = picture[..., :3].astype(np.float32)
    if channels == 1:
        return np.rint(rgb @ np.array([0.299, 0.587, 0.114], np.float32))[..., None].astype(np.uint8)
    if channels == 3:
        return picture[..., :3]
    if channels == 4:
        return picture if picture.shape[-1] == 4 else np.concatenate([picture, np.full_like(picture[..., :1], 255)], -1)
    raise UserInputError(f"pictures cannot feed a {channels}-channel image input (1, 3 or 4 channels only).")


def centre_crop(picture: np.ndarray, side: int, multiple: int) -> np.ndarray | None:
    """The centre crop of at most ``side`` x ``side``, sides rounded down to ``multiple`` (None: too small)."""
    h = min(side, picture.shape[0]) // multiple * multiple
    w = min(side, picture.shape[1]) // multiple * multiple
    if h < multiple or w < multiple:
        return None
    top, left = (picture.shape[0] - h) // 2, (picture.shape[1] - w) // 2
    return picture[top:top + h, left:left + w]


def calibration_inputs(io_spec: GeneratorIO, directory: Path | None = None, *, side: int = CALIBRATION_SIDE,
                       names: Sequence[str] = SHIPPED_PHOTOS) -> Calibration:
    """The calibration feeds for ``io_spec`` (module docstring)."""
    image = io_spec.image_input
    if image is None:
        if directory is not None:
            raise UserInputError("--calibration applies only to models with a picture input; this one samples "
                                 "from seeds (its FP16 check uses its usual inputs).")
        feeds = [example_inputs(io_spec, SAMPLING_BATCH, seed=s) for s in (0, 1)]
        return Calibration(feeds, f"example inputs, seeds 0 and 1, batch {SAMPLING_BATCH}")
    pictures = load_pictures(directory) if directory is not None else [(n, shipped_photo(n)) for n in names]
    feeds, used = [], []
    for name, picture in pictures:
        crop = centre_crop(to_channels(picture, int(image.shape[1])), side, io_spec.size_multiple)
        if crop is None:
            continue
        feed = example_inputs(io_spec, 1, image_hw=crop.shape[:2])  # any other inputs: their usual values
        feed[image.name] = from_uint8(crop[None], image.value_range)  # [1, C, h, w]
        feeds.append(feed)
        used.append(f"{name} {crop.shape[0]}x{crop.shape[1]}")
    if not feeds:
        raise UserInputError(f"--calibration '{directory}': every picture is smaller than the size rule "
                             f"({io_spec.size_multiple} pixels).")
    source = f"pictures in {directory}" if directory is not None else "held-out photos"
    return Calibration(feeds, f"{source}, centre crops: {', '.join(used)}")


def probe_picture(io_spec: GeneratorIO, directory: Path | None = None) -> tuple[str, np.ndarray]:
    """The picture the receptive field is measured on: the first ``--calibration`` picture, else the first
    shipped photo; (name, uint8 [H, W, C] in the input's channels)."""
    image = io_spec.image_input
    if image is None:
        raise ValueError("probe_picture needs a generator with a picture input")
    name, picture = (load_pictures(directory)[0] if directory is not None
                     else (f"held-out photo {SHIPPED_PHOTOS[0]}", shipped_photo(SHIPPED_PHOTOS[0])))
    return name, to_channels(picture, int(image.shape[1]))
