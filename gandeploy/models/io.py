"""The generator tensor contract shared by export, runtimes, serving and parity.

Every generator declares its inputs and outputs as ``TensorSpec``s in ``forward`` argument order, each with a
*role* saying what the tensor is (not what it is called):

| role               | dtype   | shape            | meaning                                                  |
|--------------------|---------|------------------|----------------------------------------------------------|
| ``latent``         | float32 | [N, nz]          | z ~ N(0, I); served from a seed (``latent_from_seed``)   |
| ``class_label``    | int64   | [N]              | a class index in [0, classes)                            |
| ``categorical_code`` | int64 | [N]              | an InfoGAN categorical code in [0, classes)              |
| ``continuous_code``| float32 | [N, M]           | InfoGAN continuous codes, drawn U(low, high) in training |
| ``image`` (input)  | float32 | [N, C, H, W]     | a picture in its ``value_range``; H, W multiples of ``multiple`` |
| ``image`` (output) | float32 | [N, C, sH, sW]   | the picture in its ``value_range``, ``scale`` x the input's size |
| ``points`` (output)| float32 | [N, D]           | generated vectors (2D mixtures)                          |

Image tensors also declare (defaults in brackets, so older manifests read unchanged):

- ``value_range`` [(-1, 1)]: the float range that maps to uint8 0..255 (``to_uint8`` / ``from_uint8``); (0, 1) for
  Real-ESRGAN-style models.
- ``multiple`` [1] on an image *input*: the size rule, H and W multiples of it (CycleGAN 4, the x2 RRDBNet 2,
  a U-Net 2**num_downs). Serving pads (reflect) to it and crops back.
- ``scale`` [1] on an image *output* of an image-to-image generator: output side / input side (4 for x4
  super-resolution).

``gandeploy.contract.ServedContract`` derives every served tensor, request check and feed from these
declarations; nothing else decides behaviour by a tensor's name. ``latent_from_seed`` (with the optional
``truncation``) is *the* seed → latent map on every backend, and ``to_uint8`` / ``from_uint8`` the pixel maps: they
live in ``gandeploy.wire`` (the one file the Triton backends share with the package) and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gandeploy.wire import (  # noqa: F401 - re-exported: the maps every backend shares
    LATENT_ROLE,
    TRUNCATION_MIN,
    TRUNCATION_ROUNDS,
    from_uint8,
    latent_from_seed,
    to_uint8,
)

BATCH, HEIGHT, WIDTH = "N", "H", "W"
HW = tuple[int, int]  # an image size: (height, width)

LATENT = LATENT_ROLE  # the wire's name for it: a latent is served as a seed (gandeploy.wire)
CLASS_LABEL, CATEGORICAL_CODE, CONTINUOUS_CODE, IMAGE, POINTS = (
    "class_label", "categorical_code", "continuous_code", "image", "points")
INPUT_ROLES = (LATENT, CLASS_LABEL, CATEGORICAL_CODE, CONTINUOUS_CODE, IMAGE)
OUTPUT_ROLES = (IMAGE, POINTS)
INDEX_ROLES = (CLASS_LABEL, CATEGORICAL_CODE)  # int64 [N] holding an index in [0, classes)
DEFAULT_RANGE = (-1.0, 1.0)  # an image tensor's value range unless it declares another (tanh outputs)


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: dtype ('float32' | 'int64'), shape with 'N'/'H'/'W' for dynamic axes, and its role.

    ``classes`` bounds the index roles (values 0..classes-1); ``low``/``high`` give a float role's training
    range (continuous codes are drawn U(low, high)); served values outside it are allowed but must be finite.
    """

    name: str
    dtype: str
    shape: tuple[int | str, ...]
    role: str = ""
    classes: int = 0
    low: float | None = None
    high: float | None = None
    value_range: tuple[float, float] = DEFAULT_RANGE  # image roles: the float range of uint8 0..255
    multiple: int = 1  # image inputs: H and W must be multiples of this (the size rule)
    scale: int = 1  # image outputs of image-to-image generators: output side / input side

    def __post_init__(self) -> None:
        if self.role and self.role not in INPUT_ROLES + OUTPUT_ROLES:
            raise ValueError(f"tensor '{self.name}': unknown role '{self.role}'")
        if self.role in INDEX_ROLES and (self.dtype != "int64" or self.classes < 1):
            raise ValueError(f"tensor '{self.name}': role {self.role} needs dtype int64 and classes >= 1")
        lo, hi = (float(v) for v in self.value_range)
        object.__setattr__(self, "value_range", (lo, hi))
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"tensor '{self.name}': value_range must be finite with low < high, "
                             f"got {self.value_range}")
        if int(self.multiple) < 1 or int(self.scale) < 1:
            raise ValueError(f"tensor '{self.name}': multiple and scale must be >= 1")

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    def to_json(self) -> dict[str, Any]:
        """As the manifest writes it: name, dtype, shape ('N'/'H'/'W' strings), role, bounds and, for image
        tensors, ``value_range``, ``multiple`` and ``scale``."""
        data = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "role": self.role,
                **bounds_to_json(self.classes, self.low, self.high)}
        if self.role == IMAGE:
            data.update(value_range=list(self.value_range), multiple=int(self.multiple), scale=int(self.scale))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TensorSpec:
        """Inverse of ``to_json`` (raises KeyError / TypeError / ValueError on a malformed entry); the image
        fields default as documented, so manifests written before they existed read unchanged."""
        value_range = tuple(float(v) for v in data.get("value_range", DEFAULT_RANGE))
        if len(value_range) != 2:
            raise ValueError(f"value_range must hold two numbers, got {data.get('value_range')}")
        return cls(str(data["name"]), str(data["dtype"]), tuple(data["shape"]), str(data.get("role", "")),
                   *bounds_from_json(data), value_range=value_range,  # type: ignore[arg-type]
                   multiple=int(data.get("multiple", 1)), scale=int(data.get("scale", 1)))


def bounds_to_json(classes: int, low: float | None, high: float | None) -> dict[str, Any]:
    """A role's bounds as JSON, in the manifest and the served contract alike: ``classes`` when set,
    ``low``/``high`` when set."""
    data: dict[str, Any] = {"classes": classes} if classes else {}
    if low is not None:
        data["low"], data["high"] = low, high
    return data


def bounds_from_json(data: Mapping[str, Any]) -> tuple[int, float | None, float | None]:
    """Inverse of ``bounds_to_json``: (classes, low, high), 0 / None where absent."""
    low, high = data.get("low"), data.get("high")
    return int(data.get("classes", 0)), None if low is None else float(low), None if high is None else float(high)


# --- constructors the model files use ------------------------------------------------------------------------


def latent(nz: int, name: str = "z") -> TensorSpec:
    return TensorSpec(name, "float32", (BATCH, int(nz)), LATENT)


def class_label(num_classes: int, name: str = "label") -> TensorSpec:
    return TensorSpec(name, "int64", (BATCH,), CLASS_LABEL, classes=int(num_classes))


def categorical_code(n_cat: int, name: str = "code") -> TensorSpec:
    return TensorSpec(name, "int64", (BATCH,), CATEGORICAL_CODE, classes=int(n_cat))


def continuous_code(n_cont: int, low: float = -1.0, high: float = 1.0, name: str = "continuous") -> TensorSpec:
    return TensorSpec(name, "float32", (BATCH, int(n_cont)), CONTINUOUS_CODE, low=float(low), high=float(high))


def image_input(channels: int, name: str = "image", *, multiple: int = 1,
                value_range: tuple[float, float] = DEFAULT_RANGE) -> TensorSpec:
    """A picture input [N, C, H, W] with dynamic H, W (multiples of ``multiple``) in ``value_range``."""
    return TensorSpec(name, "float32", (BATCH, int(channels), HEIGHT, WIDTH), IMAGE, multiple=int(multiple),
                      value_range=value_range)


def image_output(channels: int, height: int | str = HEIGHT, width: int | str = WIDTH,
                 name: str = "output", *, scale: int = 1, value_range: tuple[float, float] = DEFAULT_RANGE,
                 ) -> TensorSpec:
    """A picture output [N, C, H, W] in ``value_range``; image-to-image outputs are ``scale`` x the input."""
    return TensorSpec(name, "float32", (BATCH, int(channels), height, width), IMAGE, scale=int(scale),
                      value_range=value_range)


def points_output(dim: int, name: str = "output") -> TensorSpec:
    return TensorSpec(name, "float32", (BATCH, int(dim)), POINTS)


@dataclass(frozen=True)
class GeneratorIO:
    """Inputs and outputs of one generator, in ``forward`` argument order."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def __post_init__(self) -> None:
        for spec in self.inputs:
            if spec.role not in INPUT_ROLES:
                raise ValueError(f"generator input '{spec.name}' needs a role from {INPUT_ROLES}")
        for spec in self.outputs:
            if spec.role not in OUTPUT_ROLES:
                raise ValueError(f"generator output '{spec.name}' needs a role from {OUTPUT_ROLES}")

    @property
    def task(self) -> str:
        """'translation' when a picture goes in, else 'sampling' (recorded in manifests and metadata)."""
        return "translation" if self.by_role(IMAGE) else "sampling"

    def by_role(self, role: str) -> tuple[TensorSpec, ...]:
        """The inputs with ``role``, in order."""
        return tuple(t for t in self.inputs if t.role == role)

    @property
    def image_input(self) -> TensorSpec | None:
        """The picture input (None for sampling generators)."""
        found = self.by_role(IMAGE)
        return found[0] if found else None

    @property
    def scale(self) -> int:
        """Output side / input side of an image-to-image generator (1 for same-size and sampling ones)."""
        return int(self.outputs[0].scale)

    @property
    def size_multiple(self) -> int:
        """The size rule of the picture input: H and W multiples of this (1 when it has none)."""
        image = self.image_input
        return int(image.multiple) if image is not None else 1

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def to_json(self) -> dict[str, Any]:
        return {"inputs": [t.to_json() for t in self.inputs], "outputs": [t.to_json() for t in self.outputs]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GeneratorIO:
        return cls(tuple(TensorSpec.from_json(t) for t in data["inputs"]),
                   tuple(TensorSpec.from_json(t) for t in data["outputs"]))


def latents_from_seeds(seeds: np.ndarray | list[int], nz: int, truncation: float | None = None) -> np.ndarray:
    """Stack ``latent_from_seed`` for each seed: float32 [len(seeds), nz]."""
    return np.stack([latent_from_seed(int(s), nz, truncation) for s in seeds]).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation from ``a`` to ``b`` (float [D] each): float32 [steps, D], ends exact."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = float(np.dot(a64, b64) / (np.linalg.norm(a64) * np.linalg.norm(b64) + 1e-12))
    omega = float(np.arccos(np.clip(cos, -1.0, 1.0)))
    ts = np.linspace(0.0, 1.0, steps)
    if omega < 1e-6:  # (anti)parallel: plain linear interpolation
        rows = [(1 - t) * a64 + t * b64 for t in ts]
    else:
        rows = [(np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega) for t in ts]
    out = np.stack(rows).astype(np.float32)
    out[0], out[-1] = a, b
    return out


def concrete_shape(spec: TensorSpec, batch: int, image_hw: HW | None = None) -> tuple[int, ...]:
    """``spec.shape`` with 'N' → ``batch`` and 'H'/'W' → ``image_hw``."""
    shape = []
    for dim in spec.shape:
        if dim == BATCH:
            shape.append(batch)
        elif dim in (HEIGHT, WIDTH):
            if image_hw is None:
                raise ValueError(f"input '{spec.name}' has dynamic {dim}: pass image_hw")
            shape.append(image_hw[0] if dim == HEIGHT else image_hw[1])
        else:
            shape.append(int(dim))
    return tuple(shape)


def example_inputs(io: GeneratorIO, batch: int, *, image_hw: HW | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic random inputs matching ``io`` (by role) for export checks and benchmarks."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in io.inputs:
        shape = concrete_shape(spec, batch, image_hw)
        if spec.role in INDEX_ROLES:
            feeds[spec.name] = rng.integers(0, spec.classes, size=shape, dtype=np.int64)
        elif spec.role == LATENT:
            feeds[spec.name] = rng.standard_normal(shape).astype(np.float32)
        elif spec.role == CONTINUOUS_CODE:
            feeds[spec.name] = rng.uniform(spec.low, spec.high, size=shape).astype(np.float32)
        else:  # pictures: uniform over their declared value range
            feeds[spec.name] = rng.uniform(*spec.value_range, size=shape).astype(np.float32)
    return feeds
