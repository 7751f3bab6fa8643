"""The served tensors of the contract (``gandeploy.contract``): their names, ``ServedTensor``, and the value
check every served non-picture input goes through (client, CLI, local backends). The rules themselves are
``gandeploy.wire.check_served``, the same function the Triton backends apply to the contract JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gandeploy import wire
from gandeploy.errors import UserInputError
from gandeploy.models import io as gio
from gandeploy.models.io import TensorSpec
from gandeploy.wire import SEED_MAX  # noqa: F401 - re-exported

SEED, TRUNCATION = wire.SEED_ROLE, wire.TRUNCATION_ROLE  # served-only roles (the latent's two served inputs)
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
    """One served non-bytes input, client side: numbers of another kind become the declared dtype and a flat
    array of a one-value input becomes [N, 1]; then the server's own rules (``wire.check_served``: shape
    [N, *dims], range, finiteness) apply. A breach is a ``UserInputError`` with the server's message."""
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
    try:
        return wire.check_served(arr, t.to_json())
    except wire.RequestError as exc:
        raise UserInputError(f"{exc}.") from None
