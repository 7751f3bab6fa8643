"""Triton python-backend model ``<name>_postprocess``: generator output → uint8 picture.

``output`` FP32 [C, H, W] in [-1, 1] → ``image`` UINT8 [H, W, C] by ``rint((x + 1) * 127.5)`` clipped to
0..255, the same map as ``gandeploy.models.io.to_uint8``. SELF-CONTAINED (numpy, json).
"""

from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils
from gd_backend_common import to_uint8


class TritonPythonModel:
    """Stateless float → uint8 conversion, one response per request."""

    def initialize(self, args):
        pass

    def execute(self, requests):
        responses = []
        for request in requests:
            output = pb_utils.get_input_tensor_by_name(request, "output").as_numpy()  # [B, C, H, W]
            if not np.all(np.isfinite(output)):
                error = pb_utils.TritonError("the generator produced NaN or infinite values",
                                             pb_utils.TritonError.INTERNAL)
                responses.append(pb_utils.InferenceResponse(error=error))
                continue
            image = to_uint8(output)  # [B, H, W, C]
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("image", image)]))
        return responses
