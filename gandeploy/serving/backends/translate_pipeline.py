"""Triton python-backend model ``<name>`` for image-to-image exports: PNG/JPEG bytes in, PNG bytes out.

``image_bytes`` BYTES [1] → ``image_bytes`` BYTES [1]. Each picture is decoded (size checked against
``max_pixels`` before decoding), scaled down only if a side exceeds ``max_side``, edge-padded to multiples of
4 (and at least ``min_side``), sent to ``<name>_generator`` through Triton's business-logic scripting (BLS)
in batches of equal shapes, then cropped, scaled back and encoded as a PNG of the input's size.

This is a python model rather than ``platform: "ensemble"`` because an ensemble cannot expose an output with
the same name as one of its inputs (Triton 2.51 accepts the config, then never answers the request).

Config parameters: ``gandeploy_contract`` (tensor names), ``generator_model``, ``input_channels``,
``output_channels``, ``max_pixels``, ``max_side`` (0: none), ``min_side``, ``max_batch``, and per axis
``max_height`` / ``max_width`` / ``min_height`` / ``min_width`` (the TensorRT profile; 0 or absent: ``max_side`` /
``min_side`` alone). SELF-CONTAINED (numpy, PIL, json).
"""

from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils
from gd_backend_common import (
    DEFAULT_MAX_PIXELS,
    RequestError,
    decode_image,
    encode_png,
    finish_image,
    fit_size,
    group_indices,
    int_param,
    load_contract,
    model_parameters,
    prepare_image,
)


class TritonPythonModel:
    """Decode → generator (BLS) → encode, validating every picture of every request."""

    def initialize(self, args):
        params = model_parameters(args)
        self.generator = params.get("generator_model") or args["model_name"] + "_generator"
        self.in_channels = int_param(params, "input_channels", 3)
        self.out_channels = int_param(params, "output_channels", 3)
        self.max_pixels = int_param(params, "max_pixels", DEFAULT_MAX_PIXELS)
        self.max_side = int_param(params, "max_side", 0) or None
        self.min_side = int_param(params, "min_side", 8)
        max_hw = (int_param(params, "max_height", 0), int_param(params, "max_width", 0))
        self.max_hw = max_hw if all(max_hw) else None
        min_hw = (int_param(params, "min_height", 0), int_param(params, "min_width", 0))
        self.min_hw = min_hw if all(min_hw) else None
        self.max_batch = max(1, int_param(params, "max_batch", 8))
        contract = load_contract(params)  # tensor names: the served contract's, never spelled out here
        self.served_in = contract["inputs"][0]["name"]
        self.served_out = contract["outputs"][0]["name"]
        self.gen_in = contract["generator_inputs"][0]["name"]
        self.gen_out = contract["generator_outputs"][0]["name"]

    def execute(self, requests):
        errors = {}
        items = []  # (request index, position, prepared [C, PH, PW], fit, height, width)
        counts = []
        for r, request in enumerate(requests):
            try:
                prepared = self._decode(request)
            except RequestError as exc:
                errors[r] = (str(exc), pb_utils.TritonError.INVALID_ARG)
                prepared = []
            counts.append(len(prepared))
            items.extend((r, pos) + p for pos, p in enumerate(prepared))
        results = {}
        for members in group_indices([it[2].shape for it in items]).values():
            for start in range(0, len(members), self.max_batch):
                chunk = [items[m] for m in members[start:start + self.max_batch]]
                self._run_chunk(chunk, results, errors)
        responses = []
        for r in range(len(requests)):
            if r in errors:
                message, code = errors[r]
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code)))
                continue
            out = np.empty((counts[r], 1), dtype=np.object_)
            for pos in range(counts[r]):
                out[pos, 0] = results[(r, pos)]
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.served_out, out)]))
        return responses

    def _decode(self, request):
        tensor = pb_utils.get_input_tensor_by_name(request, self.served_in)
        if tensor is None:
            raise RequestError(f"missing input '{self.served_in}'")
        blobs = tensor.as_numpy().reshape(-1)
        if blobs.size == 0:
            raise RequestError(f"input '{self.served_in}' holds no pictures")
        prepared = []
        for pos, blob in enumerate(blobs):
            try:
                image = decode_image(blob, self.in_channels, self.max_pixels)  # [H, W, C] uint8
            except RequestError as exc:
                where = f" (picture {pos} of {blobs.size})" if blobs.size > 1 else ""
                raise RequestError(f"{exc}{where}") from None
            height, width = image.shape[:2]
            fit = fit_size(height, width, self.min_side, self.max_side, min_hw=self.min_hw, max_hw=self.max_hw)
            prepared.append((prepare_image(image, fit), fit, height, width))
        return prepared

    def _run_chunk(self, chunk, results, errors):
        live = [it for it in chunk if it[0] not in errors]
        if not live:
            return
        batch = np.stack([it[2] for it in live]).astype(np.float32)  # [B, C, PH, PW]
        kwargs = {}
        if hasattr(pb_utils, "PreferredMemory"):  # a GPU generator (NGC flavour) hands back host memory
            kwargs["preferred_memory"] = pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_CPU, 0)
        request = pb_utils.InferenceRequest(model_name=self.generator, requested_output_names=[self.gen_out],
                                            inputs=[pb_utils.Tensor(self.gen_in, batch)], **kwargs)
        response = request.exec()
        if response.has_error():
            for it in live:
                errors[it[0]] = (f"{self.generator} failed: {response.error().message()}",
                                 pb_utils.TritonError.INTERNAL)
            return
        output = pb_utils.get_output_tensor_by_name(response, self.gen_out).as_numpy()  # [B, C', PH, PW]
        for it, out in zip(live, output):  # noqa: B905 - Python 3.8 in NGC
            r, pos, _, fit, height, width = it
            results[(r, pos)] = encode_png(finish_image(out, fit, height, width))
