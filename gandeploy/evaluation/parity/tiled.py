"""Parity's tiled-vs-whole check: are tile seams invisible?

One deterministic test picture of at least ``MIN_TILES`` x ``MIN_TILES`` tiles (input side ``tile + (n - 1) *
(tile - 2 * overlap)`` per axis) goes through the *tiled* pipeline — the served ``NAME`` when a server is given
(its tiling read from the served config), else the same pipeline in-process on ONNX Runtime with the export's
default tiling (or ``--tile`` / ``--tile-overlap``) — and through the PyTorch generator as *one whole picture*
(same padding rules, no tiles). Both are PNGs decoded to uint8; the figures are the share of pixels whose every
channel is within ``MAX_LEVELS`` uint8 level of the whole-picture output, and the worst pixel (levels, where).

It passes when that share is at least ``MIN_SHARE`` (99.9 %). It is *enforced* (counts in parity's verdict) when
the export records a measured, bounded receptive field — an overlap chosen below it then fails, as its seams
show; otherwise (not measured, global as with instance normalisation, or a default overlap the export's max size
forced below the field) the figures are reported as information, with the reason.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gandeploy.contract import ServedContract
from gandeploy.errors import GanDeployError, ServingError
from gandeploy.runtimes.base import Runtime
from gandeploy.serving.tiling import PipelineSettings, run_pictures

MIN_TILES = 4
MIN_SHARE = 0.999
MAX_LEVELS = 1
PICTURE_SEED = 4_242


@dataclass
class TiledCheck:
    """The tiled-vs-whole figures of one export."""

    candidate: str  # "triton-ensemble" | "onnxruntime (in-process)"
    hw: tuple[int, int]  # the test picture's input size
    tiles: tuple[int, int]  # tiles per axis
    settings: dict[str, Any]
    enforced: bool
    why_not_enforced: str = ""
    share_within: float | None = None
    worst_levels: int | None = None
    worst_pixel: list[int] = field(default_factory=list)  # [y, x] in the output
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.share_within is not None and self.share_within >= MIN_SHARE

    def to_json(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "reference": "torch, whole picture", "input_hw": list(self.hw),
                "tiles": list(self.tiles), "tiling": self.settings, "enforced": self.enforced,
                "why_not_enforced": self.why_not_enforced, "max_levels": MAX_LEVELS, "min_share": MIN_SHARE,
                "share_within": self.share_within, "worst_levels": self.worst_levels,
                "worst_pixel_yx": self.worst_pixel, "error": self.error, "passed": self.passed}

    def line(self) -> str:
        """One Markdown paragraph with the figures."""
        if self.error:
            return f"Tiled vs whole ({self.candidate}): ERROR {self.error}"
        verdict = ("PASS" if self.passed else "FAIL") if self.enforced else \
            f"not enforced: {self.why_not_enforced}"
        tile = self.settings["tile"]
        return (f"Tiled vs whole: a {self.hw[0]}x{self.hw[1]} picture in {self.tiles[0]}x{self.tiles[1]} tiles of "
                f"{tile[0]}x{tile[1]} (overlap {self.settings['overlap']}) through {self.candidate}, against "
                f"PyTorch on the whole picture: {100 * (self.share_within or 0):.3f} % of pixels within "
                f"{MAX_LEVELS} uint8 level (needed: {100 * MIN_SHARE:.1f} %), worst pixel {self.worst_levels} "
                f"level(s) at (y, x) = ({self.worst_pixel[0]}, {self.worst_pixel[1]}). {verdict}.")


def check_size(settings: PipelineSettings, tiles: int = MIN_TILES) -> tuple[int, int]:
    """The input size that takes ``tiles`` tiles per axis under ``settings``."""
    plan = settings.plan
    return tuple(t + (tiles - 1) * (t - 2 * plan.overlap)  # type: ignore[return-value]
                 for t in (plan.tile_height, plan.tile_width))


def compare_levels(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, int, list[int]]:
    """(share of pixels within ``MAX_LEVELS`` on every channel, worst level difference, its [y, x])."""
    ref = reference.reshape(reference.shape[0], reference.shape[1], -1).astype(np.int32)
    cand = candidate.reshape(ref.shape).astype(np.int32)
    per_pixel = np.abs(ref - cand).max(axis=2)  # [H, W]
    y, x = np.unravel_index(int(per_pixel.argmax()), per_pixel.shape)
    return float((per_pixel <= MAX_LEVELS).mean()), int(per_pixel.max()), [int(y), int(x)]


def tiled_vs_whole(contract: ServedContract, settings: PipelineSettings, reference: Runtime,
                   candidate: Runtime | None, *, served: bool) -> TiledCheck:
    """Run the check (module docstring). ``candidate``: the served ``NAME`` runtime (``served``) or the
    in-process generator runtime that the tiled pipeline runs on."""
    from PIL import Image

    from gandeploy.evaluation.cases import test_image

    hw = check_size(settings)
    rows = len(_axis(hw[0], settings.plan.tile_height, settings.plan.overlap))
    cols = len(_axis(hw[1], settings.plan.tile_width, settings.plan.overlap))
    radius = settings.radius
    name = "triton-ensemble" if served else f"{candidate.key if candidate else '?'} (in-process)"
    plan = settings.plan
    squeezed = radius is not None and plan.reduced and not plan.covers  # defaults shrunk below the field
    why = settings.note or (f"the export's max size {settings.limits.max_height}x{settings.limits.max_width} "
                            f"leaves room for an overlap of only {plan.overlap} < the measured radius {radius}: "
                            "re-export with a larger --max-size" if squeezed else "")
    check = TiledCheck(name, hw, (rows, cols), settings.to_json(), radius is not None and not squeezed, why)
    blob = _png(test_image(PICTURE_SEED, hw, contract.in_channels))
    gen_in, gen_out = contract.io.input_names[0], contract.io.output_names[0]
    whole_params = {"min_height": settings.limits.min_height, "min_width": settings.limits.min_width}
    try:
        whole = run_pictures([blob], contract, whole_params, lambda x: reference.run({gen_in: x})[gen_out],
                             max_pixels=2**62, max_batch=1)[0]
        if served:
            out = candidate.run(contract.request(images=[blob]))  # type: ignore[union-attr]
            tiled: Any = bytes(np.asarray(next(iter(out.values()))).reshape(-1)[0])
        else:
            run = (lambda x: candidate.run({gen_in: x})[gen_out])  # type: ignore[union-attr]
            tiled = run_pictures([blob], contract, settings.params(), run, max_pixels=2**62)[0]
        for result in (whole, tiled):
            if isinstance(result, GanDeployError):
                raise result
    except (GanDeployError, ServingError, ValueError, RuntimeError, OSError) as exc:
        check.error = f"{type(exc).__name__}: {exc}"
        return check
    ref = np.asarray(Image.open(io.BytesIO(whole)))
    cand = np.asarray(Image.open(io.BytesIO(tiled)))
    check.share_within, check.worst_levels, check.worst_pixel = compare_levels(ref, cand)
    return check


def _axis(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    from gandeploy.serving.backends import gd_pictures

    return gd_pictures.axis_tiles(length, tile, overlap)


def _png(image: np.ndarray) -> bytes:
    from gandeploy.wire import encode_png

    return encode_png(image)
