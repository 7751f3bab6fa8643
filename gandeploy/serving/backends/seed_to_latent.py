"""Triton python-backend model ``<name>_seed``: the sampling ensemble's first step, served inputs → generator's.

Generic over the served contract (config parameter ``gandeploy_contract``, the JSON of
``gandeploy.contract.ServedContract``): every served input is checked by its declaration (``seed`` INT64 [1]
in 0 .. 2**63 - 1; optional ``truncation`` FP32 [1], finite and >= 0.02; ``label`` / ``code`` INT64 [1] in
[0, classes); ``continuous`` FP32 [M], finite) and each generator input comes out as ``gen_<input>``: a latent
is ``latent_from_seed(seed, nz, truncation)`` (NumPy PCG64, identical to ``gandeploy.models.io``), the other
inputs pass through checked. An absent optional input arrives as None. Checks run once per input over the
whole batch (``check_batch``); bad requests get INVALID_ARG one by one, naming the input; the rest of the
batch still succeeds. The local flavour serves the same steps in one model (``sampling_onnx.py``); this one
feeds the NGC flavour's native generator. SELF-CONTAINED (numpy, json).
"""

from __future__ import annotations

import triton_python_backend_utils as pb_utils
from gd_backend_common import check_latent_stream, model_parameters
from gd_wire import check_batch, load_contract, step_feeds


class TritonPythonModel:
    """Stateless: served inputs checked, generator inputs produced."""

    def initialize(self, args):
        self.contract = load_contract(model_parameters(args))
        check_latent_stream(self.contract, args["model_name"])  # NumPy must draw the golden latents
        self.inputs = self.contract["inputs"]
        self.outputs = [s["name"] for s in self.contract["step_outputs"]]

    def execute(self, requests):
        raw = []
        for request in requests:
            tensors = {}
            for spec in self.inputs:
                tensor = pb_utils.get_input_tensor_by_name(request, spec["name"])
                tensors[spec["name"]] = None if tensor is None else tensor.as_numpy()
            raw.append(tensors)
        values, good, rows, errors = check_batch(self.inputs, raw)  # one check per input over the batch
        feeds = step_feeds(self.contract, values) if good else {}
        parts, start = {}, 0
        for i, n in zip(good, rows):  # noqa: B905 - Python 3.8 in NGC
            parts[i] = [pb_utils.Tensor(name, feeds[name][start:start + n]) for name in self.outputs]
            start += n
        responses = []
        for i in range(len(requests)):
            if i in errors:
                error = pb_utils.TritonError(errors[i], pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=error))
            else:
                responses.append(pb_utils.InferenceResponse(output_tensors=parts[i]))
        return responses
