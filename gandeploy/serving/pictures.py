"""Pictures the client commands write: a PNG grid of samples, a scatter plot of 2D points, PNG files."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

from gandeploy.utils.io import atomic_write_bytes


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


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W, C] (C = 1, 3 or 4) → PNG bytes."""
    from PIL import Image

    arr = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write uint8 [H, W, C] as a PNG atomically."""
    return atomic_write_bytes(path, png_bytes(image))


def save_points_plot(path: str | os.PathLike[str], points: np.ndarray, title: str = "") -> Path:
    """Scatter plot of float [N, 2] points (extra dimensions: the first two) as a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(points[:, 0], points[:, 1 if points.shape[1] > 1 else 0], s=6, alpha=0.6)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def labelled_grid(images: np.ndarray, rows: int, row_labels: list[str], col_labels: list[str], *,
                  scale: int = 3, pad: int = 4, fill: int = 255) -> np.ndarray:
    """uint8 [rows*cols, H, W, C] (row by row) → an RGB grid with gutters, a label left of each row and
    above each column: uint8 [top + rows*(sH+pad)+pad, left + cols*(sW+pad)+pad, 3]."""
    from PIL import Image, ImageDraw

    n, h, w, c = images.shape
    cols = n // rows
    pix = images.repeat(scale, axis=1).repeat(scale, axis=2)  # [N, sH, sW, C]
    pix = np.repeat(pix, 3, axis=3) if c == 1 else pix[..., :3]
    body = image_grid(pix, cols=cols, pad=pad, fill=fill)  # [rows*(sH+pad)+pad, cols*(sW+pad)+pad, 3]
    left = 8 + 7 * max((len(s) for s in row_labels), default=1)
    top = 16
    canvas = Image.new("RGB", (left + body.shape[1], top + body.shape[0]), (fill, fill, fill))
    canvas.paste(Image.fromarray(body), (left, top))
    draw = ImageDraw.Draw(canvas)
    for r, label in enumerate(row_labels[:rows]):
        draw.text((4, top + pad + r * (h * scale + pad) + h * scale // 2 - 5), label, fill=(0, 0, 0))
    for k, label in enumerate(col_labels[:cols]):
        draw.text((left + pad + k * (w * scale + pad) + 2, 2), label, fill=(90, 90, 90))
    return np.asarray(canvas)
