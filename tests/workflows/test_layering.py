"""The layers import only downwards: train and infer never import each other (not even inside a
function), artifacts import neither, and workflows are imported by nothing but the CLIs."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "deeph_tf"
FORBIDDEN = {
    "train": ("deeph_tf.infer", "deeph_tf.workflows", "deeph_tf.cli"),
    "infer": ("deeph_tf.train", "deeph_tf.workflows", "deeph_tf.cli"),
    "artifacts": ("deeph_tf.train", "deeph_tf.infer", "deeph_tf.workflows", "deeph_tf.cli"),
    "model": ("deeph_tf.artifacts", "deeph_tf.train", "deeph_tf.infer", "deeph_tf.workflows", "deeph_tf.cli"),
    "workflows": ("deeph_tf.cli",),
}


def imported_modules(path: Path):
    """Every module an ``import`` or ``from ... import`` anywhere in ``path`` names (top level or not)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_down(layer):
    offending = [f"{path.relative_to(REPO_ROOT)} imports {name}"
                 for path in sorted((PACKAGE / layer).rglob("*.py"))
                 for name in imported_modules(path)
                 if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer])]
    assert not offending, "\n".join(offending)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from deeph_tf.infer.predict import Predictor\n    import deeph_tf.train.step\n")
    assert list(imported_modules(source)) == ["deeph_tf.infer.predict", "deeph_tf.train.step"]
