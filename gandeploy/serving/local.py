"""Serving without a server: the served contract run in-process on any runtime (``sample`` / ``translate`` with
``--export DIR --backend KEY``), as ``yolo predict`` runs a model locally.

The same request the server would get is checked and turned into generator feeds by the export's ``ServedContract``
(seed map, truncation, label/code/continuous defaults), run on ``open_runtime(KEY, DIR)`` (every in-process format
of the table: ``torch``, ``onnxruntime[-fp16|-int8]``, ``tensorrt[-int8]``) and mapped with the served uint8 rule;
pictures go through the served pipeline's own decode / pad / tile / stitch / PNG rules
(``serving/backends/gd_pictures.py`` via ``serving/tiling.py``), so a local result equals the served one (parity
proves the runtimes agree).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.contract import ServedContract
from gandeploy.errors import GanDeployError, UserInputError
from gandeploy.formats import FORMATS
from gandeploy.manifest import load_manifest
from gandeploy.models.io import IMAGE, to_uint8
from gandeploy.models.latent_stream import check_latent_stream
from gandeploy.runtimes.base import Runtime, open_runtime
from gandeploy.serving.repository import DEFAULT_MAX_PIXELS
from gandeploy.serving.tiling import PipelineSettings, pipeline_settings, run_pictures

LOCAL_BACKENDS = tuple(k for k, f in FORMATS.items() if f.device != "server")  # in-process formats of the table


def local_runtime(export_dir: str | os.PathLike[str], backend: str) -> tuple[ServedContract, Runtime]:
    """The export's contract and an open runtime ``backend`` on it (a clear error for anything else)."""
    if backend not in LOCAL_BACKENDS:
        raise UserInputError(f"--backend must be one of {', '.join(LOCAL_BACKENDS)} for in-process use, got "
                             f"'{backend}'.")
    contract = load_manifest(Path(export_dir)).contract
    if contract.draws_latents:
        check_latent_stream(f"--backend {backend} on '{export_dir}'")  # NumPy must draw the golden latents
    return contract, open_runtime(backend, Path(export_dir))


def local_sample(export_dir: str | os.PathLike[str], backend: str, seeds: Sequence[int], **given: Any) -> np.ndarray:
    """What the served ``NAME`` answers for ``seeds`` and ``given`` (label, code, continuous, truncation): uint8
    [N, H, W, C] pictures (2D points: float32 [N, D]), computed in-process."""
    contract, runtime = local_runtime(export_dir, backend)
    with runtime:
        if contract.translation:
            raise UserInputError(f"'{export_dir}' is an image-to-image export: use 'gandeploy translate'.")
        return run_sample(contract, runtime, seeds, **given)


def run_sample(contract: ServedContract, runtime: Runtime, seeds: Sequence[int] | np.ndarray,
               **given: Any) -> np.ndarray:
    """The served answer for ``seeds`` computed on an open ``runtime``: the contract's seed map and default fill,
    the generator, the served uint8 map (points models: float32)."""
    feeds = contract.generator_feeds(np.asarray(list(seeds), dtype=np.int64), **given)
    return served_output(contract, runtime.run(feeds)[contract.io.output_names[0]])


def served_output(contract: ServedContract, out: np.ndarray) -> np.ndarray:
    """A generator output as the served model answers it: uint8 [N, H, W, C] pictures, float32 points."""
    if contract.io.outputs[0].role == IMAGE:
        return to_uint8(out, contract.output_range)
    return np.asarray(out, dtype=np.float32)


def local_translate(export_dir: str | os.PathLike[str], backend: str, images: Sequence[bytes],
                    max_pixels: int = DEFAULT_MAX_PIXELS, *, tile: int | None = None, overlap: int | None = None,
                    on_done: Callable[[int], None] | None = None) -> list[bytes | GanDeployError]:
    """PNG bytes of each picture through the served pipeline's rules (``scale`` x its size, tiled as ``gandeploy
    repo --tile/--tile-overlap`` would, the same defaults); a bad picture's slot holds its error. Pictures run
    one after another (each one's tiles batched), ``on_done(i)`` called as each finishes."""
    contract, runtime = local_runtime(export_dir, backend)
    with runtime:
        if not contract.translation:
            raise UserInputError(f"'{export_dir}' is a sampling export: use 'gandeploy sample'.")
        settings = pipeline_settings(load_manifest(Path(export_dir)).data, contract, tile=tile, overlap=overlap)
        return run_translate(contract, runtime, settings, images, max_pixels, on_done=on_done)


def run_translate(contract: ServedContract, runtime: Runtime, settings: PipelineSettings, images: Sequence[bytes],
                  max_pixels: int = DEFAULT_MAX_PIXELS, *,
                  on_done: Callable[[int], None] | None = None) -> list[bytes | GanDeployError]:
    """Pictures through the served pipeline's rules on an open ``runtime`` (see ``local_translate``)."""
    gen_in, gen_out = contract.io.input_names[0], contract.io.output_names[0]
    results: list[bytes | GanDeployError] = []
    for i, blob in enumerate(images):
        results += run_pictures([blob], contract, settings.params(),
                                lambda x: runtime.run({gen_in: x})[gen_out], max_pixels=max_pixels)
        if on_done is not None:
            on_done(i)
    return results
