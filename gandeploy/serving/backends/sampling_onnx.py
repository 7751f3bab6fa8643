"""Triton python-backend model ``<name>`` for sampling exports (local flavour): the whole pipeline in one step.

Served inputs → checked (``check_batch``: ``seed`` INT64 [1] in 0 .. 2**63 - 1; optional ``truncation`` FP32
[1], finite and >= 0.02; ``label`` / ``code`` INT64 [1] in [0, classes); ``continuous`` FP32 [M], finite) →
generator inputs (``step_feeds``: a latent is ``latent_from_seed(seed, nz, truncation)``) → ``model.onnx`` on
ONNX Runtime CPU → ``image`` UINT8 [H, W, C] (``to_uint8`` with the output's declared value range) or ``sample`` FP32 [D]. The same contract and
pictures as the ``<name>_seed`` → generator → ``<name>_postprocess`` ensemble of the NGC flavour, without two
python-backend hops per request.

Per ``execute`` (one dynamic batch): inputs are checked in one numpy pass per input over every request; a
batch holding a bad request is re-checked request by request, so each bad one gets INVALID_ARG naming its
input and the rest are served. Latents are drawn per seed (one PCG64 stream each); the generator runs once
over all good requests, and the uint8 map runs once over its output.

Config parameters: ``gandeploy_contract``, ``onnx_file``, ``intra_op_threads`` (0: ONNX Runtime's default).
SELF-CONTAINED (numpy, onnxruntime, json): it runs inside Triton's backend stub without gandeploy.
"""

from __future__ import annotations


import numpy as np
import triton_python_backend_utils as pb_utils
from gd_backend_common import check_latent_stream, model_parameters, onnx_session
from gd_wire import check_batch, load_contract, step_feeds, to_uint8

POINTS_ROLE = "points"


class TritonPythonModel:
    """One ONNX Runtime session per instance; served inputs in, served output out."""

    def initialize(self, args):
        params = model_parameters(args)
        self.session = onnx_session(args, params)
        self.contract = load_contract(params)
        check_latent_stream(self.contract, args["model_name"])  # NumPy must draw the golden latents
        self.inputs = self.contract["inputs"]
        self.names = [s["name"] for s in self.inputs]
        gen = {g["name"]: g for g in self.contract["generator_inputs"]}
        # step output gen_<x> -> (generator input x, flatten to [N] for the graph: an int64 [N] input)
        self.feeds = [(s["name"], s["feeds"], gen[s["feeds"]].get("reshape") == []) for s in
                      self.contract["step_outputs"]]
        self.gen_output = self.contract["generator_outputs"][0]["name"]
        out = self.contract["outputs"][0]
        self.out_name, self.uint8 = out["name"], out.get("role") != POINTS_ROLE
        self.value_range = tuple(self.contract["generator"]["outputs"][0].get("value_range", (-1.0, 1.0)))

    def execute(self, requests):
        raw = []
        for request in requests:
            tensors = {}
            for name in self.names:
                tensor = pb_utils.get_input_tensor_by_name(request, name)
                tensors[name] = None if tensor is None else tensor.as_numpy()
            raw.append(tensors)
        values, good, rows, invalid = check_batch(self.inputs, raw)
        outputs, internal = {}, {}
        if good:
            try:
                outputs, internal = self._run(values, good, rows)
            except Exception as exc:  # ORT errors are untyped; answer the batch, keep serving
                message = f"ONNX Runtime failed on this batch: {str(exc).splitlines()[0][:300]}"
                internal = {i: message for i in good}
        responses = []
        for i in range(len(requests)):
            if i in invalid:
                error = pb_utils.TritonError(invalid[i], pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=error))
            elif i in internal:
                error = pb_utils.TritonError(internal[i], pb_utils.TritonError.INTERNAL)
                responses.append(pb_utils.InferenceResponse(error=error))
            else:
                tensors = [pb_utils.Tensor(self.out_name, outputs[i])]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def _run(self, values, good, rows):
        """The generator over every good request at once → ({request: its rows of the output}, {request: error})."""
        steps = step_feeds(self.contract, values)
        feed = {name: np.ascontiguousarray(steps[step].reshape(-1) if flat else steps[step])
                for step, name, flat in self.feeds}
        out = self.session.run([self.gen_output], feed)[0]  # [total, C, H, W] or [total, D]
        finite = np.isfinite(out.reshape(out.shape[0], -1)).all(axis=1)  # [total]
        served = to_uint8(out, self.value_range) if self.uint8 else np.ascontiguousarray(out, dtype=np.float32)
        result, errors, start = {}, {}, 0
        for i, n in zip(good, rows):  # noqa: B905 - Python 3.8 in NGC
            if finite[start:start + n].all():
                result[i] = served[start:start + n]
            else:
                errors[i] = "the generator produced NaN or infinite values"
            start += n
        return result, errors

    def finalize(self):
        self.session = None

