"""The demo's paired image-to-image calls through the served models (``gandeploy demo``): pix2pix on held-out
edge maps (sketch → digit) and super-resolution of held-out photographs, each judged on what the server returned
and drawn as a labelled picture (input | output | truth).

Every request is a PNG sent with tritonclient (``serving.client.translate``), the way users call the models.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

from gandeploy.utils.io import atomic_write_bytes
from gandeploy.wire import encode_png

SHOWN = 10  # held-out pairs drawn in the pix2pix picture
SR_CROP = 48  # side of the low-resolution crop drawn in the super-resolution picture


def class_grid(images: np.ndarray, row_names: list[str], col_names: list[str], scale: int = 3,
               pad: int = 4) -> np.ndarray:
    """uint8 [rows*cols, H, W, C] (row by row) → one picture, tiles enlarged ``scale`` times with white gutters,
    a name left of each row and above each column."""
    from gandeploy.serving.pictures import image_grid, labelled_grid

    tiles = images.repeat(scale, axis=1).repeat(scale, axis=2)  # [N, sH, sW, C]
    grid = image_grid(tiles, cols=len(col_names), pad=pad)  # [rows*(sH+pad)+pad, cols*(sW+pad)+pad, C]
    return labelled_grid(grid, tiles.shape[1:3], row_names, col_names, pad=pad)


def save_grid(grid: np.ndarray, out: Path) -> Path:
    return atomic_write_bytes(out, encode_png(grid))


def _decode(png: bytes, channels: int) -> np.ndarray:
    """PNG bytes → uint8 [H, W, channels]."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def translate_edges(name: str, dataset: str, image_size: int, out: Path, *, url: str, n: int = 64
                    ) -> tuple[float, str]:
    """The first ``n`` held-out edge maps of ``dataset`` → served pix2pix model ``name`` (one PNG request each);
    the digits judge reads the served outputs. Writes ``out`` (rows input | output | truth, one column per pair,
    titled with the true digit). Returns (seconds of the requests, the summary line)."""
    import torch

    from gandeploy.data.paired import open_paired_digits
    from gandeploy.metrics.classifier import classify_digits
    from gandeploy.models.io import to_uint8
    from gandeploy.serving.client import translate

    ds = open_paired_digits(dataset, image_size=image_size, split="test")
    source, target = ds.test_batch(n)  # [n, 1, S, S] each, in [-1, 1]
    labels = ds.test_labels[:n]
    inputs, truth = to_uint8(source.numpy()), to_uint8(target.numpy())  # [n, S, S, 1]
    start = time.perf_counter()
    outputs = translate(name, [encode_png(x) for x in inputs], url=url, protocol="grpc", concurrency=4)
    seconds = time.perf_counter() - start
    served = np.stack([_decode(png, 1) for png in outputs])  # [n, S, S, 1]
    served_t = torch.from_numpy(served.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1.0)  # [-1, 1]
    agree = float((classify_digits(served_t)[0] == labels).float().mean())
    on_sources = float((classify_digits(source)[0] == labels).float().mean())
    mae = float(np.abs(served.astype(np.float32) - truth.astype(np.float32)).mean() / 127.5)
    base = float(np.abs(inputs.astype(np.float32) - truth.astype(np.float32)).mean() / 127.5)
    k = min(SHOWN, n)
    grid = class_grid(np.concatenate([inputs[:k], served[:k], truth[:k]]), ["input", "output", "truth"],
                      [f"digit {int(d)}" for d in labels[:k]])
    save_grid(grid, out)
    return seconds, (f"{n} held-out edge maps in {seconds:.2f} s; digits judge agrees with the true digit on "
                     f"{agree:.1%} of the served outputs (on the edge maps themselves {on_sources:.1%}); MAE vs "
                     f"truth {mae:.3f} (edge map {base:.3f})")


def upscale_photos(name: str, dataset: str, scale: int, out: Path, *, url: str) -> tuple[float, str]:
    """Each held-out photo of ``dataset``, downscaled by ``scale`` (bicubic, as in training) → served model
    ``name``; PSNR-Y of the served pictures against the originals beside bicubic upscaling. Writes ``out``: a
    ``SR_CROP`` px crop of the first photo as input (nearest) | bicubic | served output | truth. Returns (seconds of
    the requests, the summary line)."""
    from gandeploy.evaluation.sr_eval import held_out_pictures, make_lr
    from gandeploy.metrics.sr_metrics import bicubic_upscale, psnr_ssim_y
    from gandeploy.serving.client import translate

    pictures = held_out_pictures(dataset, scale, 3, None)  # (name, uint8 [3, H, W])
    lows = [make_lr(hr, scale) for _, hr in pictures]  # uint8 [3, H/s, W/s]
    start = time.perf_counter()
    outputs = translate(name, [encode_png(lr.transpose(1, 2, 0)) for lr in lows], url=url, protocol="grpc")
    seconds = time.perf_counter() - start
    served = [_decode(png, 3).transpose(2, 0, 1) for png in outputs]  # uint8 [3, H, W]
    model = [psnr_ssim_y(sr, hr, scale)["psnr"] for sr, (_, hr) in zip(served, pictures)]
    bicubic = [psnr_ssim_y(bicubic_upscale(lr, scale), hr, scale)["psnr"] for lr, (_, hr) in zip(lows, pictures)]

    (first, hr), lr, sr = pictures[0], lows[0], served[0]
    top, left = (lr.shape[1] - SR_CROP) // 2, (lr.shape[2] - SR_CROP) // 2  # the centre of the first photo
    big = slice(top * scale, (top + SR_CROP) * scale), slice(left * scale, (left + SR_CROP) * scale)
    crop_lr = lr[:, top:top + SR_CROP, left:left + SR_CROP]
    tiles = [crop_lr.repeat(scale, axis=1).repeat(scale, axis=2), bicubic_upscale(lr, scale)[:, big[0], big[1]],
             sr[:, big[0], big[1]], hr[:, big[0], big[1]]]
    grid = class_grid(np.stack([t.transpose(1, 2, 0) for t in tiles]), [first],
                      ["input (nearest)", "bicubic", "output", "truth"], scale=2)
    save_grid(grid, out)
    names = ", ".join(n for n, _ in pictures)
    return seconds, (f"{len(pictures)} held-out photos ({names}) at x{scale} in {seconds:.2f} s; served PSNR-Y "
                     f"{np.mean(model):.2f} dB vs bicubic {np.mean(bicubic):.2f} dB ({scale} px border cropped)")
