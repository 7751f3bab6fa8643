"""Helpers of gandeploy's Triton python-backend models that only the server needs: config parameters, the ONNX
Runtime session, the golden seed → latent check at load time, grouping by shape. SELF-CONTAINED: numpy, json and
``gd_wire`` (``gandeploy repo`` copies both beside every ``<model>/1/model.py``).

The rules themselves (seed → latent, uint8 maps, request checks, PNG) are not here: they are ``gd_wire.py``, the
very file ``gandeploy/wire.py`` that gandeploy imports in-process, so there is one copy of each. Keep the syntax
Python 3.8-compatible (the NGC container's interpreter may be older).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

from gd_wire import SEED_ROLE, latent_stream_problem

DEFAULT_MAX_PIXELS = 4096 * 4096


def model_parameters(args: Dict[str, Any]) -> Dict[str, str]:
    """The ``parameters`` of a model's config as plain strings (from the python backend's ``args``)."""
    config = json.loads(args["model_config"])
    return {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}


def int_param(params: Dict[str, str], key: str, default: int) -> int:
    value = params.get(key, "")
    return int(value) if value.strip() else default


def onnx_session(args: Dict[str, Any], params: Dict[str, str]) -> Any:
    """An ONNX Runtime CPU session over the model version's ``onnx_file`` (config parameter, default model.onnx),
    with ``intra_op_threads`` (0: ONNX Runtime's default) and one inter-op thread."""
    import os

    import onnxruntime as ort

    path = os.path.join(args["model_repository"], args["model_version"], params.get("onnx_file", "model.onnx"))
    options = ort.SessionOptions()
    threads = int_param(params, "intra_op_threads", 0)
    if threads > 0:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def check_latent_stream(contract: Dict[str, Any], model_name: str) -> None:
    """Raise RuntimeError (Triton marks the model UNAVAILABLE with this message) when the contract serves seeds
    and this NumPy's draws differ from the golden ones (``gd_wire.GOLDEN_LATENTS``); the message names the NumPy
    the contract recorded."""
    if not any(spec.get("role") == SEED_ROLE for spec in contract.get("inputs", [])):
        return  # image-to-image: no latents drawn
    recorded = (contract.get("latent_stream") or {}).get("numpy")
    problem = latent_stream_problem(recorded, where="where the server's python backend runs")
    if problem is not None:
        raise RuntimeError("model '%s' refuses to load: %s" % (model_name, problem))


def group_indices(keys: List[Any]) -> Dict[Any, List[int]]:
    """Positions of ``keys`` grouped by equal key (only equal shapes can share one generator batch)."""
    groups: Dict[Any, List[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups
