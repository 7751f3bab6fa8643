"""Triton python-backend model ``<name>_seed``: the sampling ensemble's first step, seed (+ label) → latent.

``seed`` INT64 [1] → ``z`` FP32 [nz], the documented map ``default_rng(seed).standard_normal(nz)`` (NumPy
PCG64, float64 draws cast to float32; seeds 0 .. 2**63 - 1), identical to ``gandeploy.models.io``. For
conditional models ``label`` INT64 [1] is checked against ``num_classes`` and passed on as ``label_checked``.
Bad requests get INVALID_ARG one by one; the rest of the batch still succeeds.

Config parameters: ``nz``, ``num_classes`` (0: unconditional). SELF-CONTAINED (numpy, json).
"""

from __future__ import annotations

import numpy as np
import triton_python_backend_utils as pb_utils
from gd_backend_common import RequestError, check_labels, check_seeds, int_param, latent_from_seed, model_parameters


class TritonPythonModel:
    """Stateless: seeds to latents, labels checked."""

    def initialize(self, args):
        params = model_parameters(args)
        self.nz = int_param(params, "nz", 0)
        self.num_classes = int_param(params, "num_classes", 0)
        if self.nz < 1:
            raise ValueError("config parameter 'nz' must be a positive integer")

    def execute(self, requests):
        return [self._answer(r) for r in requests]

    def _answer(self, request):
        try:
            seed_tensor = pb_utils.get_input_tensor_by_name(request, "seed")
            if seed_tensor is None:
                raise RequestError("missing input 'seed'")
            seeds = check_seeds(seed_tensor.as_numpy())  # [B]
            z = np.stack([latent_from_seed(int(s), self.nz) for s in seeds]).astype(np.float32)  # [B, nz]
            outputs = [pb_utils.Tensor("z", z)]
            if self.num_classes:
                label_tensor = pb_utils.get_input_tensor_by_name(request, "label")
                if label_tensor is None:
                    raise RequestError(f"missing input 'label' (class index 0..{self.num_classes - 1})")
                labels = check_labels(label_tensor.as_numpy(), self.num_classes)  # [B]
                if labels.shape[0] != seeds.shape[0]:
                    raise RequestError(f"inputs 'seed' and 'label' must have the same batch size, got "
                                       f"{seeds.shape[0]} and {labels.shape[0]}")
                outputs.append(pb_utils.Tensor("label_checked", labels.reshape(-1, 1)))
            return pb_utils.InferenceResponse(output_tensors=outputs)
        except RequestError as exc:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG))
