"""The Python API: ``load`` (a generator from a run dir, an export dir or a served model) and the pipeline as
calls (``train``, ``export``, ``build_repository``, ``Server``). ``gandeploy`` re-exports them; the CLI's
train / export / repo / serve / sample / translate / upscale commands are thin layers over them."""

from __future__ import annotations

from gandeploy.api.generator import Generator, load
from gandeploy.api.pipeline import Server, build_repository, export, train

__all__ = ["Generator", "Server", "build_repository", "export", "load", "train"]
