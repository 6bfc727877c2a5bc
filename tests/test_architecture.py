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
        for path in sorted((ROOT / part).rglob("*.py")):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[dotted.removesuffix(".__init__")] = path
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
def imports(
    name: str, packages: bool = True, top: bool = False, function: str | None = None
) -> frozenset[str]:
    """The project's modules that `name` imports, anywhere in its file (with `top`, only at the
    top of the file; with `function`, at the top, in that function and in the file's
    undecorated functions, its helpers); with `packages`, also the packages of each (importing
    `a.b.c` runs `a/__init__.py` and `a/b/__init__.py` first: files the stage runs, but not an
    import loop when such an `__init__` imports `a.b.c` back)."""
    path, known = modules()[name], modules()
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    named: set[str] = set()
    tree = ast.parse(path.read_text())
    if function:  # the top of the file, that function, and the undecorated helpers
        body = [n for n in tree.body if getattr(n, "name", None) == function]
        assert body, f"{name} has no function {function}"
        helpers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.decorator_list]
        nodes = [*tree.body, *(x for f in [body[0], *helpers] for x in _executed(f))]
    else:
        nodes = tree.body if top else _executed(tree)
    for node in nodes:
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
        found |= {p for m in found for p in _packages(m) if p in known}
    return frozenset(found - {name})


def _packages(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def reached(start: str | set[str]) -> set[str]:
    seen, todo = set(), [start] if isinstance(start, str) else list(start)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imports(name))
    return seen


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_files(stage: str) -> list[str]:
    """The files a stage runs: its command `churn <stage>` runs pipeline/cli.py, what cli.py
    imports at its top and in the verb's function (the stage module), and what those import,
    anywhere (a lazy import runs when the stage does)."""
    module = f"pipeline.{stage}"
    assert module in modules(), f"dvc.yaml stage {stage!r} has no module {module}"
    cmd = str(stages()[stage]["cmd"]).split()
    assert cmd[:2] == ["churn", stage], f"dvc.yaml stage {stage!r} runs {cmd[:2]}"
    runs = {"pipeline.cli"} | reached(imports("pipeline.cli", function=stage))
    assert module in runs, f"`churn {stage}` does not import {module}"
    return sorted(modules()[m].relative_to(ROOT).as_posix() for m in runs)


@pytest.mark.parametrize("stage", sorted(stages()))
def test_every_module_a_stage_runs_is_in_its_deps(stage):
    deps = [str(d).rstrip("/") for d in stages()[stage].get("deps", [])]
    files = stage_files(stage)
    missing = [f for f in files if not any(f == d or f.startswith(d + "/") for d in deps)]
    assert not missing, f"dvc.yaml stage {stage!r} runs files its deps do not list: {missing}"


def declared_params(stage: str) -> set[str]:
    """The stage module's PARAMS, read from its source."""
    tree = ast.parse(modules()[f"pipeline.{stage}"].read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            "PARAMS"
        ]:
            return set(ast.literal_eval(node.value))
    raise AssertionError(f"pipeline/{stage}.py declares no PARAMS")


@pytest.mark.parametrize("stage", sorted(stages()))
def test_a_stage_is_given_the_params_dvc_reruns_it_for(stage):
    """What a stage reads of params.yaml is what it declares (pipeline.config.only hands it
    nothing else, and reading more is an error), and dvc.yaml lists exactly that: a change of
    any of it reruns the stage."""
    listed = {str(p) for p in stages()[stage].get("params", [])}
    assert listed == declared_params(stage)


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
