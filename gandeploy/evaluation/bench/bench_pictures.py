"""Openers for ``megapixels.image_rows``: whole pictures through the served pipeline's rules, tiles on and off.

``image_rows`` times the bare runtime on one picture tensor (``torch``, ``onnxruntime``). The openers here time
what a user's picture goes through instead — PNG decode, padding to the size rule, tiles, stitching, PNG encode —
so tiling's cost and the server's overhead show against the same roofline:

- ``pipeline_opener(key, tile=...)``: in-process (``serving/tiling.run_pictures``, the served pipeline's own
  file, as ``gandeploy upscale --export`` runs it) with the tiling ``gandeploy repo --tile/--tile-overlap``
  would use; ``tiled=False`` runs every picture as one tile, however large.
- ``served_opener(url)``: the served ``NAME`` (``image_bytes`` → PNG) on a running server, with whatever tiling
  its repository was built with (read back from its config for the label).

Which rows apply is read from the export's declared IO (a picture input), never from its family.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.errors import BackendUnavailable, GanDeployError
from gandeploy.evaluation.bench.bench import _open
from gandeploy.evaluation.bench.megapixels import Opener, PictureRun
from gandeploy.evaluation.bench.roofline import torch_threads
from gandeploy.manifest import load_manifest
from gandeploy.wire import encode_png

TILE_KEYS = ("tile_height", "tile_width", "tile_overlap")


class _PngCache:
    """PNG bytes of the picture being timed, encoded once (the client's encoding is not the model's time)."""

    def __init__(self) -> None:
        self.key: tuple[int, tuple[int, ...]] | None = None
        self.blob = b""

    def __call__(self, picture: np.ndarray) -> bytes:
        key = (id(picture), picture.shape)
        if key != self.key:
            self.key, self.blob = key, encode_png(picture)
        return self.blob


def _ok(result: Any) -> bytes:
    if isinstance(result, GanDeployError):
        raise result
    return bytes(result)


def pipeline_opener(key: str, threads: int, *, tile: int | None = None, overlap: int | None = None,
                    tiled: bool = True) -> Opener:
    """Pictures through the served pipeline in-process on runtime ``key``: tiles as ``repo --tile/--tile-overlap``
    (their defaults when None), or (``tiled=False``) each picture as one tile."""
    @contextlib.contextmanager
    def opener(export_dir: Path) -> Iterator[PictureRun]:
        from gandeploy.serving.tiling import pipeline_settings, run_pictures

        manifest = load_manifest(export_dir)
        contract = manifest.contract
        if contract.images is None:
            raise BackendUnavailable("the export takes no picture")
        params = pipeline_settings(manifest.data, contract, tile=tile, overlap=overlap).params()
        if not tiled:
            params.update(tile_height=0, tile_width=0, tile_overlap=0)  # gd_pictures.Job: 0 = the whole picture
        gen_in, gen_out = contract.io.input_names[0], contract.io.output_names[0]
        runtime = _open(key, export_dir, manifest, threads, None, "http")
        png = _PngCache()
        with runtime, torch_threads(threads if key == "torch" else None):
            yield lambda picture: _ok(run_pictures([png(picture)], contract, params,
                                                   lambda x: runtime.run({gen_in: x})[gen_out],
                                                   max_pixels=1 << 40)[0])
    return opener


def pipeline_label(key: str, export_dir: Path, *, tile: int | None = None, overlap: int | None = None,
                   tiled: bool = True) -> str:
    """``onnxruntime pipeline, tiles 64+3`` (tile side + overlap) / ``onnxruntime pipeline, tiles off``."""
    if not tiled:
        return f"{key} pipeline, tiles off"
    from gandeploy.serving.tiling import pipeline_settings

    manifest = load_manifest(export_dir)
    p = pipeline_settings(manifest.data, manifest.contract, tile=tile, overlap=overlap).params()
    return f"{key} pipeline, tiles {_tiles(p)}"


def served_opener(url: str, protocol: str) -> Opener:
    """Pictures through the served ``NAME`` (one request per picture) on the server at ``url``."""
    @contextlib.contextmanager
    def opener(export_dir: Path) -> Iterator[PictureRun]:
        from gandeploy.serving import client as tc

        name = load_manifest(export_dir).name
        png = _PngCache()
        yield lambda picture: _ok(tc.translate_many(name, [png(picture)], url=url, protocol=protocol)[0])
    return opener


def served_label(export_dir: Path, url: str, protocol: str) -> str:
    """``served NAME, tiles 64+3`` from the served config's parameters (``served NAME`` when unreadable)."""
    from gandeploy.runtimes.triton_client import TritonClient

    name = load_manifest(export_dir).name
    try:
        with TritonClient(url, protocol) as client:
            params = {k: int(v.get("string_value") or 0) for k, v in client.config(name).get("parameters", {}).items()
                      if k in TILE_KEYS}
    except (GanDeployError, ValueError):
        return f"served {name}"  # the row itself will say what is wrong with the server
    return f"served {name}, tiles {_tiles(params)}" if len(params) == len(TILE_KEYS) else f"served {name}"


def _tiles(params: dict[str, int]) -> str:
    if not params.get("tile_height"):
        return "off"
    side = (f"{params['tile_height']}" if params["tile_height"] == params["tile_width"]
            else f"{params['tile_height']}x{params['tile_width']}")
    return f"{side}+{params['tile_overlap']}"
