"""The generator tensor contract shared by export, runtimes, serving and parity.

Every generator's ``forward`` takes its inputs in the order listed here and returns one tensor ``output``:

| task        | inputs                                                     | output                              |
|-------------|------------------------------------------------------------|-------------------------------------|
| sampling    | ``z`` float32 [N, nz]; CGAN also ``label`` int64 [N]       | ``output`` float32 [N, C, H, W] in [-1, 1] (2D-data MLP: [N, D]) |
| translation | ``image`` float32 [N, C, H, W] in [-1, 1], H and W multiples of 4 | ``output`` float32 [N, C, H, W] in [-1, 1] |

Served models add a seed: ``latent_from_seed`` is *the* seed → latent map on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BATCH, HEIGHT, WIDTH = "N", "H", "W"
HW = tuple[int, int]  # an image size: (height, width)


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: dtype ('float32' | 'int64') and shape, with 'N'/'H'/'W' for dynamic axes."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}


@dataclass(frozen=True)
class GeneratorIO:
    """Inputs and outputs of one generator, in ``forward`` argument order."""

    task: str  # "sampling" | "translation"
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)


def latent_from_seed(seed: int, nz: int) -> np.ndarray:
    """The latent vector for ``seed``: ``nz`` standard normals from NumPy's PCG64 (``default_rng(seed)``).

    float64 draws cast to float32, shape [nz]. Seeds are integers in [0, 2**63 - 1]. This is the documented
    source of randomness: the Triton ensemble, the client and the parity suite all call it (or its copy in the
    self-contained Triton backend), so one seed gives one picture on every backend.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(int(seed)).standard_normal(int(nz)).astype(np.float32)


def latents_from_seeds(seeds: np.ndarray | list[int], nz: int) -> np.ndarray:
    """Stack ``latent_from_seed`` for each seed: float32 [len(seeds), nz]."""
    return np.stack([latent_from_seed(int(s), nz) for s in seeds]).astype(np.float32)


def example_inputs(io: GeneratorIO, batch: int, *, image_hw: tuple[int, int] | None = None,
                   num_classes: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic inputs matching ``io`` for export checks, parity and benchmarks."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in io.inputs:
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
        if spec.dtype == "int64":
            feeds[spec.name] = rng.integers(0, max(num_classes, 1), size=shape, dtype=np.int64)
        elif spec.name == "z":
            feeds[spec.name] = rng.standard_normal(shape).astype(np.float32)
        else:
            feeds[spec.name] = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    return feeds


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Generator output in [-1, 1], [N, C, H, W] float → uint8 [N, H, W, C]: ``rint((x + 1) * 127.5)``, clipped.

    One uint8 level is 1/127.5 ≈ 0.0078 in tanh space. Served images use exactly this map.
    """
    hwc = np.transpose(np.asarray(images, dtype=np.float32), (0, 2, 3, 1))
    return np.clip(np.rint((hwc + 1.0) * 127.5), 0, 255).astype(np.uint8)


def from_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, C] → float32 [N, C, H, W] in [-1, 1]: ``x / 127.5 - 1`` (inverse of ``to_uint8``)."""
    chw = np.transpose(np.asarray(images), (0, 3, 1, 2)).astype(np.float32)
    return chw / 127.5 - 1.0
