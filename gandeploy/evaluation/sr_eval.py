"""``gandeploy evaluate`` for super-resolution: PSNR / SSIM on Y of the whole held-out pictures, beside bicubic.

The protocol of the SR papers: each held-out picture of the data set (whole, not crops) is cut at the bottom /
right to a multiple of the scale, its low-resolution partner is made by antialiased bicubic downscaling (the data
set's ``make_lr``), the model upscales it, and PSNR / SSIM on the BT.601 Y channel with ``scale`` border pixels
cropped are taken against the original (``sr_metrics``). Bicubic upscaling of the same low-resolution picture is
the baseline row. The mean over pictures is the summary; every picture also has its own row.

Pictures travel as uint8, as users receive them: the low-resolution picture is fed through ``from_uint8`` in the
input's declared value range, padded (reflect) to the declared size multiple and cropped back, and the output goes
through ``to_uint8`` in the output's declared range. A served model gets the PNG itself.

Which evaluation runs follows the generator's declared IO (``default_metrics``): a picture input with an output
``scale`` > 1 gets PSNR / SSIM, everything else the distribution metrics.
"""

from __future__ import annotations

import io as _io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.errors import UserInputError
from gandeploy.metrics.sr_metrics import bicubic_upscale, psnr_ssim_y
from gandeploy.models.io import GeneratorIO, from_uint8, to_uint8
from gandeploy.utils.io import atomic_write_json, atomic_write_text
from gandeploy.evaluation.tables import write_stacked_png
from gandeploy.utils.logging import get_logger
from gandeploy.wire import encode_png

log = get_logger("evaluate.sr")

PSNR, SSIM, DISTRIBUTION = "psnr", "ssim", "fid"  # --metric choices ("fid": the FID/KID/PR/DC suite)
METRIC_CHOICES = (PSNR, SSIM, DISTRIBUTION)
FIGURE_CROP = 96  # side of each picture's crop in the figure, in high-resolution pixels (at most the picture)
FIGURE_ZOOM = 2  # each crop pixel drawn as a 2x2 block (nearest), so the detail shows


def default_metrics(io: GeneratorIO) -> tuple[str, ...]:
    """PSNR and SSIM for generators that take a picture and write it ``scale`` > 1 times larger; else the
    distribution suite."""
    return (PSNR, SSIM) if io.image_input is not None and io.scale > 1 else (DISTRIBUTION,)


def resolve_metrics(asked: tuple[str, ...] | None, io: GeneratorIO) -> tuple[str, ...]:
    """``--metric`` checked against the generator's IO (None: ``default_metrics``)."""
    if not asked:
        return default_metrics(io)
    unknown = [m for m in asked if m not in METRIC_CHOICES]
    if unknown:
        raise UserInputError(f"--metric {','.join(unknown)}: choose from {', '.join(METRIC_CHOICES)}.")
    pictures = [m for m in asked if m in (PSNR, SSIM)]
    if pictures and DISTRIBUTION in asked:
        raise UserInputError("--metric: psnr/ssim (against the original pictures) and fid (distributions) are two "
                             "evaluations; run them one at a time.")
    if pictures and (io.image_input is None or io.scale < 2):
        what = "takes no picture (it samples)" if io.image_input is None else "does not upscale (scale 1)"
        raise UserInputError(f"--metric {','.join(pictures)} scores super-resolution against bicubic; this generator "
                             f"{what}: use --metric fid.")
    return tuple(dict.fromkeys(asked))


@dataclass
class SRResult:
    """Mean scores of the model and of bicubic, one row per picture, and the figure's crops (not serialised)."""

    summary: dict[str, Any]
    per_picture: list[dict[str, Any]] = field(default_factory=list)
    crops: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)  # name, bic, model, hr

    def to_json(self) -> dict[str, Any]:
        return {**self.summary, "per_picture": self.per_picture}


def held_out_pictures(dataset: str, scale: int, channels: int, data_root: str | None) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 [C, H, W]) of every held-out picture of a paired data set, cut to multiples of ``scale``."""
    from gandeploy.data import open_dataset

    ds = open_dataset(dataset, "paired", split="test", scale=scale, channels=channels or None,
                      image_size=scale * 4, augment=None,
                      data_root=Path(data_root) if data_root is not None else None)
    pictures = getattr(ds, "held_out", None)
    if not pictures:
        raise UserInputError(f"data set '{dataset}' has no held-out pictures to measure PSNR / SSIM on.")
    names = list(getattr(ds, "held_out_names", None) or [f"picture {i}" for i in range(len(pictures))])
    out = []
    for name, pic in zip(names, pictures):
        arr = np.asarray(pic, dtype=np.uint8)
        h, w = (arr.shape[-2] // scale) * scale, (arr.shape[-1] // scale) * scale
        out.append((str(name), np.ascontiguousarray(arr[:, :h, :w])))
    return out


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """uint8 [C, H, W] → uint8 [C, H/scale, W/scale]: the data sets' bicubic ``make_lr``."""
    import torch

    from gandeploy.data.photos import make_lr as data_make_lr

    lr = data_make_lr(torch.from_numpy(hr).float()[None] / 255.0, scale)  # [1, C, h, w] in [0, 1], uint8 levels
    return np.clip(np.rint(lr[0].numpy() * 255.0), 0, 255).astype(np.uint8)


def upscale(source: Any, lr: np.ndarray) -> np.ndarray:
    """The model's output for one uint8 [C, h, w] picture, as uint8 [C, s·h, s·w] (module docstring)."""
    scale = source.io.scale
    c, h, w = lr.shape
    if source.runtime is None:  # a served model: the PNG round trip users make
        from PIL import Image

        from gandeploy.serving.client import translate

        (png,) = translate(str(source.served_name), [encode_png(lr.transpose(1, 2, 0))], **source.served)
        with Image.open(_io.BytesIO(png)) as img:
            arr = np.asarray(img.convert("L" if c == 1 else "RGB"), dtype=np.uint8)
        return (arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
    spec = source.io.image_input
    out_spec = source.io.outputs[0]
    m = source.io.size_multiple
    ph, pw = (-h) % m, (-w) % m
    x = from_uint8(lr.transpose(1, 2, 0)[None], spec.value_range)  # [1, C, h, w]
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > max(ph, pw) else "edge")
    y = np.asarray(source.runtime.run({spec.name: np.ascontiguousarray(x, dtype=np.float32)})[out_spec.name])
    y = y[:, :, :h * scale, :w * scale]  # [1, C, sH, sW]
    return to_uint8(y, out_spec.value_range)[0].transpose(2, 0, 1)


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows]
    return float(np.mean(values)) if all(math.isfinite(v) for v in values) else float("inf")


def evaluate_sr(target: str, source: Any, run: Any, cfg: Any, metrics: tuple[str, ...]) -> SRResult:
    """PSNR / SSIM of ``source`` and of bicubic on the held-out pictures of the run's data set (``cfg.real``)."""
    dataset = cfg.real or (run.dataset if run is not None else None)
    if not dataset:
        raise UserInputError(f"'{target}' does not record its data set (an imported model): pass --real DATASET, "
                             "e.g. --real photos or --real folder:PATH.")
    scale = source.io.scale
    channels = int(source.io.image_input.shape[1])
    border = scale if scale > 1 else 0
    rows, crops = [], []
    for name, hr in held_out_pictures(dataset, scale, channels, cfg.data_root):
        lr = make_lr(hr, scale)
        sr, bic = upscale(source, lr), bicubic_upscale(lr, scale)
        if sr.shape != hr.shape:
            raise UserInputError(f"'{target}' returned {sr.shape[1]}x{sr.shape[2]} for a {lr.shape[1]}x{lr.shape[2]} "
                                 f"picture; its declared scale {scale} means {hr.shape[1]}x{hr.shape[2]}.")
        model_scores, bic_scores = psnr_ssim_y(sr, hr, border), psnr_ssim_y(bic, hr, border)
        rows.append({"picture": name, "size": [int(hr.shape[1]), int(hr.shape[2])],
                     **{f"{k}": model_scores[k] for k in metrics}, **{f"bicubic_{k}": bic_scores[k] for k in metrics}})
        crops.append((name, *_crop3(bic, sr, hr)))
        log.info("%s: %s", name, ", ".join(f"{k} {rows[-1][k]:.4g} (bicubic {rows[-1]['bicubic_' + k]:.4g})"
                                             for k in metrics))
    summary: dict[str, Any] = {
        "target": target, "backend": source.backend, "generator": source.generator, "task": "super-resolution",
        "metrics": list(metrics), "real": dataset, "pictures": "held-out, whole", "n": len(rows), "scale": scale,
        "crop_border": border, "channel": "Y (ITU-R BT.601)" if channels == 3 else "grey",
        "lr": "antialiased bicubic downscaling, uint8 levels", "baseline": "bicubic upscaling (a = -0.5, as MATLAB imresize)",
        "model": {k: _mean(rows, k) for k in metrics}, "bicubic": {k: _mean(rows, f"bicubic_{k}") for k in metrics}}
    summary["gain_over_bicubic"] = {k: summary["model"][k] - summary["bicubic"][k] for k in metrics}
    return SRResult(summary, rows, crops)


def _crop3(bic: np.ndarray, sr: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same centred square of the three pictures, ``FIGURE_CROP`` px (or the picture's short side)."""
    side = min(FIGURE_CROP, hr.shape[1], hr.shape[2])
    top, left = (hr.shape[1] - side) // 2, (hr.shape[2] - side) // 2
    return tuple(p[:, top:top + side, left:left + side] for p in (bic, sr, hr))  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------- report files
def sr_markdown(result: SRResult) -> str:
    s = result.summary
    metrics = s["metrics"]
    head = "| | " + " | ".join(m.upper() for m in metrics) + " |"
    lines = [f"# evaluate {s['target']}", "",
             f"Super-resolution x{s['scale']}, backend **{s['backend']}**, the {s['n']} held-out pictures of "
             f"**{s['real']}**, whole (not crops). "
             f"{s['channel']} channel, {s['crop_border']} border pixels cropped (BasicSR's calculate_psnr / "
             f"calculate_ssim with test_y_channel=True). Low resolution: {s['lr']}; baseline: {s['baseline']}.", "",
             head, "|---" * (len(metrics) + 1) + "|",
             "| bicubic | " + " | ".join(_fmt(m, s["bicubic"][m]) for m in metrics) + " |",
             "| model | " + " | ".join(_fmt(m, s["model"][m]) for m in metrics) + " |",
             "| model − bicubic | " + " | ".join(_fmt(m, s["gain_over_bicubic"][m], sign=True) for m in metrics) + " |",
             "", "## Per picture", "",
             "| picture | size | " + " | ".join(f"{m.upper()} bicubic | {m.upper()} model" for m in metrics) + " |",
             "|---|---" + "|---|---" * len(metrics) + "|"]
    for r in result.per_picture:
        lines.append(f"| {r['picture']} | {r['size'][1]}x{r['size'][0]} | "
                     + " | ".join(f"{_fmt(m, r['bicubic_' + m])} | {_fmt(m, r[m])}" for m in metrics) + " |")
    lines += ["", "Figure `evaluate.png`: for each picture, a centred crop of bicubic | model | original."]
    return "\n".join(lines) + "\n"


def _fmt(metric: str, value: float, sign: bool = False) -> str:
    if not math.isfinite(value):
        return "inf"
    text = f"{value:+.2f}" if sign and metric == PSNR else f"{value:+.4f}" if sign else \
        f"{value:.2f}" if metric == PSNR else f"{value:.4f}"
    return text + (" dB" if metric == PSNR else "")


def labelled_rows_figure(rows: list[tuple[list[str], list[np.ndarray]]], path: Path) -> Path:
    """A PNG of picture rows: each row's panels ([C, h, w] uint8) side by side, each pixel shown ``FIGURE_ZOOM``
    times, each panel under its label; written whole (a temporary file renamed into place)."""
    from PIL import Image, ImageDraw

    gap, label = 6, 14
    images = []
    for titles, panels in rows:
        side_h, side_w = panels[0].shape[1] * FIGURE_ZOOM, panels[0].shape[2] * FIGURE_ZOOM
        row = Image.new("RGB", (len(panels) * (side_w + gap) - gap, side_h + label), "white")
        draw = ImageDraw.Draw(row)
        for i, (title, pic) in enumerate(zip(titles, panels)):
            hwc = pic.transpose(1, 2, 0)
            img = Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc).convert("RGB")
            row.paste(img.resize((side_w, side_h), Image.Resampling.NEAREST), (i * (side_w + gap), label))
            draw.text((i * (side_w + gap) + 2, 1), title, fill="black")
        images.append(row)
    return write_stacked_png(path, images, gap)


def sr_figure(result: SRResult, path: Path) -> Path:
    """One row per picture: bicubic | model | original crops, labelled, each pixel shown ``FIGURE_ZOOM`` times."""
    return labelled_rows_figure([([f"bicubic ({name})"[:24], "model", "original"], list(panels))
                                 for name, *panels in result.crops], path)


def write_sr(result: SRResult, out_dir: Path, json_file: Path | None = None) -> list[Path]:
    """``evaluate.json`` / ``.md`` / ``.png`` in ``out_dir`` (and the JSON also at ``json_file``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_json(out_dir / "evaluate.json", result.to_json()),
               atomic_write_text(out_dir / "evaluate.md", sr_markdown(result))]
    if result.crops:
        written.append(sr_figure(result, out_dir / "evaluate.png"))
    if json_file is not None:
        written.append(atomic_write_json(json_file, result.to_json()))
    return written


def summary_line(result: SRResult) -> str:
    s = result.summary
    parts = [f"{m.upper()} {_fmt(m, s['model'][m])} (bicubic {_fmt(m, s['bicubic'][m])}, "
             f"{_fmt(m, s['gain_over_bicubic'][m], sign=True)})" for m in s["metrics"]]
    return f"x{s['scale']} · {s['backend']} · {s['n']} whole held-out pictures of {s['real']}: " + ", ".join(parts)
