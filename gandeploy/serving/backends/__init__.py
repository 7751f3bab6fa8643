"""Triton python-backend model sources, copied into a repository as ``<model>/1/model.py`` (see repository.py).

They run inside Triton's backend stub (locally or in the NGC container), not inside gandeploy: each file imports
only numpy, PIL, onnxruntime, json and ``gd_backend_common`` (copied beside it).
"""
