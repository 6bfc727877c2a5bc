"""The house's rules (issue 17), read from the source: every module a DVC stage runs is among its
`deps`, libraries (`features`, `models`) never import the application (`pipeline`), no stage
module imports another, and there is no import loop, at the top of a file or inside a function.

The import graph is read with `ast` from every `import` statement anywhere in a module (a
function's lazy import counts: it runs when the stage does; one under `if TYPE_CHECKING:` never
runs and does not); importing `a.b` also runs `a`.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("pipeline", "features", "models")
LIBRARIES = ("features", "models")


@cache
def modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the three parts."""
    found = {}
    for part in PARTS:
        for path in sorted((ROOT / part).glob("*.py")):
            found[part if path.stem == "__init__" else f"{part}.{path.stem}"] = path
    return found


def _executed(tree: ast.AST):
    """Every node of `tree` but those under `if TYPE_CHECKING:` (imports for type hints only,
    which never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


@cache
def imports(name: str, packages: bool = True) -> frozenset[str]:
    """The project's modules that `name` imports, anywhere in its file; with `packages`, also
    the package of each (importing `a.b` runs `a/__init__.py` first: a file the stage runs, but
    not an import loop when that `__init__` imports `a.b` back)."""
    path, known = modules()[name], modules()
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    named: set[str] = set()
    for node in _executed(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:  # a submodule by name, else a name from `base`
                sub = f"{base}.{alias.name}"
                named.add(sub if sub in known else base)
    found = {m for m in named if m in known}
    if packages:
        found |= {m.partition(".")[0] for m in found}
    return frozenset(found - {name})


def reached(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imports(name))
    return seen


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(stages()))
def test_every_module_a_stage_runs_is_in_its_deps(stage):
    module = f"pipeline.{stage}"
    assert module in modules(), f"dvc.yaml stage {stage!r} has no module {module}"
    deps = [str(d).rstrip("/") for d in stages()[stage].get("deps", [])]
    files = sorted(modules()[m].relative_to(ROOT).as_posix() for m in reached(module))
    missing = [f for f in files if not any(f == d or f.startswith(d + "/") for d in deps)]
    assert not missing, f"dvc.yaml stage {stage!r} runs files its deps do not list: {missing}"


def test_libraries_never_import_the_application():
    up = sorted(
        f"{m} -> {i}"
        for m in modules()
        if m.partition(".")[0] in LIBRARIES
        for i in imports(m)
        if i.partition(".")[0] == "pipeline"
    )
    assert not up, f"imports that point up: {up}"


def test_no_stage_module_imports_another():
    names = {f"pipeline.{s}" for s in stages()}
    across = sorted(
        f"{m} -> {i}" for m in names & modules().keys() for i in imports(m) if i in names
    )
    assert not across, f"stage modules importing each other: {across}"


def test_there_is_no_import_loop():
    graph = {m: imports(m, packages=False) for m in modules()}
    loops, state = [], {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for nxt in sorted(graph[name]):
            if state.get(nxt) == "open":
                loops.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not loops, f"import loops: {loops}"
