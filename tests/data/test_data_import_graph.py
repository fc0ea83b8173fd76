"""The data modules import each other without cycles (counting imports inside functions too)."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

from conftest import REPO_ROOT

DATA = REPO_ROOT / "deeph_tf" / "data"


def data_imports(folder: Path) -> Dict[str, Set[str]]:
    """Module stem -> stems of the ``deeph_tf.data`` modules it imports anywhere in its source."""
    graph: Dict[str, Set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "deeph_tf.data":
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("deeph_tf.data."):
                names.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                names |= {a.name.split(".")[2] for a in node.names if a.name.startswith("deeph_tf.data.")}
        graph[path.stem] = {name for name in names if (folder / f"{name}.py").is_file()} - {path.stem}
    return graph


def cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle ``[a, b, ..., a]``, or [] if there is none (depth-first search)."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(module: str) -> List[str]:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                return path[path.index(imported):] + [imported]
            if imported not in state and (found := visit(imported)):
                return found
        state[module] = 2
        path.pop()
        return []

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return []


def test_data_modules_import_without_cycles():
    graph = data_imports(DATA)
    assert {"shard_store", "shards", "ff_graphs"} <= set(graph)
    assert not cycle(graph), " -> ".join(cycle(graph))
    assert "shards" not in graph["ff_graphs"] and "ff_graphs" not in graph["shard_store"]


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path):
    (tmp_path / "a.py").write_text("from deeph_tf.data.b import f\n")
    (tmp_path / "b.py").write_text("def f():\n    from deeph_tf.data import a\n")
    (tmp_path / "c.py").write_text("import deeph_tf.data.a\n")
    graph = data_imports(tmp_path)
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert cycle(graph) == ["a", "b", "a"]
