"""The generator's modules import one way: no module reaches itself through its imports, lazy
ones and those for type checking included (issue 20: `format` and `payload_models` imported the
worker pool, which imported them back)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO

GENERATOR = REPO / "generator"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, known: set[str]) -> set[str]:
    """The generator modules `path` imports anywhere in its text."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parents, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return (found & known) - {module_name(path)}


def graph() -> dict[str, set[str]]:
    paths = sorted(GENERATOR.rglob("*.py"))
    known = {module_name(path) for path in paths}
    return {module_name(path): imports(path, known) for path in paths}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk meets, as the path that closes it."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(edges[name]):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                walk(target)
        path.pop()
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            walk(name)
    return found


def test_the_walk_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_generator_module_imports_itself_back() -> None:
    edges = graph()
    assert {"generator.pipeline", "generator.format", "generator.payload_models"} <= set(edges)
    assert "generator.format" in edges["generator.pipeline"]  # the graph is really read
    assert cycles(edges) == []
