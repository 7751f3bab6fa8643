"""The golden seed → latent check in-process: served pictures depend on NumPy's ``Generator`` stream, which NumPy
does not promise to keep across versions (NEP 19 only keeps the bit generators, not ``standard_normal``).

The golden draws (``GOLDEN_LATENTS``, ``latent_from_seed(seed, 6)`` for four fixed seeds, computed with NumPy
1.26.4 and committed) and ``latent_stream_problem`` live in ``gandeploy.wire``, the file the Triton python
backends import as ``gd_wire``. Every place that turns seeds into latents checks them once before it starts (the
backends in ``initialize``, the in-process runtimes, the served contract when it is written) and refuses to load
when this NumPy draws differently: a seed would otherwise give a different picture than the one the export was
checked with. The served contract records the NumPy version (``latent_stream_record``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from gandeploy.errors import ServingError
from gandeploy.wire import GOLDEN_LATENTS, GOLDEN_NUMPY, GOLDEN_NZ, latent_stream_problem  # noqa: F401 - re-exported


@functools.lru_cache(maxsize=1)
def _problem_once() -> str | None:
    return latent_stream_problem()


def check_latent_stream(where: str) -> None:
    """Raise ``ServingError`` naming ``where`` when this NumPy's seed → latent draws differ from the golden ones
    (checked once per process)."""
    problem = _problem_once()
    if problem is not None:
        raise ServingError(f"{where} refuses to load: {problem}")


def latent_stream_record() -> dict[str, Any]:
    """What the served contract records: the NumPy version that draws the latents, and the golden draws."""
    return {"numpy": np.__version__, "nz": GOLDEN_NZ,
            "golden": {str(seed): list(values) for seed, values in GOLDEN_LATENTS.items()}}
