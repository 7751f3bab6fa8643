"""Triton python-backend model ``<name>`` for image-to-image exports: picture bytes in, PNG bytes out.

``image_bytes`` BYTES [1] → ``image_bytes`` BYTES [1], a PNG ``scale`` x the input's size. Each picture is decoded
(its size, and its output's, checked against ``max_pixels`` before decoding), padded to the size rule, cut into
tiles (``tile_height`` x ``tile_width``, ``tile_overlap`` pixels of context), sent to ``<name>_generator`` through
Triton's business-logic scripting (BLS) in batches of at most ``max_batch`` equal tiles (from every picture of
every request in this ``execute``), stitched, cropped and encoded (greyscale, alpha and 16-bit kept). All the
picture rules are ``gd_pictures.py``'s, read from the served contract's ``images`` entry.

This is a python model rather than ``platform: "ensemble"`` because an ensemble cannot expose an output with
the same name as one of its inputs (Triton 2.51 accepts the config, then never answers the request).

Config parameters: ``gandeploy_contract`` (tensor names, picture rules), ``generator_model``, ``max_pixels``,
``max_batch``, ``min_height`` / ``min_width`` (the smallest padded size, e.g. a TensorRT profile's minimum),
``tile_height`` / ``tile_width`` / ``tile_overlap``. SELF-CONTAINED (numpy, PIL, json).
"""

from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils
from gd_backend_common import DEFAULT_MAX_PIXELS, int_param, model_parameters
from gd_pictures import Job, PictureError, decode_picture, run_jobs
from gd_wire import RequestError, encode_png, load_contract

LIMIT_KEYS = ("min_height", "min_width", "tile_height", "tile_width", "tile_overlap")


class TritonPythonModel:
    """Decode → tiles → generator (BLS) → stitch → encode, validating every picture of every request."""

    def initialize(self, args):
        params = model_parameters(args)
        self.generator = params.get("generator_model") or args["model_name"] + "_generator"
        self.max_pixels = int_param(params, "max_pixels", DEFAULT_MAX_PIXELS)
        self.max_batch = max(1, int_param(params, "max_batch", 8))
        self.limits = {k: int_param(params, k, 0) for k in LIMIT_KEYS}
        contract = load_contract(params)  # tensor names and picture rules: the served contract's
        self.rules = contract.get("images")
        if not self.rules:
            raise ValueError("the served contract has no picture rules ('images'): rebuild with 'gandeploy repo'")
        self.served_in = contract["inputs"][0]["name"]
        self.served_out = contract["outputs"][0]["name"]
        self.gen_in = contract["generator_inputs"][0]["name"]
        self.gen_out = contract["generator_outputs"][0]["name"]

    def execute(self, requests):
        errors = {}
        jobs, owners, counts = [], [], []  # owners[k] = request index of jobs[k]
        for r, request in enumerate(requests):
            try:
                mine = self._decode(request)
            except (RequestError, PictureError) as exc:
                errors[r] = (str(exc), pb_utils.TritonError.INVALID_ARG)
                mine = []
            counts.append(len(mine))
            jobs.extend(mine)
            owners.extend([r] * len(mine))
        run_jobs(jobs, self._generate, self.max_batch)
        results = {}
        for job, r in zip(jobs, owners):  # noqa: B905 - Python 3.8 in NGC
            if job.error is not None and r not in errors:
                errors[r] = (f"{self.generator} failed: {job.error}", pb_utils.TritonError.INTERNAL)
            if r not in errors:
                results.setdefault(r, []).append(encode_png(job.result()))
        responses = []
        for r in range(len(requests)):
            if r in errors:
                message, code = errors[r]
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code)))
                continue
            out = np.empty((counts[r], 1), dtype=np.object_)
            for pos, png in enumerate(results.get(r, [])):
                out[pos, 0] = png
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.served_out, out)]))
        return responses

    def _decode(self, request):
        tensor = pb_utils.get_input_tensor_by_name(request, self.served_in)
        if tensor is None:
            raise RequestError(f"missing input '{self.served_in}'")
        blobs = tensor.as_numpy().reshape(-1)
        if blobs.size == 0:
            raise RequestError(f"input '{self.served_in}' holds no pictures")
        jobs = []
        for pos, blob in enumerate(blobs):
            try:
                picture = decode_picture(blob, max_pixels=self.max_pixels, scale=int(self.rules["scale"]),
                                         name=self.served_in)
            except PictureError as exc:
                where = f" (picture {pos} of {blobs.size})" if blobs.size > 1 else ""
                raise PictureError(f"{exc}{where}") from None
            jobs.append(Job(picture, self.rules, self.limits))
        return jobs

    def _generate(self, batch):
        """One batch of tiles [B, C, h, w] through the generator model: [B, C', s*h, s*w] (raises on error)."""
        kwargs = {}
        if hasattr(pb_utils, "PreferredMemory"):  # a GPU generator (NGC flavour) hands back host memory
            kwargs["preferred_memory"] = pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_CPU, 0)
        request = pb_utils.InferenceRequest(model_name=self.generator, requested_output_names=[self.gen_out],
                                            inputs=[pb_utils.Tensor(self.gen_in, batch)], **kwargs)
        response = request.exec()
        if response.has_error():
            raise RuntimeError(response.error().message())
        return pb_utils.get_output_tensor_by_name(response, self.gen_out).as_numpy()
