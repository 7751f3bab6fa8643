"""Serving without a server: the served contract run in-process on any runtime (``sample`` / ``translate`` with
``--export DIR --backend KEY``), as ``yolo predict`` runs a model locally.

The same request the server would get is checked and turned into generator feeds by the export's
``ServedContract`` (seed map, truncation, label/code/continuous defaults), run on ``open_runtime(KEY, DIR)``
(``torch``, ``onnxruntime``, ``onnxruntime-fp16``, ``tensorrt``) and mapped with the served uint8 rule; pictures
go through the served pipeline's own decode / pad / crop / PNG rules (``serving/backends/gd_backend_common.py``),
so a local result equals the served one (parity proves the runtimes agree).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.contract import ServedContract
from gandeploy.errors import GanDeployError, RequestRejected, UserInputError
from gandeploy.formats import FORMATS
from gandeploy.manifest import load_manifest
from gandeploy.models.io import IMAGE, to_uint8
from gandeploy.models.latent_stream import check_latent_stream
from gandeploy.runtimes.base import Runtime, open_runtime
from gandeploy.serving.repository import DEFAULT_MAX_PIXELS

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


def pipeline_sides(contract: ServedContract) -> tuple[int, int | None]:
    """min_side / max_side the served translation pipeline applies to an export with ONNX artifacts (from its
    image sizes; the repository builder narrows them to a TensorRT profile per axis where there is one)."""
    sizes = contract.image_sizes or {}
    min_side = max(8, min(sizes["min"])) if sizes.get("min") else 8
    max_side = max(sizes["max"]) if sizes.get("max") else None
    return min_side, max_side


def local_sample(export_dir: str | os.PathLike[str], backend: str, seeds: Sequence[int], **given: Any) -> np.ndarray:
    """What the served ``NAME`` answers for ``seeds`` and ``given`` (label, code, continuous, truncation): uint8
    [N, H, W, C] pictures (2D points: float32 [N, D]), computed in-process."""
    contract, runtime = local_runtime(export_dir, backend)
    with runtime:
        if contract.translation:
            raise UserInputError(f"'{export_dir}' is an image-to-image export: use 'gandeploy translate'.")
        feeds = contract.generator_feeds(np.asarray(list(seeds), dtype=np.int64), **given)
        out = runtime.run(feeds)[contract.io.output_names[0]]
    return to_uint8(out) if contract.io.outputs[0].role == IMAGE else np.asarray(out, dtype=np.float32)


def local_translate(export_dir: str | os.PathLike[str], backend: str, images: Sequence[bytes],
                    max_pixels: int = DEFAULT_MAX_PIXELS) -> list[bytes | GanDeployError]:
    """PNG bytes of each translated picture (same size as its input); a bad picture's slot holds its error."""
    from gandeploy.serving.backends import gd_backend_common as rules  # the served pipeline's own rules

    contract, runtime = local_runtime(export_dir, backend)
    min_side, max_side = pipeline_sides(contract)
    gen_in, gen_out = contract.io.input_names[0], contract.io.output_names[0]
    results: list[bytes | GanDeployError] = []
    with runtime:
        if not contract.translation:
            raise UserInputError(f"'{export_dir}' is a sampling export: use 'gandeploy sample'.")
        for blob in images:
            try:
                image = rules.decode_image(blob, contract.in_channels, max_pixels)  # [H, W, C]
            except rules.RequestError as exc:
                results.append(RequestRejected(str(exc), "INVALID_ARG"))
                continue
            fit = rules.fit_size(image.shape[0], image.shape[1], min_side, max_side)
            out = runtime.run({gen_in: rules.prepare_image(image, fit)[None]})[gen_out][0]  # [C', PH, PW]
            results.append(rules.encode_png(rules.finish_image(out, fit, image.shape[0], image.shape[1])))
    return results
