"""gandeploy: train GAN generators and ship them behind NVIDIA Triton, fast and provably correct.

    import gandeploy
    g = gandeploy.load("export/cgan-digits")          # or a run dir, or "triton://127.0.0.1:8001/cgan-digits"
    pictures = g.sample(range(16), label=3)           # uint8 [16, H, W, C]

``load``, ``Generator``, ``train``, ``export``, ``build_repository`` and ``Server`` live in ``gandeploy.api``
and load on first use, so ``import gandeploy`` stays cheap (no torch, no tritonclient). ``gandeploy.export`` is
the function even though a subpackage has that name too (``from gandeploy.export.pipeline import ...`` still
reaches the subpackage).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

API = ("Generator", "Server", "build_repository", "export", "load", "train")
__all__ = ["__version__", *API]

def _api_attribute(name: str) -> property:
    """``gandeploy.<name>``: read from ``gandeploy.api`` on first use. Python binds a subpackage to its parent
    when it is imported (``gandeploy.export``); the setter keeps that from hiding the API function."""

    def get(module: types.ModuleType) -> Any:
        value = getattr(importlib.import_module("gandeploy.api"), name)
        if f"gandeploy.{name}" in sys.modules and getattr(value, "__name__", "") == name:
            # 'import gandeploy.export.x as y' looks for y under the __name__ of what gandeploy.export is
            value.__name__ = f"gandeploy.{name}"
        return value

    def keep_api(module: types.ModuleType, value: Any) -> None:
        pass

    return property(get, keep_api)


class _Package(types.ModuleType):
    """The ``gandeploy`` module, with the API names as lazy attributes."""

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *API})


for _name in API:
    setattr(_Package, _name, _api_attribute(_name))
sys.modules[__name__].__class__ = _Package
