"""Triton python-backend model ``<name>_seed``: the sampling ensemble's first step, served inputs → generator's.

Generic over the served contract (config parameter ``gandeploy_contract``, the JSON of
``gandeploy.contract.ServedContract``): every served input is checked by its declaration (``seed`` INT64 [1]
in 0 .. 2**63 - 1; optional ``truncation`` FP32 [1], finite and > 0; ``label`` / ``code`` INT64 [1] in
[0, classes); ``continuous`` FP32 [M], finite) and each generator input comes out as ``gen_<input>``: a latent
is ``latent_from_seed(seed, nz, truncation)`` (NumPy PCG64, identical to ``gandeploy.models.io``), the other
inputs pass through checked. An absent optional input arrives as None. Bad requests get INVALID_ARG one by
one, naming the input; the rest of the batch still succeeds. SELF-CONTAINED (numpy, json).
"""

from __future__ import annotations

import triton_python_backend_utils as pb_utils
from gd_backend_common import RequestError, check_served, load_contract, model_parameters, step_feeds


class TritonPythonModel:
    """Stateless: served inputs checked, generator inputs produced."""

    def initialize(self, args):
        self.contract = load_contract(model_parameters(args))
        self.inputs = self.contract["inputs"]
        self.outputs = [s["name"] for s in self.contract["step_outputs"]]

    def execute(self, requests):
        return [self._answer(r) for r in requests]

    def _answer(self, request):
        try:
            values, batch = {}, {}
            for spec in self.inputs:
                tensor = pb_utils.get_input_tensor_by_name(request, spec["name"])
                if tensor is None:
                    if spec.get("optional"):
                        values[spec["name"]] = None
                        continue
                    raise RequestError(f"missing input '{spec['name']}'")
                values[spec["name"]] = check_served(tensor.as_numpy(), spec)
                batch[spec["name"]] = values[spec["name"]].shape[0]
            if len(set(batch.values())) > 1:
                raise RequestError(f"inputs must share one batch size, got {batch}")
            feeds = step_feeds(self.contract, values)
            return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(n, feeds[n]) for n in self.outputs])
        except RequestError as exc:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG))
