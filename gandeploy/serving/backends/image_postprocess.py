"""Triton python-backend model ``<name>_postprocess``: generator output → uint8 picture.

``output`` FP32 [C, H, W] in its declared ``value_range`` (lo, hi) → ``image`` UINT8 [H, W, C] by
``rint((x - lo) * 255 / (hi - lo))`` clipped to 0..255, the same map as ``gandeploy.models.io.to_uint8``. SELF-CONTAINED (numpy, json).
"""

from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils
from gd_backend_common import model_parameters
from gd_wire import load_contract, to_uint8


class TritonPythonModel:
    """Stateless float → uint8 conversion: one numpy pass per batch, one response per request."""

    def initialize(self, args):
        contract = load_contract(model_parameters(args))
        self.value_range = tuple(contract["generator"]["outputs"][0].get("value_range", (-1.0, 1.0)))

    def execute(self, requests):
        outputs = [pb_utils.get_input_tensor_by_name(r, "output").as_numpy() for r in requests]  # [B, C, H, W]
        joined = outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
        images = to_uint8(joined, self.value_range)  # one pass over the whole batch: [total, H, W, C]
        finite = np.isfinite(joined.reshape(joined.shape[0], -1)).all(axis=1)  # [total]
        responses, start = [], 0
        for output in outputs:
            n = output.shape[0]
            if not finite[start:start + n].all():
                error = pb_utils.TritonError("the generator produced NaN or infinite values",
                                             pb_utils.TritonError.INTERNAL)
                responses.append(pb_utils.InferenceResponse(error=error))
            else:
                tensors = [pb_utils.Tensor("image", images[start:start + n])]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += n
        return responses
