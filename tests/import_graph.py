"""The import graph of a package, read with `ast` (nothing is imported), and its circles.

Example:
>>> graph = import_graph("tfzoo", function_level=False)
>>> "tfzoo.training.train_lib" in graph
True
"""

from __future__ import annotations

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_modules(package: str) -> dict[str, str]:
    """Dotted module name -> file, for every `.py` file under the package folder."""
    root = os.path.join(REPO, *package.split("."))
    modules = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, REPO)[: -len(".py")].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                modules[".".join(parts)] = path
    return modules


class _Imports(ast.NodeVisitor):
    """Collects `(module, names or None, inside a function)` of every import statement of one module."""

    def __init__(self, module: str, is_package: bool):
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[tuple[str, tuple[str, ...] | None, bool]] = []
        self.depth = 0

    def _function(self, node) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        self.found.extend((alias.name, None, self.depth > 0) for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            anchor = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        self.found.append((base, tuple(alias.name for alias in node.names), self.depth > 0))


def imports(path: str, module: str) -> list[tuple[str, tuple[str, ...] | None, bool]]:
    """`(module, names imported from it or None, inside a function)` of every import statement in the file."""
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read(), path)
    visitor = _Imports(module, path.endswith("__init__.py"))
    visitor.visit(tree)
    return visitor.found


def import_graph(package: str, function_level: bool) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (at module level; also inside functions if `function_level`).

    `from a.b import c` is an edge to `a.b.c` when that is a module, else to
    `a.b`; the parent packages an import runs first are not edges (else every
    package that re-exports its submodules would be a circle).
    """
    modules = package_modules(package)
    graph = {}
    for module, path in modules.items():
        edges = set()
        for base, names, in_function in imports(path, module):
            if in_function and not function_level:
                continue
            if names is None:
                edges.update({base} & modules.keys())
                continue
            for name in names:
                target = f"{base}.{name}" if f"{base}.{name}" in modules else base
                edges.update({target} & modules.keys())
        edges.discard(module)
        graph[module] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
