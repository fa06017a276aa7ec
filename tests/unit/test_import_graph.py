"""The shape of the house: no import cycles between webapp's packages and modules, and an ECS
client that knows nothing of Flask, the database or the rest of CertDesk.

Every import counts, at the top of a module or inside a function (a deferred import hides a cycle,
it does not remove it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import webapp

ROOT = Path(webapp.__file__).resolve().parent
# The composition roots may import everything: they wire the features together.
ROOTS = {"webapp", "webapp.cli", "webapp.models", "webapp.__main__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, resolved to absolute names."""
    tree = ast.parse(path.read_text(), str(path))
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def _node(module: str) -> str | None:
    """The graph node of a webapp module: its feature package, or the top-level module."""
    parts = module.split(".")
    if parts[0] != "webapp" or len(parts) == 1:
        return None
    candidate = ROOT / parts[1]
    return (
        f"webapp.{parts[1]}"
        if candidate.is_dir() or candidate.with_suffix(".py").exists()
        else None
    )


def build_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        module = _module_name(path)
        if module in ROOTS:
            continue
        src = _node(module)
        for target in _imports(path):
            dst = _node(target)
            if dst and dst != src and dst not in ROOTS:
                graph.setdefault(src, set()).add(dst)
        graph.setdefault(src, set())
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles_between_packages():
    cycle = find_cycle(build_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_deferred_imports_count():
    tree = ast.parse("def f():\n    from webapp.catalog import service\n")
    assert any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))


def test_the_ecs_client_stands_alone():
    for path in (ROOT / "ecs").rglob("*.py"):
        for target in _imports(path):
            top = target.split(".")[0]
            assert top not in ("flask", "flask_sqlalchemy", "sqlalchemy", "werkzeug"), (
                path,
                target,
            )
            if top == "webapp":
                assert target.startswith("webapp.ecs"), (path, target)
