"""Pictures a run leaves behind: sample grids (PIL), ``losses.png`` and 2D scatter plots (matplotlib, Agg).

Every file is written atomically.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gandeploy.models.io import to_uint8
from gandeploy.utils.io import atomic_path, atomic_write_bytes
from gandeploy.wire import encode_png

MIN_CELL = 64  # small images are enlarged (nearest) so a cell is at least this many pixels


def image_grid(images: torch.Tensor | np.ndarray, nrow: int = 8, padding: int = 2, scale: int | None = None,
               pad_value: int = 255) -> Image.Image:
    """Images [N, C, H, W] in [-1, 1] (C = 1 or 3) → one PIL image, ``nrow`` per row, nearest-upscaled."""
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    pix = to_uint8(arr)  # [N, H, W, C] uint8
    n, h, w, c = pix.shape
    if c not in (1, 3):
        pix, c = pix[..., :1], 1
    scale = scale or max(1, math.ceil(MIN_CELL / max(h, w)))
    if scale > 1:
        pix = pix.repeat(scale, axis=1).repeat(scale, axis=2)  # [N, sH, sW, C]
        h, w = h * scale, w * scale
    ncol = min(nrow, n)
    rows = math.ceil(n / ncol)
    grid = np.full((rows * (h + padding) + padding, ncol * (w + padding) + padding, c), pad_value, np.uint8)
    for i in range(n):
        r, k = divmod(i, ncol)
        y0, x0 = padding + r * (h + padding), padding + k * (w + padding)
        grid[y0:y0 + h, x0:x0 + w] = pix[i]
    return Image.fromarray(grid[..., 0] if c == 1 else grid, mode="L" if c == 1 else "RGB")


def save_image_grid(images: torch.Tensor | np.ndarray, path: str | os.PathLike[str], nrow: int = 8,
                    **kwargs: Any) -> Path:
    """Write ``image_grid(images, nrow)`` as a PNG to ``path`` (atomically)."""
    img = image_grid(images, nrow=nrow, **kwargs)
    return atomic_write_bytes(path, encode_png(np.asarray(img)))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig: Any, path: str | os.PathLike[str]) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def plot_losses(csv_path: str | os.PathLike[str], path: str | os.PathLike[str],
                title: str = "training losses") -> Path | None:
    """``losses.png``: every loss column of ``losses.csv`` against the step, raw (faint) and smoothed (also
    ``monitor.png`` from ``monitor.csv``)."""
    from gandeploy.training.losslog import read_losses

    header, rows = read_losses(csv_path)
    if not rows:
        return None
    data = np.asarray(rows, dtype=np.float64)  # [steps, columns]
    steps = data[:, header.index("step")]
    names = [h for h in header if h not in ("step", "epoch")]
    groups = [[n for n in names if n.startswith("loss")], [n for n in names if not n.startswith("loss")]]
    groups = [g for g in groups if g]
    plt = _pyplot()
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 3.2 * len(groups)), sharex=True, squeeze=False)
    for ax, group in zip(axes[:, 0], groups):
        for name in group:
            y = data[:, header.index(name)]
            line, = ax.plot(steps, y, alpha=0.25, linewidth=0.8)
            ax.plot(steps, _ema(y), color=line.get_color(), label=name, linewidth=1.5)
        ax.legend(loc="upper right")
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(f"{Path(csv_path).parent.name}: {title}")
    axes[-1, 0].set_xlabel("generator step")
    return _save_figure(fig, path)


def _ema(y: np.ndarray, span: int | None = None) -> np.ndarray:
    span = span or max(1, len(y) // 50)
    alpha, out, acc = 2.0 / (span + 1.0), np.empty_like(y), np.nan
    for i, v in enumerate(y):
        acc = v if np.isnan(acc) else (acc if np.isnan(v) else alpha * v + (1 - alpha) * acc)
        out[i] = acc
    return out


def scatter_points(real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray, path: str | os.PathLike[str],
                   centres: torch.Tensor | np.ndarray | None = None, title: str | None = None) -> Path:
    """2D scatter of real vs generated points [N, 2] (first two coordinates), mode centres as crosses.

    1D data [N, 1]: overlaid density histograms instead.
    """
    real_np, fake_np = np.asarray(real)[:, :2], np.asarray(fake)[:, :2]
    plt = _pyplot()
    if real_np.shape[1] == 1:
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
        lim = max(np.abs(real_np).max(), 1.0) * 1.35
        bins = np.linspace(-lim, lim, 121)
        ax.hist(real_np[:, 0], bins=bins, density=True, alpha=0.5, label="real", color="tab:blue")
        ax.hist(np.clip(fake_np[:, 0], -lim, lim), bins=bins, density=True, alpha=0.5, label="generated",
                color="tab:orange")
        ax.legend(loc="upper right")
        if title:
            ax.set_title(title)
        return _save_figure(fig, path)
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.scatter(real_np[:, 0], real_np[:, 1], s=4, alpha=0.35, label="real", color="tab:blue")
    ax.scatter(fake_np[:, 0], fake_np[:, 1], s=4, alpha=0.35, label="generated", color="tab:orange")
    if centres is not None:
        c = np.asarray(centres)
        ax.scatter(c[:, 0], c[:, 1], marker="x", s=40, color="black", label="mode centres")
    lim = max(np.abs(real_np).max(), 1.0) * 1.35
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=3)
    if title:
        ax.set_title(title)
    return _save_figure(fig, path)
