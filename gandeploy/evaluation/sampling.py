"""Where evaluated samples come from: a run dir, an export dir on any backend, or a served model — same seeds,
same inputs, on every one of them.

``generator_feeds`` is the one seed → generator-input map, built from the *declared* input roles
(``gandeploy.models.io``), never from tensor names. It has the signature the contract module's
``ServedContract.generator_feeds(seeds, ...)`` is to offer, so it can be swapped for that one call.

Image outputs are passed through the one uint8 map (``to_uint8`` → ``from_uint8``) on every backend, because
served users receive uint8 pixels; points stay float.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.errors import UserInputError
from gandeploy.models.io import (CLASS_LABEL, CONTINUOUS_CODE, IMAGE, INDEX_ROLES, LATENT,
                                 GeneratorIO, from_uint8, latents_from_seeds, to_uint8)
from gandeploy.utils.logging import get_logger

log = get_logger("evaluation.sampling")

CODE_STREAM = 0x636F6465  # a second PCG64 stream per seed ("code") for InfoGAN's continuous codes
CHUNK = 256


def generator_feeds(io: GeneratorIO, seeds: Sequence[int] | np.ndarray, classes: int | Sequence[int] | None = None,
                    truncation: float | None = None) -> dict[str, np.ndarray]:
    """Generator inputs for ``seeds`` [N], by role.

    latent: ``latents_from_seeds``; class label: ``classes`` (one int or one per seed), else ``seed mod K`` so
    that consecutive seeds cycle through the classes; categorical code: ``seed mod K``; continuous code:
    U(low, high) from the seed's second PCG64 stream. Image inputs are not seed-driven (translation models take
    pictures): asking for them is an error.
    """
    seed_arr = np.asarray(seeds, dtype=np.int64).reshape(-1)
    if seed_arr.size == 0 or (seed_arr < 0).any():
        raise UserInputError("seeds must be one or more integers in [0, 2**63 - 1] (--seed / --n).")
    feeds: dict[str, np.ndarray] = {}
    for spec in io.inputs:
        if spec.role == LATENT:
            feeds[spec.name] = latents_from_seeds(seed_arr, int(spec.shape[1]), truncation)  # [N, nz]
        elif spec.role == CLASS_LABEL and classes is not None:
            labels = np.broadcast_to(np.asarray(classes, dtype=np.int64).reshape(-1), seed_arr.shape).copy()
            if (labels < 0).any() or (labels >= spec.classes).any():
                raise UserInputError(f"class labels must lie in [0, {spec.classes}), got {labels.min()}..{labels.max()}.")
            feeds[spec.name] = labels  # [N]
        elif spec.role in INDEX_ROLES:
            feeds[spec.name] = seed_arr % spec.classes  # [N]
        elif spec.role == CONTINUOUS_CODE:
            low, high = spec.low if spec.low is not None else -1.0, spec.high if spec.high is not None else 1.0
            feeds[spec.name] = np.stack([np.random.default_rng((int(s), CODE_STREAM)).uniform(low, high, int(spec.shape[1]))
                                         for s in seed_arr]).astype(np.float32)  # [N, M]
        elif spec.role == IMAGE:
            raise UserInputError(f"input '{spec.name}' is a picture: translation models are evaluated on images, "
                                 "not seeds.")
    return feeds


def as_delivered(out: np.ndarray) -> np.ndarray:
    """Images [N, C, H, W] through the served uint8 map (what users receive); points [N, D] unchanged."""
    out = np.asarray(out, dtype=np.float32)
    return from_uint8(to_uint8(out)) if out.ndim == 4 else out


@dataclass
class Source:
    """One way of running the generator: ``backend`` (a FORMATS key, or ``served``) and its IO declaration."""

    backend: str
    io: GeneratorIO
    runtime: Any = None  # a gandeploy.runtimes.base.Runtime
    served_name: str | None = None
    served: dict[str, Any] = field(default_factory=dict)  # url, protocol

    @property
    def class_input(self) -> Any:
        found = self.io.by_role(CLASS_LABEL)
        return found[0] if found else None

    @property
    def num_classes(self) -> int:
        spec = self.class_input
        return int(spec.classes) if spec is not None else 0

    def sample(self, seeds: np.ndarray, classes: np.ndarray | None = None, progress: Any = None) -> np.ndarray:
        """Generated samples for ``seeds`` [N] (and class labels [N]) as delivered: [N, C, H, W] or [N, D]."""
        parts = []
        for start in range(0, len(seeds), CHUNK):
            s = seeds[start:start + CHUNK]
            c = classes[start:start + CHUNK] if classes is not None else None
            if self.runtime is not None:
                out = self.runtime.run(generator_feeds(self.io, s, c))
                parts.append(as_delivered(out[self.io.outputs[0].name]))
            else:
                parts.append(self._served_sample(s, c))
            if progress is not None:
                progress.update(len(s))
        return np.concatenate(parts)

    def translate(self, images: np.ndarray, progress: Any = None) -> np.ndarray:
        """Translated pictures for ``images`` [N, C, H, W] in [-1, 1], as delivered."""
        if self.runtime is None:
            raise UserInputError("served image-to-image models are evaluated through their export: pass the export "
                                 "dir with --backend triton.")
        (spec,) = self.io.by_role(IMAGE)
        parts = []
        for start in range(0, len(images), CHUNK // 4):
            x = np.ascontiguousarray(images[start:start + CHUNK // 4], dtype=np.float32)
            parts.append(as_delivered(self.runtime.run({spec.name: x})[self.io.outputs[0].name]))
            if progress is not None:
                progress.update(len(x))
        return np.concatenate(parts)

    def _served_sample(self, seeds: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
        from gandeploy.serving.client import sample

        labels = None
        if self.class_input is not None:
            labels = generator_feeds(self.io, seeds, classes)[self.class_input.name]
        out = sample(str(self.served_name), seeds.tolist(), labels, **self.served)
        return from_uint8(out) if out.dtype == np.uint8 else np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.close()


def open_source(target: str | os.PathLike[str], backend: str | None = None, *, url: str | None = None,
                protocol: str = "grpc") -> tuple[Source, Any]:
    """(source, RunConfig or None) for a run dir, an export dir (+ ``backend``) or a served model name."""
    from gandeploy.config import load_run_config
    from gandeploy.registry import get_model
    from gandeploy.runtimes.base import open_runtime

    path = Path(target)
    if path.is_dir():
        run = load_run_config(path)
        io = get_model(run.model).io(run.arch)
        is_export = (path / "manifest.json").is_file()
        key = backend or ("onnxruntime" if is_export else "torch")
        if not is_export and key != "torch":
            raise UserInputError(f"'{path}' is a run dir: --backend {key} needs an export dir ('gandeploy export "
                                 f"{path}' first), or drop --backend.")
        options = {"url": url, "protocol": protocol} if key.startswith("triton") else {}
        if key == "triton-ensemble":
            raise UserInputError("--backend triton-ensemble: pass the served model's name as TARGET with --url.")
        return Source(key, io, runtime=open_runtime(key, path, **options)), run
    if "/" in str(target) or path.exists():  # served names never hold '/' (serving/contract.py NAME_RE)
        raise UserInputError(f"TARGET '{target}' is not a directory: pass a run dir, an export dir, or the name of "
                             "a served model (with --url).")
    if backend not in (None, "served"):
        raise UserInputError(f"TARGET '{target}' is not a directory: as a served model name it takes no --backend "
                             f"(got {backend}); pass an export dir for --backend {backend}.")
    return _served_source(str(target), url, protocol), None


def _served_source(name: str, url: str | None, protocol: str) -> Source:
    """A served sampling model; its IO is rebuilt from the metadata ``gandeploy repo`` writes into its config."""
    from gandeploy.models.io import class_label, image_output, latent, points_output
    from gandeploy.serving.client import TritonClient

    with TritonClient(url, protocol) as client:
        params = {k: v.get("string_value") for k, v in client.config(name).get("parameters", {}).items()}
        gen_meta = client.metadata(f"{name}_generator")
    if params.get("gandeploy_task") != "sampling":
        raise UserInputError(f"served model '{name}' is not a gandeploy sampling model (task "
                             f"{params.get('gandeploy_task')!r}); evaluate image-to-image models through their "
                             "export dir with --backend triton.")
    nz, k = int(params.get("nz") or 0), int(params.get("num_classes") or 0)
    out_shape = gen_meta["outputs"][0]["shape"]  # [-1, C, H, W] or [-1, D]
    out = points_output(out_shape[1]) if len(out_shape) == 2 else image_output(*out_shape[1:4])
    io = GeneratorIO((latent(nz),) + ((class_label(k),) if k else ()), (out,))
    return Source("served", io, served_name=name, served={"url": url, "protocol": protocol})
