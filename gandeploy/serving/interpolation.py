"""Latent interpolation computed on the client (``sample --interpolate``, the web page's strip, the Python
API's ``interpolate``): the served ``NAME`` takes seeds, so the slerped latents go to the raw ``NAME_generator``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gandeploy.contract import ServedContract
from gandeploy.models import io as gio


def interpolation_feeds(contract: ServedContract, seed_a: int, seed_b: int, steps: int,
                        given: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The raw ``NAME_generator`` request of a latent interpolation (``sample --interpolate``, the web page's
    strip), computed on the client: ``steps`` slerped latents between the two seeds' latents
    (with ``given``'s truncation), every other generator input at its ``given`` value; int64 [N] inputs as
    [N, 1] (their Triton dims)."""
    feeds_a = contract.generator_feeds([seed_a], **given)
    feeds_b = contract.generator_feeds([seed_b], **given)
    out: dict[str, np.ndarray] = {}
    for g, served in zip(contract.io.inputs, contract.generator_inputs, strict=True):
        if g.role == gio.LATENT:
            value = gio.slerp(feeds_a[g.name][0], feeds_b[g.name][0], steps)  # [steps, nz]
        else:
            value = np.repeat(feeds_a[g.name][:1], steps, axis=0)  # [steps, ...]
        out[served.name] = value.reshape(steps, *served.dims).astype(served.dtype)
    return out
