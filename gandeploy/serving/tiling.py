"""The served image-to-image pipeline's settings for one export, and the pipeline itself run in-process.

``pipeline_settings`` is what ``gandeploy repo`` writes into the ``<name>`` pipeline's config (minimum padded size
per axis, tile sides, overlap; ``gandeploy.contract_images.tile_plan`` decides the tiling) and what the
in-process path (``serving/local.py``) and parity use, so all three tile a picture the same way.
``run_pictures`` runs pictures through ``backends/gd_pictures.py`` — the served pipeline's own file — on any
batch function (an in-process runtime).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gandeploy.contract import ServedContract
from gandeploy.contract_images import TilePlan, receptive_note, receptive_radius, tile_plan
from gandeploy.errors import GanDeployError, RequestRejected, ServingError, UserInputError
from gandeploy.serving.ngc import SideLimits, pipeline_limits
from gandeploy.wire import encode_png


@dataclass(frozen=True)
class PipelineSettings:
    """Where pictures of one export run: the generator's size limits and the tiling."""

    limits: SideLimits
    plan: TilePlan
    radius: int | None  # the measured receptive-field radius the export records (None: not measured / unbounded)
    note: str = ""  # why tiles may not stitch seamlessly ("" when the field is measured and bounded)

    def params(self) -> dict[str, int]:
        """The pipeline's config parameters (``translate_pipeline.py``; ``gd_pictures.Job`` reads them)."""
        return {"min_height": self.limits.min_height, "min_width": self.limits.min_width, **self.plan.params()}

    def to_json(self) -> dict[str, Any]:
        return {**self.plan.to_json(), "receptive_field_radius": self.radius,
                "min_size": [self.limits.min_height, self.limits.min_width],
                "max_size": [self.limits.max_height, self.limits.max_width]}


def pipeline_settings(manifest: Mapping[str, Any], contract: ServedContract, *, tile: int | None = None,
                      overlap: int | None = None) -> PipelineSettings:
    """The settings of an export's picture pipeline (``tile`` / ``overlap``: ``--tile`` / ``--tile-overlap``)."""
    rules = contract.images
    if rules is None:
        raise UserInputError("--tile applies to image-to-image models only.")
    limits = pipeline_limits(manifest, contract.io.inputs)
    radius = receptive_radius(manifest)
    plan = tile_plan(rules, max_batch=contract.max_batch, radius=radius,
                     min_hw=(limits.min_height, limits.min_width), max_hw=(limits.max_height, limits.max_width),
                     tile=tile, overlap=overlap)
    return PipelineSettings(limits, plan, radius, receptive_note(manifest))


def run_pictures(blobs: Sequence[bytes], contract: ServedContract, params: Mapping[str, int],
                 run_batch: Callable[[np.ndarray], np.ndarray], *, max_pixels: int,
                 max_batch: int | None = None) -> list[bytes | GanDeployError]:
    """PNG bytes of each picture through the served pipeline's rules, in-process; a picture the server would
    refuse gets a ``RequestRejected`` (INVALID_ARG) in its slot, a runtime failure a ``ServingError``."""
    from gandeploy.serving.backends import gd_pictures as pictures  # the served pipeline's own rules

    rules = contract.images.to_json()  # type: ignore[union-attr]
    slots: list[Any] = []
    jobs = []
    for blob in blobs:
        try:
            picture = pictures.decode_picture(blob, max_pixels=max_pixels, scale=rules["scale"],
                                              name=contract.inputs[0].name)
        except pictures.PictureError as exc:
            slots.append(RequestRejected(str(exc), "INVALID_ARG"))
            continue
        jobs.append(pictures.Job(picture, rules, dict(params)))
        slots.append(jobs[-1])
    pictures.run_jobs(jobs, run_batch, max_batch or contract.max_batch)
    return [slot if isinstance(slot, GanDeployError) else
            ServingError(f"the generator failed: {slot.error}") if slot.error is not None else encode_png(slot.result())
            for slot in slots]
