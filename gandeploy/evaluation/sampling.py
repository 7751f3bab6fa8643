"""Where evaluated samples come from: a run dir, an export dir on any backend, or a served model — same seeds,
same inputs, on every one of them.

``seed_values`` is the one seed → input map, taken from the served contract (``gandeploy/contract.py``, built
from the *declared* input roles, never from tensor names): class labels and categorical codes ``seed mod K``
(or the given class), continuous codes drawn U(low, high) per seed (``cases.case_values``), latents
``latent_from_seed``. The same values become the generator's feeds (``ServedContract.feeds_from_values``) for
local backends and the served request for a served model.

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

from gandeploy.contract import DATASET_PARAMETER, SEED, ServedContract
from gandeploy.errors import UserInputError
from gandeploy.evaluation.cases import case_values
from gandeploy.models.io import CLASS_LABEL, IMAGE, GeneratorIO, from_uint8, to_uint8
from gandeploy.utils.logging import get_logger

log = get_logger("evaluation.sampling")

CHUNK = 256


def seed_values(contract: ServedContract, seeds: Sequence[int] | np.ndarray,
                classes: int | Sequence[int] | np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The served non-image inputs for ``seeds`` [N] (``classes`` overrides the class-label role's fill)."""
    if contract.translation:
        raise UserInputError("translation models are evaluated on pictures, not seeds.")
    seed_arr = np.asarray(seeds, dtype=np.int64).reshape(-1)
    if seed_arr.size == 0 or (seed_arr < 0).any():
        raise UserInputError("seeds must be one or more integers in [0, 2**63 - 1] (--seed / --n).")
    vals = case_values(contract, seed_arr)
    if classes is not None:
        label = next((t for t in contract.inputs if t.role == CLASS_LABEL), None)
        if label is None:
            raise UserInputError("this model takes no class label.")
        given = _given(contract, vals)
        given[label.name] = np.broadcast_to(np.asarray(classes, dtype=np.int64).reshape(-1), seed_arr.shape)
        vals = contract.values(seed_arr, **given)
    return {k: v for k, v in vals.items() if v is not None}


def _given(contract: ServedContract, vals: dict[str, Any]) -> dict[str, Any]:
    """``vals`` without the seed (which ``values`` / ``sample`` take positionally)."""
    seed_names = {t.name for t in contract.inputs if t.role == SEED}
    return {k: v for k, v in vals.items() if k not in seed_names and v is not None}


def role_values(io: GeneratorIO, seeds: Sequence[int] | np.ndarray, role: str) -> np.ndarray | None:
    """What the seed map feeds the (first) input of ``role`` for ``seeds`` [N] (None when there is none): e.g.
    the categorical code ``seed mod K`` the samples of ``Source.sample(seeds)`` were drawn with."""
    contract = ServedContract.from_io(io, max_batch=max(1, len(seeds)))
    t = next((t for t in contract.inputs if t.role == role), None)
    if t is None:
        return None
    value = seed_values(contract, seeds).get(t.name)
    if value is None:
        return None
    value = np.asarray(value)
    return value.reshape(-1) if value.ndim == 2 and value.shape[1] == 1 else value  # indices [N, 1] → [N]


def generator_feeds(io: GeneratorIO, seeds: Sequence[int] | np.ndarray,
                    classes: int | Sequence[int] | np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The generator's inputs for ``seeds`` (by role, through the contract): what every local backend runs."""
    contract = ServedContract.from_io(io, max_batch=max(1, len(seeds)))
    return contract.feeds_from_values(seed_values(contract, seeds, classes))


def as_delivered(out: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Images [N, C, H, W] through the served uint8 map of their ``value_range`` (what users receive); points
    [N, D] unchanged."""
    out = np.asarray(out, dtype=np.float32)
    return from_uint8(to_uint8(out, value_range), value_range) if out.ndim == 4 else out


@dataclass
class Source:
    """One way of running the generator: ``backend`` (a FORMATS key, or ``served``) and its IO declaration."""

    backend: str
    io: GeneratorIO
    runtime: Any = None  # a gandeploy.runtimes.base.Runtime
    generator: str | None = None  # the checkpoint key it runs (run dir: resolved; export: the manifest's)
    served_name: str | None = None
    served: dict[str, Any] = field(default_factory=dict)  # url, protocol
    dataset: str | None = None  # a served model's training data set (its config parameter gandeploy_dataset)

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
                parts.append(as_delivered(out[self.io.outputs[0].name], self.io.outputs[0].value_range))
            else:
                parts.append(self._served_sample(s, c))
            if progress is not None:
                progress.update(len(s))
        return np.concatenate(parts)

    def translate(self, images: np.ndarray, progress: Any = None) -> np.ndarray:
        """Translated pictures for ``images`` [N, C, H, W] in [-1, 1], as delivered."""
        if self.runtime is None:
            return self._served_translate(images, progress)
        (spec,) = self.io.by_role(IMAGE)
        parts = []
        for start in range(0, len(images), CHUNK // 4):
            x = np.ascontiguousarray(images[start:start + CHUNK // 4], dtype=np.float32)
            out = self.io.outputs[0]
            parts.append(as_delivered(self.runtime.run({spec.name: x})[out.name], out.value_range))
            if progress is not None:
                progress.update(len(x))
        return np.concatenate(parts)


    def _served_translate(self, images: np.ndarray, progress: Any = None) -> np.ndarray:
        """The served ``NAME`` on ``images`` [N, C, H, W] in the input's value range: the PNG round trip users
        make (uint8 PNG in, PNG out), decoded into the output's value range."""
        import io

        from PIL import Image

        from gandeploy.wire import encode_png
        from gandeploy.serving.client import translate

        spec, out = self.io.image_input, self.io.outputs[0]
        delivered = to_uint8(np.asarray(images, dtype=np.float32), spec.value_range)  # type: ignore[union-attr]
        pngs = [encode_png(im) for im in delivered]
        channels = int(out.shape[1])
        parts = []
        for start in range(0, len(pngs), CHUNK // 4):
            for png in translate(str(self.served_name), pngs[start:start + CHUNK // 4], **self.served):
                with Image.open(io.BytesIO(png)) as img:
                    arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
                parts.append(from_uint8((arr[:, :, None] if arr.ndim == 2 else arr)[None], out.value_range))
            if progress is not None:
                progress.update(min(CHUNK // 4, len(pngs) - start))
        return np.concatenate(parts)
    def _served_sample(self, seeds: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
        from gandeploy.serving.client import sample

        contract = ServedContract.from_io(self.io, max_batch=max(1, len(seeds)))
        vals = seed_values(contract, seeds, classes)
        given = _given(contract, vals)
        out = sample(str(self.served_name), seeds.tolist(), **given, **self.served)
        return from_uint8(out) if out.dtype == np.uint8 else np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.close()


def open_source(target: str | os.PathLike[str], backend: str | None = None, *, url: str | None = None,
                protocol: str = "grpc", generator: str | None = None) -> tuple[Source, Any]:
    """(source, RunConfig or None) for a run dir, an export dir (+ ``backend``) or a served model name.

    ``generator`` picks a run dir's checkpoint key (``gandeploy export --generator``'s choices); an export dir
    holds one generator (its manifest's ``generator``), so there it may only name that one.
    """
    from gandeploy.config import load_run_config
    from gandeploy.manifest import MANIFEST_FILE, load_manifest
    from gandeploy.registry import get_model
    from gandeploy.runtimes.base import open_runtime

    path = Path(target)
    if path.is_dir():
        run = load_run_config(path)
        io = get_model(run.model).io(run.arch)
        is_export = (path / MANIFEST_FILE).is_file()
        key = backend or ("onnxruntime" if is_export else "torch")
        if not is_export and key != "torch":
            raise UserInputError(f"'{path}' is a run dir: --backend {key} needs an export dir ('gandeploy export "
                                 f"{path}' first), or drop --backend.")
        options: dict[str, Any] = {"url": url, "protocol": protocol} if key.startswith("triton") else {}
        if key == "triton-ensemble":
            raise UserInputError("--backend triton-ensemble: pass the served model's name as TARGET with --url.")
        if not is_export:
            runtime = open_runtime(key, path, generator=generator)
            return Source(key, io, runtime=runtime, generator=str(runtime.generator_key)), run
        held = load_manifest(path).generator
        if generator is not None and generator != held:
            raise UserInputError(f"--generator {generator}: export dir '{path}' holds generator {held} only; pass "
                                 f"its run dir, or export that generator ('gandeploy export RUN_DIR --generator "
                                 f"{generator}').")
        return Source(key, io, runtime=open_runtime(key, path, **options), generator=held), run
    if "/" in str(target) or path.exists():  # served names never hold '/' (serving/exports.py NAME_RE)
        raise UserInputError(f"TARGET '{target}' is not a directory: pass a run dir, an export dir, or the name of "
                             "a served model (with --url).")
    if generator is not None:
        raise UserInputError(f"--generator picks a run dir's generator; served model '{target}' is one generator "
                             "already (drop --generator).")
    if backend not in (None, "served"):
        raise UserInputError(f"TARGET '{target}' is not a directory: as a served model name it takes no --backend "
                             f"(got {backend}); pass an export dir for --backend {backend}.")
    return _served_source(str(target), url, protocol), None


def _served_source(name: str, url: str | None, protocol: str) -> Source:
    """A served model, described by the contract its config carries (image-to-image ones are scored picture by
    picture through ``serving.client.translate`` where the evaluation supports it: super-resolution)."""
    from gandeploy.serving.client import TritonClient, served_contract

    with TritonClient(url, protocol) as client:
        contract = served_contract(name, client=client)
        params = client.config(name).get("parameters", {})
    dataset = (params.get(DATASET_PARAMETER) or {}).get("string_value") or None
    return Source("served", contract.io, served_name=name, served={"url": url, "protocol": protocol},
                  dataset=dataset)
