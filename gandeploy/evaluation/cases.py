"""Parity and benchmark cases: deterministic inputs that exercise every input a generator declares.

The default fill of the served contract (``ServedContract.values``) sets continuous codes to the centre of their
range; a case spreads them over their training range instead, so parity, benchmarks, load tests and evaluation
samples exercise every input. Class labels and categorical codes are ``seed % classes`` as in the default fill;
continuous codes of seed s are ``default_rng(CASE_SALT + s).uniform(low, high)``; latents come from the seeds
(``latent_from_seed``) through the contract's own feeds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from gandeploy.contract import ServedContract
from gandeploy.models import io as gio

CASE_SALT = 7_919  # case_values: continuous codes of seed s come from default_rng(CASE_SALT + s)


def case_values(contract: ServedContract, seeds: Iterable[int]) -> dict[str, np.ndarray | None]:
    """Every served non-image input for ``seeds`` (the contract's ``values``, checked): indices
    ``seed % classes``; continuous codes ``default_rng(CASE_SALT + seed).uniform(low, high)``."""
    seed_arr = np.asarray(list(seeds), dtype=np.int64).reshape(-1)
    given: dict[str, Any] = {}
    for t in contract.inputs:
        if t.role == gio.CONTINUOUS_CODE:
            lo, hi = (t.low, t.high) if t.low is not None else (-1.0, 1.0)
            given[t.name] = np.stack([np.random.default_rng(CASE_SALT + int(s)).uniform(lo, hi, t.dims)
                                      for s in seed_arr]).astype(np.float32)  # [N, *dims]
    return contract.values(seed_arr, **given)


def case_io(contract: ServedContract, seeds: Iterable[int], images: np.ndarray | None = None,
         ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(generator feeds, served request) of one deterministic case: ``case_values`` of ``seeds``, or the
    pictures ``images`` (uint8 [N, H, W, C]) for an image-to-image generator."""
    if contract.translation:
        return contract.generator_feeds(images=images), contract.request(images=images)
    vals = case_values(contract, seeds)
    return contract.feeds_from_values(vals), {k: v for k, v in vals.items() if v is not None}
