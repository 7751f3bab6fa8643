"""The served contract of image-to-image generators (part of ``gandeploy.contract``, kept apart for size): the
picture rules every served path applies, and how a repository tiles pictures.

``ImageRules`` is read from the generator's declarations alone (``gandeploy.models.io``): input and output
channels, the size rule ``multiple`` of the image input, the ``scale`` of the image output and both tensors'
``value_range``. It travels in the contract JSON as ``images``; the self-contained pipeline
(``serving/backends/gd_pictures.py``) applies it to every picture: pad to the size rule (reflect), tile, run,
stitch, crop to ``scale`` x the input.

Tiling (``TilePlan``, ``gandeploy repo --tile T --tile-overlap P``):

- **overlap** P (input pixels of context on every inner side of a tile's core): by default the receptive-field
  radius that ``gandeploy export`` measured and recorded as ``manifest["receptive_field"]["radius"]`` (how far a
  one-pixel input change moves the output by more than a tenth of a uint8 level), rounded up to the size rule.
  An export without that record, or whose field is not bounded (``"bounded": false``), gets ``DEFAULT_OVERLAP`` (32 input pixels, rounded up to the size rule), which is
  conservative for the compact SR nets (SRVGG-style 16 3x3 convs reach 17 pixels) but *not measured*.
- **tile** T (input pixels per side): by default the largest multiple of the size rule whose batch of
  ``max_batch`` tiles fits ``TILE_MEMORY_BYTES`` (2 GiB) under the estimate ``ASSUMED_FEATURES`` (64) float32 maps
  in and out of the widest layer at output resolution (``8 * 64 * (scale * T)**2`` bytes per tile), at least
  ``2 * P + 4 * multiple`` and at most the export's max size per axis (its TensorRT profile). Where that max
  leaves no room for the default overlap, the overlap shrinks to fit (recorded).

Tiles stitch to exactly the whole-picture output where the overlap covers the receptive field
(``TilePlan.covers``); a generator whose receptive field is global (instance normalisation, as CycleGAN's) never
does, so parity reports its tiled-vs-whole figures without enforcing them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gandeploy.errors import UserInputError
from gandeploy.models.io import GeneratorIO

DEFAULT_OVERLAP = 32  # input pixels, when the export records no measured receptive field
TILE_MEMORY_BYTES = 2 * 2**30  # the default tile's budget for one batch of max_batch tiles
ASSUMED_FEATURES = 64  # float32 maps in and out of the widest layer, at output resolution, per tile
MIN_STEP_MULTIPLES = 4  # a default tile advances at least 4 size rules per step


@dataclass(frozen=True)
class ImageRules:
    """How a picture goes through an image-to-image generator (see the module docstring)."""

    in_channels: int
    out_channels: int
    multiple: int
    scale: int
    in_range: tuple[float, float]
    out_range: tuple[float, float]

    @classmethod
    def from_io(cls, io: GeneratorIO) -> ImageRules | None:
        """The rules of ``io``'s image input and first output (None for sampling generators)."""
        image = io.image_input
        if image is None:
            return None
        out = io.outputs[0]
        return cls(int(image.shape[1]), int(out.shape[1]), io.size_multiple, io.scale, image.value_range,
                   out.value_range)

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        """The served output's size for an input of ``height`` x ``width``."""
        return height * self.scale, width * self.scale

    def to_json(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "multiple": self.multiple,
                "scale": self.scale, "in_range": list(self.in_range), "out_range": list(self.out_range)}


def receptive_radius(manifest: Mapping[str, Any]) -> int | None:
    """The measured receptive-field radius (input pixels) an export records, or None when it records none or
    its field is not bounded (``"bounded": false``: global, as with instance normalisation)."""
    entry = manifest.get("receptive_field")
    if not isinstance(entry, Mapping) or entry.get("bounded") is False:
        return None
    radius = entry.get("radius")
    return int(math.ceil(float(radius))) if isinstance(radius, (int, float)) and math.isfinite(radius) else None


def receptive_note(manifest: Mapping[str, Any]) -> str:
    """Why an export's tiles may not stitch seamlessly, in words ("" when its field is measured and bounded)."""
    entry = manifest.get("receptive_field")
    if not isinstance(entry, Mapping) or not isinstance(entry.get("radius"), (int, float)):
        return "the export records no measured receptive field"
    if entry.get("bounded") is False:
        return (f"the receptive field is not bounded (radius {entry['radius']} or more: global, e.g. instance "
                "normalisation), so no overlap makes tiles seamless")
    return ""


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


@dataclass(frozen=True)
class TilePlan:
    """Tile sides per axis and the overlap (input pixels), and where each came from."""

    tile_height: int
    tile_width: int
    overlap: int
    tile_source: str  # "--tile" | "memory budget"
    overlap_source: str  # "--tile-overlap" | "measured receptive field (radius R)" | "default (not measured)"
    covers: bool = False  # the overlap covers the measured receptive field: tiles stitch to the whole output
    reduced: bool = False  # the default overlap was shrunk to fit the export's max size

    def params(self) -> dict[str, int]:
        """The pipeline model's config parameters (``gd_pictures.Job`` reads them)."""
        return {"tile_height": self.tile_height, "tile_width": self.tile_width, "tile_overlap": self.overlap}

    def to_json(self) -> dict[str, Any]:
        return {"tile": [self.tile_height, self.tile_width], "overlap": self.overlap,
                "tile_source": self.tile_source, "overlap_source": self.overlap_source,
                "covers_receptive_field": self.covers, "overlap_reduced": self.reduced}


def default_tile(rules: ImageRules, max_batch: int, overlap: int) -> int:
    """The memory-budget tile side (module docstring), before the export's size limits."""
    per_pixel = 2 * ASSUMED_FEATURES * 4 * rules.scale ** 2 * max(1, max_batch)  # bytes per input pixel of a tile
    side = int(math.sqrt(TILE_MEMORY_BYTES / per_pixel)) // rules.multiple * rules.multiple
    return max(side, 2 * overlap + MIN_STEP_MULTIPLES * rules.multiple)


def tile_plan(rules: ImageRules, *, max_batch: int, radius: int | None, min_hw: tuple[int, int],
              max_hw: tuple[int, int], tile: int | None = None, overlap: int | None = None) -> TilePlan:
    """The tiling of a repository (module docstring). ``max_hw`` (0: unbounded) clamps the tile per axis; a
    default overlap that leaves no room on a tile that small is reduced (and says so in ``overlap_source``); a
    ``tile`` / ``overlap`` given that breaks the size rule or leaves no room is a ``UserInputError`` naming the
    flag."""
    m = rules.multiple
    if overlap is not None:
        if overlap < 0 or overlap % m:
            raise UserInputError(f"--tile-overlap must be a non-negative multiple of {m} (the model's size rule), "
                                 f"got {overlap}.")
        source = "--tile-overlap"
    elif radius is not None:
        overlap, source = _round_up(radius, m), f"measured receptive field (radius {radius})"
    else:
        overlap, source = _round_up(DEFAULT_OVERLAP, m), "default (receptive field not measured)"
    if tile is not None:
        if tile < 1 or tile % m:
            raise UserInputError(f"--tile must be a positive multiple of {m} (the model's size rule), got {tile}.")
        tile_source = "--tile"
    else:
        tile, tile_source = default_tile(rules, max_batch, overlap), "memory budget"
    sides = []
    for lo, hi in zip(min_hw, max_hw, strict=True):
        side = min(tile, hi - hi % m) if hi else tile
        sides.append(max(side, _round_up(lo, m)))
    room = min(sides) - m  # what two overlaps may take on the shorter tile side
    if 2 * overlap > room:
        if source == "--tile-overlap" or tile_source == "--tile":
            limit = f" (the export allows at most {max_hw[0]}x{max_hw[1]} pixels)" if all(max_hw) else ""
            raise UserInputError(f"--tile {min(sides)} leaves no room between two overlaps of {overlap} pixels: pass "
                                 f"--tile of at least {2 * overlap + m} or a smaller --tile-overlap{limit}.")
        overlap = max(0, room // 2 // m * m)
        source += f"; reduced to {overlap} to fit the export's max size {max_hw[0]}x{max_hw[1]}"
        reduced = True
    else:
        reduced = False
    covers = radius is not None and overlap >= radius
    return TilePlan(sides[0], sides[1], overlap, tile_source, source, covers, reduced)
