"""Imports point down the pipeline: a lower floor never imports a higher one (STYLE.md §17), checked on the source.

Every ``gandeploy.*`` import is counted, also the ones inside functions (a local import is still a dependency).
No two modules import each other, directly or round a longer loop, even inside one floor (a local import that
closes a loop hides a helper both sides need: it belongs in a module below them).
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
          "contract_images", "contract_tensors", "contract", "manifest", "data", "metrics", "training", "runtimes",
          "export", "serving", "evaluation", "ui", "demo_paired", "demo", "api", "cli")


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


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, dict[str, int]]:
    """module -> {module it imports: first line}, from the source; ``from pkg import name`` lands on the submodule
    ``pkg.name`` when there is one, else on ``pkg`` (the module that defines ``name``)."""
    paths = {_module_name(p): p for p in _modules()}

    def resolve(name: str) -> str:
        while name not in paths and "." in name:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, dict[str, int]] = {}
    for module, path in paths.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and node.module.split(".")[0] == "gandeploy":
                targets = [resolve(f"{node.module}.{a.name}") for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [resolve(a.name) for a in node.names if a.name.split(".")[0] == "gandeploy"]
            else:
                continue
            for target in targets:
                if target != module and target in paths:
                    edges[target] = min(edges.get(target, node.lineno), node.lineno)
        graph[module] = edges
    return graph


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan): each holds at least one import loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def test_no_import_cycles() -> None:
    graph = _import_graph()
    loops = ["; ".join(f"{a} -> {b} (line {graph[a][b]})" for a in group for b in sorted(graph[a]) if b in group)
             for group in import_cycles(graph)]
    assert not loops, "import cycles (module-level and function-local imports):\n" + "\n".join(loops)


def test_cycle_check_finds_a_loop() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}, "e": {"e": 5}}
    assert import_cycles(graph) == [["a", "b", "c"]]


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
