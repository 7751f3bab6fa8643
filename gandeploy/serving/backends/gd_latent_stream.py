"""The golden seed → latent check of gandeploy's Triton python-backend models. SELF-CONTAINED: numpy only.

A copy of ``gandeploy.models.latent_stream`` (``tests/serving/test_serving_backends.py`` proves the copies
agree). NumPy does not promise to keep ``Generator.standard_normal``'s stream across versions, so a model that
draws latents from seeds checks four committed draws in ``initialize`` and refuses to load when this server's
NumPy draws differently: the same seed would otherwise give another picture than the one gandeploy checked.
Keep the syntax Python 3.8-compatible (the NGC container's interpreter may be older).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import numpy as np

try:  # beside model.py in a Triton model version directory
    from gd_backend_common import SEED_ROLE, latent_from_seed
except ImportError:  # imported as gandeploy.serving.backends.gd_latent_stream (tests, gandeploy itself)
    from .gd_backend_common import SEED_ROLE, latent_from_seed

GOLDEN_NZ = 6
GOLDEN_NUMPY = "1.26.4"
GOLDEN_LATENTS: Dict[int, Tuple[float, ...]] = {
    0: (0.12573022, -0.13210486, 0.64042264, 0.104900114, -0.5356694, 0.36159506),
    1: (0.34558418, 0.82161814, 0.33043706, -1.3031572, 0.9053559, 0.44637457),
    12345: (-1.423825, 1.2637285, -0.87066174, -0.25917324, -0.0753433, -0.74088466),
    2**63 - 1: (-0.27767184, -1.1454483, 0.9544642, -0.19227232, 1.7535728, -0.7307733),
}


def latent_stream_problem(recorded_numpy: Optional[str] = None) -> Optional[str]:
    """None when this NumPy draws the golden latents bit for bit; else a one-line explanation."""
    for seed, want in GOLDEN_LATENTS.items():
        got = latent_from_seed(seed, GOLDEN_NZ)
        if not np.array_equal(got, np.asarray(want, dtype=np.float32)):
            was = recorded_numpy or GOLDEN_NUMPY
            return ("NumPy %s draws different latents from seeds than NumPy %s (seed %d: %s instead of %s): every "
                    "seed would give a different picture than the export was checked with. Install numpy==%s "
                    "where the server's python backend runs." % (np.__version__, was, seed, got[:3].tolist(),
                                                                 list(want[:3]), was))
    return None


def check_latent_stream(contract: Dict[str, Any], model_name: str) -> None:
    """Raise RuntimeError (Triton marks the model UNAVAILABLE with this message) when the contract serves seeds
    and this NumPy's draws differ from the golden ones; the message names the NumPy the contract recorded."""
    if not any(spec.get("role") == SEED_ROLE for spec in contract.get("inputs", [])):
        return  # image-to-image: no latents drawn
    recorded = (contract.get("latent_stream") or {}).get("numpy")
    problem = latent_stream_problem(recorded)
    if problem is not None:
        raise RuntimeError("model '%s' refuses to load: %s" % (model_name, problem))
