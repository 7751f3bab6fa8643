"""Pictures the client commands write: a PNG grid of samples, a scatter plot of 2D points, PNG files."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

from gandeploy.errors import UserInputError
from gandeploy.utils.io import atomic_write_bytes
from gandeploy.wire import encode_png


def image_grid(images: np.ndarray, cols: int | None = None, pad: int = 2, fill: int = 255) -> np.ndarray:
    """uint8 [N, H, W, C] → one uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, C] picture, row by row."""
    n, h, w, c = images.shape
    cols = max(1, min(cols or math.ceil(math.sqrt(n)), n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), fill, dtype=np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        grid[y:y + h, x:x + w] = img  # [H, W, C]
    return grid


def labelled_grid(grid: np.ndarray, cell: tuple[int, int], rows: list[str] | None, cols: list[str] | None,
                  pad: int = 2) -> np.ndarray:
    """``grid`` (from ``image_grid``, cells of ``cell`` = (H, W)) with row names on the left and column names on
    top, in black on white (PIL's default font). Returns uint8 [H', W', C] with the grid's channels."""
    from PIL import Image, ImageDraw

    left = 8 + 6 * max((len(r) for r in rows or []), default=0)
    top = 14 if cols else 0
    h, w, c = grid.shape
    canvas = Image.new("L" if c == 1 else "RGB", (w + left, h + top), 255 if c == 1 else (255, 255, 255))
    canvas.paste(Image.fromarray(grid[:, :, 0] if c == 1 else grid), (left, top))
    draw = ImageDraw.Draw(canvas)
    ink = 0 if c == 1 else (0, 0, 0)
    for i, text in enumerate(rows or []):
        draw.text((2, top + pad + i * (cell[0] + pad) + cell[0] // 2 - 5), text, fill=ink)
    for k, text in enumerate(cols or []):
        draw.text((left + pad + k * (cell[1] + pad), 1), text[: max(1, (cell[1] + pad) // 6)], fill=ink)
    arr = np.asarray(canvas, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}  # file suffix -> the format written


def image_format(path: str | os.PathLike[str]) -> str:
    """The picture format ``path``'s suffix names (``IMAGE_FORMATS``); another suffix is a UserInputError."""
    fmt = IMAGE_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UserInputError(f"'{path}': pictures are written as {', '.join(IMAGE_FORMATS)} (the suffix picks "
                             "the format).")
    return fmt


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write uint8 [H, W, C] as a PNG atomically."""
    return atomic_write_bytes(path, encode_png(image))


def save_image(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write uint8 [H, W, C] atomically in the format ``path``'s suffix names (PNG, or JPEG at quality 95)."""
    from PIL import Image

    fmt = image_format(path)
    if fmt == "PNG":
        return save_png(path, image)
    arr = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8)).save(buf, format=fmt, quality=95)
    return atomic_write_bytes(path, buf.getvalue())


def save_points_plot(path: str | os.PathLike[str], points: np.ndarray, title: str = "") -> Path:
    """Scatter plot of float [N, 2] points (extra dimensions: the first two), atomically, in the format
    ``path``'s suffix names (``IMAGE_FORMATS``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(points[:, 0], points[:, 1 if points.shape[1] > 1 else 0], s=6, alpha=0.6)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    buf = io.BytesIO()
    fig.savefig(buf, format=image_format(path).lower(), bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())

