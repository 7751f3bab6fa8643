"""Imports point down the pipeline: a lower floor never imports a higher one (STYLE.md §17), checked on the source.

Every ``gandeploy.*`` import is counted, also the ones inside functions (a local import is still a dependency).
The self-contained Triton backends import nothing of gandeploy at all (the NGC container runs them without it), and
``gandeploy/wire.py``, which the backends import as the copy ``gd_wire.py``, imports nothing of gandeploy either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gandeploy"

# Floors from the bottom up; a module may import its own floor and the ones below it.
FLOORS = ("__init__", "wire", "errors", "utils", "formats", "models", "registry", "config", "diffs", "tolerances",
          "contract_images", "contract_tensors", "contract", "manifest", "data", "training", "runtimes", "export",
          "serving", "evaluation", "ui", "demo_paired", "demo", "api", "cli")


def _floor(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__version__" else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gandeploy":
            names = [node.module] if node.module != "gandeploy" else [f"gandeploy.{a.name}" for a in node.names]
            found += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "gandeploy"]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "backends" not in p.parts)


def test_every_floor_is_listed() -> None:
    floors = {_floor(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)) for p in _modules()}
    assert floors <= set(FLOORS), f"add {sorted(floors - set(FLOORS))} to FLOORS"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_point_down(path: Path) -> None:
    own = _floor(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
    upward = [f"line {line}: {name}" for line, name in _imports(path)
              if FLOORS.index(_floor(name)) > FLOORS.index(own)]
    assert not upward, f"{path.name} ({own}) imports higher floors: {upward}"


def test_backends_are_self_contained() -> None:
    for path in sorted((PACKAGE / "serving" / "backends").glob("*.py")):
        assert not _imports(path), f"{path.name} imports gandeploy; the NGC container runs it without gandeploy"


def test_wire_is_importable_beside_a_backend() -> None:
    """``gandeploy repo`` copies wire.py beside every python model as ``gd_wire.py``: it may import only the
    standard library and numpy (PIL inside a function), in Python 3.8 syntax."""
    path = PACKAGE / "wire.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 8))
    assert not _imports(path)
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            top.add((node.module or "").split(".")[0])
    assert top <= {"__future__", "io", "json", "struct", "zlib", "typing", "numpy"}, top
