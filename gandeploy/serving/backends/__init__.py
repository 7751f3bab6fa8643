"""Triton python-backend model sources, copied into a repository as ``<model>/1/model.py`` (see repository.py).

They run inside Triton's backend stub (locally or in the NGC container), not inside gandeploy: each file imports
only numpy, PIL, onnxruntime, json, ``gd_backend_common``, ``gd_pictures`` and ``gd_wire``, copied beside it.
``gd_wire.py`` is ``gandeploy/wire.py`` itself (the rules gandeploy applies in-process), copied byte for byte.
"""
