"""``gandeploy.load``: one object for a generator wherever it lives (a run dir, an export dir, a served model).

    g = gandeploy.load("export/cgan-digits", backend="onnxruntime")
    pictures = g.sample(range(16), label=3)          # uint8 [16, H, W, C]
    g = gandeploy.load("triton://127.0.0.1:8001/cyclegan-horse2zebra")
    zebras = g.translate([Image.open("horse.jpg")])   # PIL images

Every call goes through the code the CLI uses: in-process, ``serving/local.py`` (the served contract's seed map
and default fill, the served picture pipeline's padding and tiling) on a runtime from ``runtimes/``; served,
the SDK client ``serving/client.py``. So the same call gives the same pixels on every backend. Which methods a
generator has follows its served contract (``gandeploy/contract.py``), never its family's name.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gandeploy.contract import ServedContract, raw_model
from gandeploy.serving.interpolation import interpolation_feeds
from gandeploy.errors import GanDeployError, UserInputError
from gandeploy.formats import FORMATS
from gandeploy.wire import encode_png

SCHEME = "triton://"
LOCAL_PREFERENCE = ("tensorrt", "onnxruntime", "torch")  # the default backend of an export: the first that runs
RUN_MAX_BATCH = 64  # a run dir's batch of seeds or tiles per call (an export's is its --max-batch)
Picture = Any  # a PIL image, a uint8 array [H, W] / [H, W, C], or encoded bytes (PNG, JPEG, ...)


@dataclass(frozen=True)
class _Served:
    name: str
    url: str | None
    protocol: str


class Generator:
    """A generator with the methods its served contract allows; made by ``gandeploy.load``.

    ``sample`` for sampling models, ``translate`` for image-to-image models, ``upscale`` for those whose
    output is ``scale`` > 1 times the input, ``interpolate`` for models with a latent. ``contract`` is the
    served contract; ``info`` says what this is (name, model, backend, sizes). Use it as a context manager (or
    call ``close``) to free an in-process runtime early."""

    def __init__(self, contract: ServedContract, info: dict[str, Any], *, runtime: Any = None,
                 settings: Any = None, served: _Served | None = None) -> None:
        self.contract = contract
        self.info = info
        self._runtime = runtime
        self._settings = settings  # the picture pipeline's tiling (in-process image-to-image)
        self._served = served

    def __repr__(self) -> str:
        return f"Generator({self.info['name']!r}, backend={self.info['backend']!r})"

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Free the in-process runtime (a served model holds nothing open between calls)."""
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None

    # --- what the contract allows ----------------------------------------------------------------------------
    def _refuse(self, method: str, why: str, instead: str) -> UserInputError:
        return UserInputError(f"{self.info['name']}.{method}(): {why}; use {instead}.")

    def _need_sampling(self, method: str) -> None:
        if self.contract.translation:
            raise self._refuse(method, "this model turns pictures into pictures (its input is "
                               f"'{self.contract.inputs[0].name}')", "translate(images)")

    def _need_pictures(self, method: str) -> None:
        if not self.contract.translation:
            raise self._refuse(method, "this model draws from seeds (its inputs are "
                               f"{[t.name for t in self.contract.inputs]})", "sample(seeds)")

    def _open(self) -> Any:
        if self._runtime is None and self._served is None:
            raise UserInputError(f"{self!r} is closed; load it again with gandeploy.load().")
        return self._runtime

    # --- the calls ---------------------------------------------------------------------------------------------
    def sample(self, seeds: int | Iterable[int], label: int | Iterable[int] | None = None,
               code: int | Iterable[int] | None = None, continuous: Sequence[float] | np.ndarray | None = None,
               truncation: float | Iterable[float] | None = None, *, batch_size: int | None = None,
               concurrency: int = 2, **inputs: Any) -> np.ndarray:
        """Pictures for ``seeds`` (an int is one seed): uint8 [N, H, W, C] (2D-point models: float32 [N, D]).
        ``label`` / ``code`` (one int or one per seed), ``continuous`` (M floats or [N, M]) and ``truncation``
        (t >= 0.02) where the model takes them; the rest gets the contract's default fill. Served models:
        ``batch_size`` seeds per request (default the model's max), ``concurrency`` requests in flight.
        ``inputs``: any other served input by its name (the contract refuses names the model does not take)."""
        self._need_sampling("sample")
        seed_list = [int(seeds)] if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
        given = {"label": label, "code": code, "continuous": continuous, "truncation": truncation, **inputs}
        if self._served is not None:
            from gandeploy.serving.client import sample

            return sample(self._served.name, seed_list, url=self._served.url, protocol=self._served.protocol,
                          batch_size=batch_size, concurrency=concurrency, **given)
        from gandeploy.serving.local import run_sample

        if not seed_list:
            raise UserInputError("give at least one seed.")
        return run_sample(self.contract, self._open(), seed_list, **{k: v for k, v in given.items() if v is not None})

    def translate(self, images: Picture | Sequence[Picture]) -> list[Any]:
        """Each picture through the model (PIL images, uint8 arrays or encoded bytes; one or a list): a list of
        PIL images, ``scale`` x each input's size, padded and tiled as the served pipeline does."""
        self._need_pictures("translate")
        results = self.translate_each([encode_picture(p, i) for i, p in enumerate(_as_list(images))])
        for i, result in enumerate(results):
            if isinstance(result, GanDeployError):
                raise type(result)(f"picture {i}: {result}", *([result.status] if hasattr(result, "status") else []))
        return [_decode(blob) for blob in results]  # type: ignore[arg-type]

    def translate_each(self, blobs: Sequence[bytes], *, concurrency: int = 4,
                       on_done: Callable[[int], None] | None = None) -> list[bytes | GanDeployError]:
        """PNG bytes for each encoded picture, or the error that picture got (a picture the server refuses
        holds a ``RequestRejected``); ``on_done(i)`` as each finishes. Served: ``concurrency`` requests in
        flight; in-process: one picture after another, its tiles batched."""
        self._need_pictures("translate")
        if self._served is not None:
            from gandeploy.serving.client import translate_many

            return list(translate_many(self._served.name, list(blobs), url=self._served.url,
                                       protocol=self._served.protocol, concurrency=concurrency, on_done=on_done))
        from gandeploy.serving.local import run_translate

        return run_translate(self.contract, self._open(), self._settings, blobs, on_done=on_done)

    def upscale(self, images: Picture | Sequence[Picture]) -> list[Any]:
        """``translate`` for super-resolution models (the contract's scale > 1): PIL images ``scale`` x larger."""
        self._need_pictures("upscale")
        if self.contract.scale <= 1:
            raise self._refuse("upscale", "this model answers pictures the size of its input (its scale is 1)",
                               "translate(images)")
        return self.translate(images)

    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8, **given: Any) -> np.ndarray:
        """``steps`` pictures along the slerp between the latents of ``seed_a`` and ``seed_b`` (other inputs
        at their ``given`` or default values, as ``sample``): uint8 [steps, H, W, C] (points: float32)."""
        self._need_sampling("interpolate")
        if self.contract.latent is None:
            raise self._refuse("interpolate", "this model has no latent input", "sample(seeds)")
        if int(steps) < 2:
            raise UserInputError(f"interpolate(): steps must be >= 2, got {steps}.")
        given = {k: v for k, v in given.items() if v is not None}
        feeds = interpolation_feeds(self.contract, int(seed_a), int(seed_b), int(steps), given)
        from gandeploy.serving.local import served_output

        if self._served is not None:
            from gandeploy.runtimes.triton_client import TritonClient

            output = self.contract.generator_outputs[0].name
            with TritonClient(self._served.url, self._served.protocol) as client:
                raw = client.infer(raw_model(self._served.name), feeds, [output])[output]
            return served_output(self.contract, raw)
        runtime = self._open()  # the raw generator's own shapes: int64 [N, 1] (Triton dims) back to [N]
        local = {g.name: feeds[g.name].reshape(int(steps), *g.shape[1:]) for g in self.contract.io.inputs}
        return served_output(self.contract, runtime.run(local)[self.contract.io.output_names[0]])


def load(target: str | os.PathLike[str], backend: str | None = None, *, url: str | None = None,
         protocol: str = "grpc", tile: int | None = None, tile_overlap: int | None = None) -> Generator:
    """The generator at ``target``: a run dir (PyTorch), an export dir (``backend`` one of torch, onnxruntime,
    onnxruntime-fp16, onnxruntime-int8, tensorrt, tensorrt-int8; default the first of tensorrt, onnxruntime, torch
    that runs here: INT8 only when asked for), or a served
    model (``"triton://HOST:PORT/NAME"``, or ``NAME`` with ``url=``; ``protocol`` grpc or http).
    In-process image-to-image: ``tile`` / ``tile_overlap`` as ``gandeploy repo --tile / --tile-overlap`` (a
    served model tiles as its repository was built)."""
    text = os.fspath(target)
    if text.startswith(SCHEME):
        address, _, name = text[len(SCHEME):].partition("/")
        if not address or not name:
            raise UserInputError(f"'{text}' is not a served model address: write triton://HOST:PORT/NAME.")
        return _load_served(name, url or address, protocol)
    if url is not None:
        return _load_served(text, url, protocol)
    tiling = {"tile": tile, "overlap": tile_overlap}
    path = Path(target)
    from gandeploy.manifest import MANIFEST_FILE

    if (path / MANIFEST_FILE).is_file():
        return _load_export(path, backend, tiling)
    if (path / "config.json").is_file():
        return _load_run(path, backend, tiling)
    raise UserInputError(f"'{text}' is neither a run dir (config.json), an export dir ({MANIFEST_FILE}) nor a "
                         "served model (triton://HOST:PORT/NAME, or NAME with url=).")


def _load_served(name: str, url: str, protocol: str) -> Generator:
    from gandeploy.serving.client import served_contract

    contract = served_contract(name, url=url, protocol=protocol)
    info = _info(name, contract, "triton", source=f"{protocol}://{url}/{name}")
    return Generator(contract, info, served=_Served(name, url, protocol))


def _load_export(path: Path, backend: str | None, tiling: dict[str, int | None]) -> Generator:
    from gandeploy.manifest import load_manifest
    from gandeploy.serving.local import local_runtime
    from gandeploy.serving.tiling import pipeline_settings

    manifest = load_manifest(path)
    if backend is None:
        backend = _best_backend(path, manifest.data)
    contract, runtime = local_runtime(path, backend)
    settings = pipeline_settings(manifest.data, contract, **tiling) if contract.translation else None
    info = _info(path.name, contract, backend, source=str(path), model=manifest.data.get("model"))
    return Generator(contract, info, runtime=runtime, settings=settings)


def _load_run(path: Path, backend: str | None, tiling: dict[str, int | None]) -> Generator:
    if backend not in (None, "torch"):
        raise UserInputError(f"'{path}' is a run dir: it runs on backend 'torch' only; export it first "
                             f"('gandeploy export {path}') for backend '{backend}'.")
    from gandeploy.config import load_run_config
    from gandeploy.registry import get_model
    from gandeploy.runtimes.base import open_runtime
    from gandeploy.serving.tiling import pipeline_settings

    run = load_run_config(path)
    contract = ServedContract.from_io(get_model(run.model).io(run.arch), max_batch=RUN_MAX_BATCH,
                                      class_names=run.class_names)
    runtime = open_runtime("torch", path)
    # no export limits: pictures padded only to the size rule (an export pads below its --min-size too), tiled
    # with the default overlap (an export measures its receptive field)
    settings = pipeline_settings({}, contract, **tiling) if contract.translation else None
    info = _info(path.name, contract, "torch", source=str(path), model=run.model)
    return Generator(contract, info, runtime=runtime, settings=settings)


def _best_backend(path: Path, manifest: dict[str, Any]) -> str:
    """The first of ``LOCAL_PREFERENCE`` whose artifact the export holds and that can run here."""
    files = manifest.get("files") or {}
    for key in LOCAL_PREFERENCE:
        artifact = FORMATS[key].file
        if artifact is not None and artifact not in files:
            continue
        if FORMATS[key].runtime == "tensorrt":
            from gandeploy.runtimes.tensorrt_rt import unavailable_reason

            if unavailable_reason():
                continue
        return key
    return "torch"


def _info(name: str, contract: ServedContract, backend: str, *, source: str, model: Any = None) -> dict[str, Any]:
    out = contract.outputs[0]
    return {"name": name, "model": model, "backend": backend, "source": source,
            "task": "image-to-image" if contract.translation else "sampling", "max_batch": contract.max_batch,
            "inputs": {t.name: list(t.dims) for t in contract.inputs}, "output": {out.name: list(out.dims)},
            "scale": contract.scale, "classes": list(contract.class_names or ()),
            "image_sizes": {k: list(v) for k, v in (contract.image_sizes or {}).items()}}


def _as_list(images: Picture | Sequence[Picture]) -> list[Picture]:
    if isinstance(images, (bytes, bytearray, memoryview)) or hasattr(images, "save"):
        return [images]
    if isinstance(images, np.ndarray):
        return [images] if images.ndim in (2, 3) else list(images)
    return list(images)


def encode_picture(picture: Picture, index: int = 0) -> bytes:
    """The bytes the served pipeline takes for one picture: encoded bytes as given; a PIL image or a uint8 array
    ([H, W] grey or [H, W, C]) as a lossless PNG (``wire.encode_png``; 16-bit grey PIL images stay 16-bit)."""
    if isinstance(picture, (bytes, bytearray, memoryview)):
        return bytes(picture)
    if isinstance(picture, np.ndarray):
        channels = picture.shape[2] if picture.ndim == 3 else 1
        if picture.dtype != np.uint8 or picture.ndim not in (2, 3) or channels not in (1, 3, 4):
            raise UserInputError(f"picture {index}: an array must be uint8 [H, W] or [H, W, C] with C 1, 3 or 4; "
                                 f"got {picture.dtype} {list(picture.shape)}.")
        return encode_png(picture)
    if not hasattr(picture, "mode") or not hasattr(picture, "convert"):
        raise UserInputError(f"picture {index}: expected a PIL image, a uint8 array or encoded bytes, got "
                             f"{type(picture).__name__}.")
    return encode_png(_pil_pixels(picture))


def _pil_pixels(image: Any) -> np.ndarray:
    """A PIL image as the pixels a PNG keeps: L / LA / RGB / RGBA as they are, 16-bit grey as uint16, a palette
    as RGB(A), other modes (1, CMYK, YCbCr, ...) converted to RGB, or RGBA when they carry alpha."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(image)
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.uint16)
    alpha = "A" in mode or "a" in mode or "transparency" in image.info
    if mode == "1":
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGBA" if alpha else "RGB"))


def _decode(blob: bytes) -> Any:
    from PIL import Image

    picture = Image.open(io.BytesIO(blob))
    picture.load()
    return picture
