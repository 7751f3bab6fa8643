"""The served tensors of the contract (``gandeploy.contract``): their names, ``ServedTensor``, and the value
check every served non-picture input goes through (client, CLI, local backends; the Triton backends apply
the same rules to the contract JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gandeploy.errors import UserInputError
from gandeploy.models import io as gio
from gandeploy.models.io import TensorSpec

SEED_MAX = 2**63 - 1
SEED, TRUNCATION = "seed", "truncation"  # served-only roles (the latent's two served inputs)
# generator input role -> (served name, served dtype); the latent is served as a seed (+ optional truncation)
SERVED_INPUTS = {gio.CLASS_LABEL: ("label", "int64"), gio.CATEGORICAL_CODE: ("code", "int64"),
                 gio.CONTINUOUS_CODE: ("continuous", "float32")}
BYTES_NAME, IMAGE_NAME, POINTS_NAME = "image_bytes", "image", "sample"


@dataclass(frozen=True)
class ServedTensor:
    """One Triton tensor: name, dtype (float32 | int64 | uint8 | bytes), dims without the batch axis (-1:
    dynamic), and what it means: ``role`` (a generator role, ``seed`` or ``truncation``), the generator input
    it ``feeds``, its bounds (``classes`` for indices; ``low``/``high``: the training range) and ``optional``."""

    name: str
    dtype: str
    dims: tuple[int, ...]
    reshape: tuple[int, ...] | None = None  # () feeds a [N, 1] tensor to the graph as [N]
    optional: bool = False
    role: str = ""
    feeds: str = ""
    classes: int = 0
    low: float | None = None
    high: float | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "dims": list(self.dims), "role": self.role,
                                "feeds": self.feeds, "optional": self.optional}
        if self.reshape is not None:
            data["reshape"] = list(self.reshape)
        return {**data, **gio.bounds_to_json(self.classes, self.low, self.high)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServedTensor:
        reshape = data.get("reshape")
        return cls(str(data["name"]), str(data["dtype"]), tuple(int(d) for d in data["dims"]),
                   None if reshape is None else tuple(int(d) for d in reshape), bool(data.get("optional", False)),
                   str(data.get("role", "")), str(data.get("feeds", "")), *gio.bounds_from_json(data))

    def signature(self) -> dict[str, Any]:
        """``{"name", "dtype", "dims"}`` (+ ``"optional"``), as repository records list tensors."""
        return {"name": self.name, "dtype": self.dtype, "dims": list(self.dims),
                **({"optional": True} if self.optional else {})}


def served_dims(spec: TensorSpec) -> tuple[int, ...]:
    return tuple(-1 if isinstance(d, str) else int(d) for d in spec.shape[1:])


def check_values(t: ServedTensor, arr: np.ndarray) -> np.ndarray:
    """One served non-bytes input: dtype kind, shape [N, *dims], range / finiteness (UserInputError)."""
    if t.dtype == "int64":
        if arr.dtype.kind not in "iu":
            raise UserInputError(f"input '{t.name}' must hold integers (INT64), got {arr.dtype}.")
        arr = arr.astype(np.int64)
    else:
        if arr.dtype.kind not in "fiu":
            raise UserInputError(f"input '{t.name}' must hold numbers (FP32), got {arr.dtype}.")
        arr = arr.astype(np.float32)
    if arr.ndim == 1 and t.dims == (1,):
        arr = arr[:, None]
    if arr.ndim != len(t.dims) + 1 or tuple(arr.shape[1:]) != t.dims:
        raise UserInputError(f"input '{t.name}' must have shape [N, {', '.join(map(str, t.dims))}], got "
                             f"{list(arr.shape)}.")
    if t.role == SEED and arr.size and int(arr.min()) < 0:
        raise UserInputError(f"input 'seed' must be in [0, 2**63 - 1], got {int(arr.min())}.")
    if t.classes:
        bad = arr[(arr < 0) | (arr >= t.classes)]
        if bad.size:
            raise UserInputError(f"input '{t.name}' must be in [0, {t.classes - 1}] ({t.classes} classes), got "
                                 f"{int(bad[0])}.")
    if arr.dtype == np.float32 and not np.all(np.isfinite(arr)):
        raise UserInputError(f"input '{t.name}' holds NaN or infinite values.")
    if t.role == TRUNCATION and arr.size and arr.min() < np.float32(gio.TRUNCATION_MIN):
        raise UserInputError(f"input 'truncation' must be a finite number >= {gio.TRUNCATION_MIN}, got "
                             f"{float(arr.min())} (smaller values would redraw the latent for ~1/t rounds).")
    return arr
