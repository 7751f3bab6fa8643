"""The served contract: every served tensor, request check and feed, derived once from a generator's IO roles.

This is the only place that maps generator input *roles* (``gandeploy.models.io``) to served tensors. Served
names are promises to users; the derivation table:

| generator role            | served input of ``NAME``                         | valid values                       |
|---------------------------|--------------------------------------------------|------------------------------------|
| ``latent`` [N, nz]        | ``seed`` INT64 [1]                               | 0 .. 2**63 - 1                     |
|                           | ``truncation`` FP32 [1], OPTIONAL                | finite, >= 0.02 (omitted: none)    |
| ``class_label`` [N]       | ``label`` INT64 [1]                              | 0 .. classes - 1                   |
| ``categorical_code`` [N]  | ``code`` INT64 [1]                               | 0 .. classes - 1                   |
| ``continuous_code`` [N, M]| ``continuous`` FP32 [M]                          | finite (trained on U(low, high))   |
| ``image`` [N, C, H, W]    | ``image_bytes`` BYTES [1] (PNG / JPEG)           | a picture within the pixel limit   |

Outputs: ``image`` UINT8 [H, W, C] (sampling pictures), ``sample`` FP32 [D] (points), or ``image_bytes`` BYTES
[1] (a PNG ``scale`` x the input's size, see ``gandeploy.contract_images``) when a picture goes in. Image
tensors map to uint8 by their declared ``value_range``. The raw model ``NAME_generator`` serves exactly the
ONNX IO (an int64 [N] input as dims [1] reshaped to [] for the graph).

A seed's latent is ``latent_from_seed(seed, nz, truncation)``; with a truncation (>= 0.02,
``gio.TRUNCATION_MIN``) its redraw loop runs at most 4096 rounds and then clips, so every accepted request
finishes in bounded time (~1 ms per 512-wide latent at t = 0.02). **Default fill** (CLI and Python API, for
inputs not given): ``label`` / ``code`` = ``seed % classes``; ``continuous`` = zeros (the centre of its
range); ``truncation`` = none. Parity and benchmark cases (``gandeploy.evaluation.cases``) spread continuous codes
over their training range instead, so every input is exercised.

The request checks are ``gandeploy.wire.check_served`` (through ``contract_tensors.check_values``), the very
function the Triton python backends run on the contract JSON; the seed → latent map and pixel maps live there
too, so client, in-process runtimes and server share one copy of each rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gandeploy.contract_images import ImageRules
from gandeploy.contract_tensors import (
    BYTES_NAME,
    IMAGE_NAME,
    POINTS_NAME,
    SEED,
    SEED_MAX,
    SERVED_INPUTS,
    TRUNCATION,
    ServedTensor,
    check_values,
    served_dims,
)
from gandeploy.errors import ExportError, UserInputError
from gandeploy.models import io as gio
from gandeploy.models.io import GeneratorIO, TensorSpec
from gandeploy.models.latent_stream import check_latent_stream, latent_stream_record
from gandeploy.wire import CONTRACT_PARAMETER, encode_png, step_feeds

CONTRACT_FORMAT = "gandeploy.contract/1"
CONFIG_PARAMETER = CONTRACT_PARAMETER  # every served model's config parameter holding ``to_json()``
DATASET_PARAMETER = "gandeploy_dataset"  # every served model's config parameter naming its training data set
STEP_PREFIX = "gen_"  # the seed step's outputs: ``gen_<generator input>``


@dataclass(frozen=True)
class ServedContract:
    """Everything served for one generator (see the module docstring); build it with ``from_io``."""

    io: GeneratorIO
    max_batch: int = 64
    class_names: tuple[str, ...] | None = None
    image_sizes: Mapping[str, tuple[int, int]] | None = field(default=None, compare=False)

    @classmethod
    def from_io(cls, io: GeneratorIO, *, max_batch: int, class_names: Sequence[str] | None = None,
                image_sizes: Mapping[str, Sequence[int]] | None = None) -> ServedContract:
        contract = cls(io, int(max_batch), tuple(class_names) if class_names else None,
                       {k: (int(v[0]), int(v[1])) for k, v in image_sizes.items()} if image_sizes else None)
        names = [t.name for t in contract.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"generator inputs {list(io.input_names)} map to clashing served names {names}")
        if contract.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        return contract

    # --- what the generator is ---------------------------------------------------------------------------
    @property
    def latent(self) -> TensorSpec | None:
        found = self.io.by_role(gio.LATENT)
        return found[0] if found else None

    @property
    def image_input(self) -> TensorSpec | None:
        """The picture input of an image-to-image generator (None for sampling generators)."""
        found = self.io.by_role(gio.IMAGE)
        return found[0] if found else None

    @property
    def translation(self) -> bool:
        return self.image_input is not None

    @property
    def images(self) -> ImageRules | None:
        """How pictures go through an image-to-image generator: channels, size rule, scale, value ranges
        (``gandeploy.contract_images``); None for sampling generators."""
        return ImageRules.from_io(self.io)

    @property
    def scale(self) -> int:
        """Served output side / input side (1 for same-size and sampling generators)."""
        return self.io.scale

    @property
    def output_range(self) -> tuple[float, float]:
        """The float range of the first output that maps to uint8 0..255 (``to_uint8``)."""
        return self.io.outputs[0].value_range

    @property
    def points(self) -> bool:
        """A generator of vectors (2D mixtures) rather than pictures."""
        return self.io.outputs[0].role == gio.POINTS

    @property
    def nz(self) -> int:
        return int(self.latent.shape[1]) if self.latent is not None else 0

    @property
    def in_channels(self) -> int:
        return int(self.image_input.shape[1]) if self.image_input is not None else 0

    @property
    def out_channels(self) -> int:
        return 0 if self.points else int(self.io.outputs[0].shape[1])

    @property
    def num_classes(self) -> int:
        """Classes of the class-label input (0 when the generator takes none)."""
        found = self.io.by_role(gio.CLASS_LABEL)
        return found[0].classes if found else 0

    # --- Triton tensors ----------------------------------------------------------------------------------
    @property
    def generator_inputs(self) -> tuple[ServedTensor, ...]:
        """``NAME_generator``'s inputs: the ONNX inputs without the batch axis (int64 [N] as dims [1] → [])."""
        out = []
        for s in self.io.inputs:
            scalar = s.shape == (gio.BATCH,)
            out.append(ServedTensor(s.name, s.dtype, (1,) if scalar else served_dims(s), () if scalar else None,
                                    role=s.role, feeds=s.name, classes=s.classes, low=s.low, high=s.high))
        return tuple(out)

    @property
    def generator_outputs(self) -> tuple[ServedTensor, ...]:
        return tuple(ServedTensor(s.name, "float32", served_dims(s), role=s.role) for s in self.io.outputs)

    @property
    def inputs(self) -> tuple[ServedTensor, ...]:
        """The user-facing ``NAME``'s inputs, in generator input order (a latent gives seed + truncation)."""
        out: list[ServedTensor] = []
        for s in self.io.inputs:
            if s.role == gio.LATENT:
                out.append(ServedTensor(SEED, "int64", (1,), role=SEED, feeds=s.name, low=0.0, high=float(SEED_MAX)))
                if not self.translation:
                    out.append(ServedTensor(TRUNCATION, "float32", (1,), optional=True, role=TRUNCATION,
                                            feeds=s.name))
            elif s.role == gio.IMAGE:
                out.append(ServedTensor(BYTES_NAME, "bytes", (1,), role=s.role, feeds=s.name))
            else:
                name, dtype = SERVED_INPUTS[s.role]
                dims = (1,) if s.shape == (gio.BATCH,) else served_dims(s)
                out.append(ServedTensor(name, dtype, dims, role=s.role, feeds=s.name, classes=s.classes,
                                        low=s.low, high=s.high))
        return tuple(out)

    @property
    def outputs(self) -> tuple[ServedTensor, ...]:
        spec = self.io.outputs[0]
        if self.translation:
            return (ServedTensor(BYTES_NAME, "bytes", (1,), role=spec.role),)
        if self.points:
            return (ServedTensor(POINTS_NAME, "float32", served_dims(spec), role=spec.role),)
        _, c, h, w = spec.shape
        return (ServedTensor(IMAGE_NAME, "uint8", (int(h), int(w), int(c)), role=spec.role),)

    @property
    def output_name(self) -> str:
        return self.outputs[0].name

    @property
    def step_outputs(self) -> tuple[ServedTensor, ...]:
        """The seed step's outputs (sampling): one ``gen_<name>`` tensor per generator input, its Triton dims."""
        return tuple(ServedTensor(STEP_PREFIX + g.name, g.dtype, g.dims, role=g.role, feeds=g.name)
                     for g in self.generator_inputs)

    def has_input(self, name: str) -> bool:
        return any(t.name == name for t in self.inputs)

    # --- values: defaults, checks, requests, feeds -------------------------------------------------------
    def values(self, seeds: Iterable[int], **given: Any) -> dict[str, np.ndarray | None]:
        """Every served non-image input for ``seeds`` with the batch axis: ``given`` values (one per row or one
        for all; None = not given) broadcast to N, the rest by the documented default fill. Flags that do not
        apply to this model are a ``UserInputError`` naming the flag."""
        seed_arr = np.asarray(list(seeds) if not isinstance(seeds, np.ndarray) else seeds, dtype=np.int64).reshape(-1)
        names = {t.name for t in self.inputs}
        for key, value in given.items():
            if value is not None and key not in names:
                have = ", ".join(f"--{t.name}" for t in self.inputs if t.name not in (SEED, BYTES_NAME)) or "none"
                raise UserInputError(f"--{key} does not apply to this model (its options: {have}).")
        n = seed_arr.size
        out: dict[str, np.ndarray | None] = {}
        for t in self.inputs:
            if t.role == gio.IMAGE:
                continue
            value = seed_arr if t.role == SEED else given.get(t.name)
            if value is None:
                out[t.name] = self._default(t, seed_arr)
                continue
            arr = np.asarray(value)
            width = int(np.prod(t.dims))
            if arr.size == width:
                arr = np.tile(arr.reshape(1, width), (n, 1))
            elif arr.size == n * width:
                arr = arr.reshape(n, width)
            else:
                raise UserInputError(f"--{t.name} needs {width} value(s) per sample (or one set for all), got "
                                     f"{arr.size} value(s) for {n} seed(s).")
            out[t.name] = arr.reshape(n, *t.dims)
        checked = self.check(out)
        return {name: checked.get(name) for name in out}

    def _default(self, t: ServedTensor, seeds: np.ndarray) -> np.ndarray | None:
        if t.optional:
            return None
        if t.classes:
            return (seeds % t.classes).astype(np.int64).reshape(-1, 1)  # [N, 1]
        return np.zeros((seeds.size, *t.dims), dtype=np.float32)  # continuous codes: the centre

    def check(self, request: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Validate a served request (client side, the same rules the server applies): names, dtypes, shapes
        [N, *dims], one batch size, ranges and finiteness. Returns the arrays (absent optionals dropped)."""
        unknown = sorted(set(request) - {t.name for t in self.inputs})
        if unknown:
            raise UserInputError(f"unknown input(s) {unknown}; this model takes {[t.name for t in self.inputs]}.")
        out: dict[str, np.ndarray] = {}
        batch = None
        for t in self.inputs:
            value = request.get(t.name)
            if value is None:
                if t.optional:
                    continue
                raise UserInputError(f"missing input '{t.name}'.")
            arr = np.asarray(value)
            if t.dtype == "bytes":
                arr = np.array([bytes(b) for b in arr.reshape(-1)], dtype=np.object_).reshape(-1, 1)
            else:
                arr = check_values(t, arr)
            if batch is not None and arr.shape[0] != batch:
                raise UserInputError(f"input '{t.name}' has batch {arr.shape[0]}, the others {batch}.")
            batch = arr.shape[0]
            out[t.name] = arr
        if not batch:
            raise UserInputError("a request needs at least one sample.")
        return out

    def request(self, seeds: Iterable[int] | None = None, *, images: np.ndarray | Sequence[bytes] | None = None,
                **given: Any) -> dict[str, np.ndarray]:
        """The served ``NAME`` request, named arrays with the batch axis: seed/label/code [N, 1], continuous
        [N, M], truncation [N, 1] when given; pictures (uint8 [N, H, W, C] or encoded bytes) as image_bytes
        [N, 1]. Values not given are filled by the default fill (module docstring)."""
        if self.translation:
            if images is None:
                raise UserInputError("this model translates pictures: pass images, not seeds.")
            blobs = list(images) if not isinstance(images, np.ndarray) or images.dtype == np.object_ \
                else [encode_png(im) for im in images]
            return {BYTES_NAME: np.array([bytes(b) for b in blobs], dtype=np.object_).reshape(-1, 1)}
        if seeds is None:
            raise UserInputError("this model samples from seeds: pass seeds.")
        vals = self.values(seeds, **given)
        return {k: v for k, v in vals.items() if v is not None}

    def generator_feeds(self, seeds: Iterable[int] | None = None, *, images: np.ndarray | None = None,
                        **given: Any) -> dict[str, np.ndarray]:
        """The generator's inputs for the same request: latents of ``seeds`` (with ``truncation``), labels /
        codes [N] int64, continuous [N, M] float32; pictures uint8 [N, H, W, C] → float32 [N, C, H, W]."""
        if self.translation:
            if images is None:
                raise UserInputError("this model translates pictures: pass images, not seeds.")
            image = self.image_input
            return {image.name: gio.from_uint8(np.asarray(images), image.value_range)}  # type: ignore[union-attr]
        if seeds is None:
            raise UserInputError("this model samples from seeds: pass seeds.")
        vals = self.values(seeds, **given)
        return self.feeds_from_values(vals)

    def feeds_from_values(self, vals: Mapping[str, np.ndarray | None]) -> dict[str, np.ndarray]:
        """Generator inputs from served values: ``wire.step_feeds``, the very function the server's seed step
        runs on this contract's JSON (a latent from its seed and optional truncation, the rest as given), each
        reshaped to the generator's own shape (an int64 [N] input from its [N, 1] served values)."""
        if self.draws_latents:
            check_latent_stream("gandeploy's seed -> latent map")  # once per process: NumPy's draws
        contract = {"inputs": [t.to_json() for t in self.inputs], "generator": self.io.to_json(),
                    "step_outputs": [t.to_json() for t in self.step_outputs]}
        steps = step_feeds(contract, {k: None if v is None else np.asarray(v) for k, v in vals.items()})
        feeds: dict[str, np.ndarray] = {}
        for g, step in zip(self.io.inputs, self.step_outputs, strict=True):
            arr = np.asarray(steps[step.name])
            feeds[g.name] = arr.reshape(-1) if g.shape == (gio.BATCH,) else arr.reshape(arr.shape[0], -1)
        return feeds

    # --- travelling -------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The generator IO plus everything derived from it (self-contained backends read the derived part)."""
        return {"format": CONTRACT_FORMAT, "generator": self.io.to_json(), "max_batch": self.max_batch,
                "class_names": list(self.class_names) if self.class_names else None,
                "image_sizes": {k: list(v) for k, v in self.image_sizes.items()} if self.image_sizes else None,
                "images": self.images.to_json() if self.images else None,
                "inputs": [t.to_json() for t in self.inputs], "outputs": [t.to_json() for t in self.outputs],
                "generator_inputs": [t.to_json() for t in self.generator_inputs],
                "generator_outputs": [t.to_json() for t in self.generator_outputs],
                "step_outputs": [t.to_json() for t in self.step_outputs],
                # the NumPy that maps seeds to latents here, and the golden draws every backend checks
                **({"latent_stream": latent_stream_record()} if self.draws_latents else {})}

    @property
    def draws_latents(self) -> bool:
        """True when served seeds become latents (NumPy's stream decides the pictures)."""
        return any(t.role == SEED for t in self.inputs)

    def parameter(self) -> str:
        """``to_json()`` as the compact string stored in Triton config parameters (``CONFIG_PARAMETER``)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str, where: str = "the served contract") -> ServedContract:
        """Inverse of ``to_json`` (or of ``parameter``); a malformed one is an ``ExportError`` naming ``where``."""
        try:
            if isinstance(data, str):
                data = json.loads(data)
            if data.get("format") != CONTRACT_FORMAT:  # type: ignore[union-attr]
                raise ValueError(f"format is not {CONTRACT_FORMAT}")
            return cls.from_io(GeneratorIO.from_json(data["generator"]), max_batch=int(data["max_batch"]),  # type: ignore[index]
                               class_names=data.get("class_names"), image_sizes=data.get("image_sizes"))  # type: ignore[union-attr]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ExportError(f"{where} is damaged ({exc}); run 'gandeploy export' again.") from None

    @classmethod
    def from_manifest(cls, data: Mapping[str, Any], where: str = "manifest.json",
                      class_names: Sequence[str] | None = None) -> ServedContract:
        """From an export manifest: its ``contract`` entry, else derived from its role-carrying ``inputs``."""
        if isinstance(data.get("contract"), Mapping):
            return cls.from_json(data["contract"], where)
        try:
            io = GeneratorIO.from_json({"inputs": data["inputs"], "outputs": data["outputs"]})
            return cls.from_io(io, max_batch=int(data.get("max_batch") or 64), class_names=class_names,
                               image_sizes=data.get("image_sizes"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ExportError(f"{where} declares no tensor roles or is damaged ({exc}): it was written by an older "
                              "gandeploy; re-export with 'gandeploy export RUN_DIR'.") from None


RAW_SUFFIX = "_generator"  # NAME_generator: the raw generator model beside every user-facing NAME


def raw_model(name: str) -> str:
    """The served raw generator of the user-facing model ``name`` (the ONNX IO)."""
    return name + RAW_SUFFIX
