"""No import cycles inside the krxflow package, between modules or between its sub-packages.

Every import counts, the ones inside functions too (a lazy import only hides a cycle from the
interpreter, not from the reader): a module that needs another's code imports it, and nothing it
imports imports it back. Imports under ``if TYPE_CHECKING:`` are annotations only and do not count.
Sub-packages (``krx/``, ``kis/``, ``hooks/``, ``sample/`` …) form the same acyclic graph one level up.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "krxflow"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["krxflow", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Module → the krxflow modules it imports (a name imported from a package counts as that
    package's submodule when it is one, else as the package)."""
    modules = _modules()

    def owner(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {owner(alias.name) for alias in node.names if alias.name.startswith("krxflow")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                if base.startswith("krxflow"):
                    targets |= {owner(f"{base}.{alias.name}") if f"{base}.{alias.name}" in modules else owner(base)
                                for alias in node.names}
        graph[name] = {t for t in targets if t and t not in (name, "krxflow")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def _subpackage(module: str) -> str | None:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else None


def test_no_module_imports_itself_back():
    found = cycles(import_graph())
    assert not found, f"import cycles between krxflow modules: {found}"


def test_no_subpackage_imports_itself_back():
    graph: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        for target in targets:
            source, dest = _subpackage(module), _subpackage(target)
            if source and dest and source != dest:
                graph.setdefault(source, set()).add(dest)
    found = cycles(graph)
    edges = {f"{m} -> {t}" for m, ts in import_graph().items() for t in ts
             if any(_subpackage(m) in c and _subpackage(t) in c and _subpackage(m) != _subpackage(t) for c in found)}
    assert not found, f"import cycles between krxflow sub-packages: {found}, through {sorted(edges)}"


def test_the_checker_finds_a_cycle():
    """The checker itself: a cycle of three, a lazy import and a TYPE_CHECKING import."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import krxflow.x\n"
                     "def f():\n    import krxflow.y\n")
    imported = {alias.name for node in _runtime_nodes(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported == {"krxflow.y"}
