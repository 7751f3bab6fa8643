"""The golden seed → latent draws: served pictures depend on NumPy's ``Generator`` stream, which NumPy does not
promise to keep across versions (NEP 19 only keeps the bit generators, not ``standard_normal``).

``GOLDEN_LATENTS`` are ``latent_from_seed(seed, 6)`` for four fixed seeds, computed with NumPy 1.26.4 and
committed. Every place that turns seeds into latents checks them once before it starts (the Triton python
backends through their copy in ``serving/backends/gd_backend_common.py``, the in-process runtimes, the served
contract when it is written) and refuses to load when this NumPy draws differently: a seed would otherwise give
a different picture than the one the export was checked with. The served contract records the NumPy version
(``latent_stream_record``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from gandeploy.errors import ServingError
from gandeploy.models.io import latent_from_seed

GOLDEN_NZ = 6
GOLDEN_NUMPY = "1.26.4"  # the NumPy that computed GOLDEN_LATENTS
GOLDEN_LATENTS: dict[int, tuple[float, ...]] = {
    0: (0.12573022, -0.13210486, 0.64042264, 0.104900114, -0.5356694, 0.36159506),
    1: (0.34558418, 0.82161814, 0.33043706, -1.3031572, 0.9053559, 0.44637457),
    12345: (-1.423825, 1.2637285, -0.87066174, -0.25917324, -0.0753433, -0.74088466),
    2**63 - 1: (-0.27767184, -1.1454483, 0.9544642, -0.19227232, 1.7535728, -0.7307733),
}


def latent_stream_problem(recorded_numpy: str | None = None) -> str | None:
    """None when this NumPy draws the golden latents bit for bit; else a one-line explanation."""
    for seed, want in GOLDEN_LATENTS.items():
        got = latent_from_seed(seed, GOLDEN_NZ)
        if not np.array_equal(got, np.asarray(want, dtype=np.float32)):
            was = recorded_numpy or GOLDEN_NUMPY
            return (f"NumPy {np.__version__} draws different latents from seeds than NumPy {was} (seed {seed}: "
                    f"{got[:3].tolist()} instead of {list(want[:3])}): every seed would give a different picture "
                    f"than the export was checked with. Install numpy=={was} in this environment.")
    return None


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
