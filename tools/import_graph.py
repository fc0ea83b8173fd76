#!/usr/bin/env python
"""Print deeph_tf's import graph by layer and list the imports that break the layering.

The layers, low to high (an import may only point to its own layer or a lower one)::

    base -> so3 -> data -> model -> artifacts -> train | infer -> workflows -> cli

``base`` is every module directly in ``deeph_tf/`` (``__init__``, ``_version``, ``conventions``,
``elements``, ``atomic_io``, ``progress``, ``plotting``, ``jsonutil``, ...) and the input loader
``deeph_tf/config/`` (so the input loader may import base modules only, the element table
``deeph_tf/elements.py`` among them). ``train`` and ``infer`` are
one level and never import each other. Imports are read with :mod:`ast` (nothing is imported),
inside functions included; cycles are looked for among the imports made when a module is
imported (module level, not inside functions or under ``if TYPE_CHECKING:``).

Usage::

    python tools/import_graph.py            # modules by layer, layer -> layer counts, violations
    python tools/import_graph.py --summary  # without the per-module lines
    python tools/import_graph.py --check    # exit status 1 when there are violations
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

PACKAGE = "deeph_tf"
#: Layers from low to high; names in one tuple share a level and may not import each other.
LAYERS: Tuple[Tuple[str, ...], ...] = (
    ("base",), ("so3",), ("data",), ("model",), ("artifacts",), ("train", "infer"), ("workflows",), ("cli",),
)
#: Subpackages that belong to the base layer.
BASE_PACKAGES = ("config",)
LEVEL: Dict[str, int] = {name: level for level, names in enumerate(LAYERS) for name in names}


@dataclass(frozen=True)
class Import:
    """One import statement of one module, resolved to a module of the package."""

    source: str  #: importing module, e.g. "deeph_tf.data.graph"
    target: str  #: imported module, e.g. "deeph_tf.conventions"
    line: int
    at_import_time: bool  #: module level (False: inside a function, or under ``if TYPE_CHECKING:``)

    @property
    def where(self) -> str:
        return f"line {self.line}" + ("" if self.at_import_time else ", deferred")


def module_name(path: Path, package_root: Path) -> str:
    """deeph_tf/data/graph.py -> "deeph_tf.data.graph"; deeph_tf/config/__init__.py -> "deeph_tf.config"."""
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    """The layer of a package module: "deeph_tf.data.graph" -> "data", "deeph_tf.config.files" -> "base"."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in BASE_PACKAGES:
        return "base"
    if parts[1] in LEVEL:
        return parts[1]
    return "base"  # a single-file module directly in deeph_tf/


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module) -> Iterator[Tuple[ast.stmt, bool]]:
    """(import statement, made at import time) for every import in a module, depth first."""

    def walk(nodes: Sequence[ast.AST], at_import_time: bool) -> Iterator[Tuple[ast.stmt, bool]]:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node, at_import_time
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(list(ast.iter_child_nodes(node)), False)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from walk(node.body, False)
                yield from walk(node.orelse, at_import_time)
            else:
                yield from walk(list(ast.iter_child_nodes(node)), at_import_time)

    yield from walk(tree.body, True)


def _resolve(node: ast.stmt, module: str, is_package: bool, modules: Set[str]) -> List[str]:
    """The package modules an import statement loads (``from pkg import sub`` -> "pkg.sub")."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative import
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    found = []
    for name in names:
        while name and name not in modules:  # "deeph_tf.data.graph.build" -> "deeph_tf.data.graph"
            name = name.rpartition(".")[0]
        if name and name not in found:
            found.append(name)
    return found


def collect_imports(package_root: Path) -> Tuple[List[str], List[Import]]:
    """All modules of the package at ``package_root`` (sorted) and their imports of package modules."""
    files = sorted(package_root.rglob("*.py"))
    names = {module_name(f, package_root): f for f in files}
    modules = set(names)
    imports: List[Import] = []
    for module, path in sorted(names.items()):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, at_import_time in _import_nodes(tree):
            for target in _resolve(node, module, path.name == "__init__.py", modules):
                if target != module:
                    imports.append(Import(module, target, node.lineno, at_import_time))
    return sorted(modules), imports


def violation(edge: Import) -> Optional[str]:
    """Why an import breaks the layering, or None when it is allowed."""
    source, target = layer_of(edge.source), layer_of(edge.target)
    if LEVEL[target] > LEVEL[source]:
        return f"{source} imports the higher layer {target}"
    if source != target and LEVEL[target] == LEVEL[source]:
        return f"{source} and {target} must not import each other"
    return None


def find_cycles(modules: Sequence[str], imports: Sequence[Import]) -> List[List[str]]:
    """Cycles among import-time imports: each strongly connected component of two or more modules."""
    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    for edge in imports:
        if edge.at_import_time:
            graph[edge.source].add(edge.target)
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[List[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for node in sorted(graph):
            if node not in index:
                connect(node)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(components)


def violations(modules: Sequence[str], imports: Sequence[Import]) -> List[str]:
    """Every layering violation and every import cycle, one readable line each."""
    lines = []
    for edge in imports:
        why = violation(edge)
        if why is not None:
            lines.append(f"{edge.source} -> {edge.target} ({edge.where}): {why}")
    for cycle in find_cycles(modules, imports):
        lines.append("import cycle: " + " <-> ".join(cycle))
    return lines


def _short(module: str) -> str:
    """"deeph_tf.data.graph" -> "data.graph" (the package itself keeps its name)."""
    return module[len(PACKAGE) + 1:] if module.startswith(PACKAGE + ".") else module


def report(modules: Sequence[str], imports: Sequence[Import], per_module: bool = True) -> str:
    """The text the tool prints: modules by layer, layer -> layer counts, then the violations."""
    order = [name for names in LAYERS for name in names]
    lines = [f"{PACKAGE} import graph: {len(modules)} modules, {len(imports)} imports of package modules "
             f"({sum(e.at_import_time for e in imports)} at import time, "
             f"{sum(not e.at_import_time for e in imports)} deferred: inside functions or under TYPE_CHECKING)",
             "layers, low to high: " + " -> ".join(" | ".join(names) for names in LAYERS), ""]
    if per_module:
        targets: Dict[str, List[str]] = {m: [] for m in modules}
        for edge in imports:
            shown = _short(edge.target) + ("" if edge.at_import_time else " (deferred)")
            if shown not in targets[edge.source]:
                targets[edge.source].append(shown)
        for layer in order:
            members = [m for m in modules if layer_of(m) == layer]
            lines.append(f"[{layer}] {len(members)} modules")
            for m in members:
                lines.append(f"  {_short(m)} -> {', '.join(targets[m]) or '-'}")
            lines.append("")
    counts = Counter((layer_of(e.source), layer_of(e.target)) for e in imports)
    lines.append("layer -> layer: imports (at import time + deferred)")
    for (source, target) in sorted(counts, key=lambda st: (order.index(st[0]), order.index(st[1]))):
        top = sum(1 for e in imports if e.at_import_time and (layer_of(e.source), layer_of(e.target)) == (source, target))
        total = counts[(source, target)]
        lines.append(f"  {source:>9} -> {target:<9} {total:4d} ({top} + {total - top})")
    found = violations(modules, imports)
    lines += ["", f"violations: {len(found)}"] + [f"  {line}" for line in found]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, default=Path(__file__).resolve().parents[1] / PACKAGE,
                        help="folder of the package (default: deeph_tf beside tools/)")
    parser.add_argument("--summary", action="store_true", help="leave out the per-module lines")
    parser.add_argument("--check", action="store_true", help="exit with status 1 when there are violations")
    args = parser.parse_args(argv)
    modules, imports = collect_imports(args.package)
    print(report(modules, imports, per_module=not args.summary))
    return 1 if args.check and violations(modules, imports) else 0


if __name__ == "__main__":
    sys.exit(main())
