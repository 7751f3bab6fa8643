"""Triton python-backend model sources, copied into a repository as ``<model>/1/model.py`` (see repository.py).

They run inside Triton's backend stub (locally or in the NGC container), not inside gandeploy: each file imports
only numpy, PIL, onnxruntime, json, ``gd_backend_common`` and ``gd_latent_stream`` (the golden seed → latent
check), both copied beside it.
"""
