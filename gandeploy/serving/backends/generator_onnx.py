"""Triton python-backend model ``<name>_generator`` (local flavour): runs ``model.onnx`` with ONNX Runtime CPU.

Same tensors as the ONNX file (the ``generator_inputs`` of the served contract, config parameter
``gandeploy_contract``): e.g. ``z`` FP32 [nz] (+ ``label`` / ``code`` INT64 [1], reshaped to [] for the graph,
+ ``continuous`` FP32 [M]) or ``image`` FP32 [C, H, W] (H, W multiples of the declared ``multiple``) → ``output`` FP32 (``scale`` x the
input's H, W). Each input is checked by its declaration: indices in [0, classes), floats finite, dynamic H/W
multiples of the size rule. Triton's dynamic batcher hands ``execute`` several requests; requests with equal shapes run as one ONNX Runtime batch. Each request is validated on its
own: a bad one gets INVALID_ARG, the others still succeed.

Config parameters: ``gandeploy_contract``, ``onnx_file``, ``intra_op_threads`` (0: ONNX Runtime's default). SELF-CONTAINED (numpy, onnxruntime, json): the NGC container may run it without gandeploy.
"""

from __future__ import annotations


import numpy as np
import triton_python_backend_utils as pb_utils
from gd_backend_common import group_indices, model_parameters, onnx_session
from gd_wire import RequestError, check_finite, check_index, load_contract


class TritonPythonModel:
    """ONNX Runtime session over the export's ``model.onnx``, one per model instance."""

    def initialize(self, args):
        params = model_parameters(args)
        self.session = onnx_session(args, params)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        contract = load_contract(params)
        self.specs = {s["name"]: s for s in contract["generator"]["inputs"]}  # name -> TensorSpec JSON
        self.multiple = int((contract.get("images") or {}).get("multiple", 1))  # the image input's size rule

    def execute(self, requests):
        feeds, errors = [], {}
        for i, request in enumerate(requests):
            try:
                feeds.append(self._feed(request))
            except RequestError as exc:
                errors[i] = str(exc)
                feeds.append(None)
        outputs = [None] * len(requests)
        valid = [i for i, f in enumerate(feeds) if f is not None]
        keys = [tuple(feeds[i][n].shape[1:] for n in self.input_names) for i in valid]
        for members in group_indices(keys).values():
            idx = [valid[m] for m in members]
            batch = {n: np.concatenate([feeds[i][n] for i in idx]) for n in self.input_names}
            try:
                result = self.session.run(self.output_names, batch)
            except Exception as exc:  # ORT errors are untyped; answer the group, keep serving
                for i in idx:
                    errors[i] = f"ONNX Runtime failed on this batch: {str(exc).splitlines()[0][:300]}"
                continue
            start = 0
            for i in idx:
                n = feeds[i][self.input_names[0]].shape[0]
                outputs[i] = [np.ascontiguousarray(r[start:start + n], dtype=np.float32) for r in result]
                start += n
        responses = []
        for i in range(len(requests)):
            if i in errors:
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(errors[i], pb_utils.TritonError.INVALID_ARG)))
            else:
                tensors = [pb_utils.Tensor(n, arr) for n, arr in zip(self.output_names, outputs[i])]  # noqa: B905 - Python 3.8 in NGC
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def _feed(self, request):
        feed = {}
        for name in self.input_names:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise RequestError(f"missing input '{name}'")
            arr = tensor.as_numpy()
            spec = self.specs.get(name, {})
            if spec.get("classes"):
                arr = check_index(arr, int(spec["classes"]), name)  # [B]
            elif spec.get("dtype") == "int64":
                arr = arr.reshape(-1)
            else:
                arr = check_finite(arr, name)
            dynamic = [axis for axis, d in enumerate(spec.get("shape", [])) if d in ("H", "W")]
            if any(arr.shape[axis] % self.multiple for axis in dynamic):
                sizes = "x".join(str(arr.shape[axis]) for axis in dynamic)
                raise RequestError(f"input '{name}' height and width must be multiples of {self.multiple}, "
                                   f"got {sizes}")
            feed[name] = np.ascontiguousarray(arr)
        return feed

    def finalize(self):
        self.session = None

