"""The package's layering: base -> so3 -> data -> model -> artifacts -> train | infer -> workflows -> cli.

tools/import_graph.py reads every import with ``ast`` (inside functions too); the package must
have no import pointing to a higher layer, none between train and infer, and no cycle among
the imports made at import time. The checker itself is tested on small made-up packages.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from conftest import REPO_ROOT

TOOL = REPO_ROOT / "tools" / "import_graph.py"


def _load_tool():
    spec = importlib.util.spec_from_file_location("import_graph", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


graph = _load_tool()


def _package(root: Path, files: dict) -> Path:
    """A made-up ``deeph_tf`` under ``root`` with the given {relative path: source}."""
    package = root / "deeph_tf"
    for rel, text in {"__init__.py": "", **files}.items():
        path = package / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text))
    return package


def _violations(package: Path) -> list:
    return graph.violations(*graph.collect_imports(package))


def test_the_package_follows_the_layering():
    modules, imports = graph.collect_imports(REPO_ROOT / "deeph_tf")
    assert len(modules) > 50 and any(not e.at_import_time for e in imports)  # it really read the package
    assert graph.violations(modules, imports) == [], graph.report(modules, imports, per_module=False)


def test_layers_of_modules():
    assert graph.layer_of("deeph_tf") == "base"
    assert graph.layer_of("deeph_tf.conventions") == "base"
    assert graph.layer_of("deeph_tf.config.normalize") == "base"
    assert graph.layer_of("deeph_tf.data.graph") == "data"
    assert graph.layer_of("deeph_tf.infer.electronic.bands") == "infer"
    assert graph.layer_of("deeph_tf.cli") == "cli"


VIOLATIONS = {
    "upward import inside a function": (
        {"data/__init__.py": "", "data/graph.py": "def build():\n    from deeph_tf.model import network\n",
         "model/__init__.py": "", "model/network.py": "from deeph_tf.data import graph\n"},
        "deeph_tf.data.graph -> deeph_tf.model.network (line 2, deferred)", "data imports the higher layer model"),
    "config importing the data layer": (
        {"elements.py": "", "data/__init__.py": "", "data/structure.py": "",
         "config/__init__.py": "from deeph_tf import elements\nfrom deeph_tf.data.structure import load\n"},
        "deeph_tf.config -> deeph_tf.data.structure (line 2)", "base imports the higher layer data"),
    "train importing infer (relative import)": (
        {"train/__init__.py": "", "train/trainer.py": "from ..infer import predict\n",
         "infer/__init__.py": "", "infer/predict.py": ""},
        "deeph_tf.train.trainer -> deeph_tf.infer.predict (line 1)", "train and infer must not import each other"),
}


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_a_forbidden_import_is_found(case, tmp_path):
    files, edge, reason = VIOLATIONS[case]
    (found,) = _violations(_package(tmp_path, files))
    assert found == f"{edge}: {reason}"


def test_a_cycle_at_import_time_is_found_but_not_one_through_a_function(tmp_path):
    package = _package(tmp_path, {
        "data/__init__.py": "",
        "data/shards.py": "from deeph_tf.data import ff_graphs\n",
        "data/ff_graphs.py": "import deeph_tf.data.shards as shards\n",
        "data/reader.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from deeph_tf.data import writer\n",
        "data/writer.py": "def write():\n    from deeph_tf.data.reader import read\n",
    })
    assert _violations(package) == ["import cycle: deeph_tf.data.ff_graphs <-> deeph_tf.data.shards"]


def test_the_tool_prints_layers_and_exits_1_on_violations(tmp_path):
    package = _package(tmp_path, {"so3/__init__.py": "import deeph_tf.cli\n", "cli/__init__.py": ""})
    result = subprocess.run([sys.executable, str(TOOL), "--package", str(package), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert "[so3] 1 modules\n  so3 -> cli\n" in result.stdout
    assert "so3 -> cli          1 (1 + 0)" in result.stdout
    assert "violations: 1\n  deeph_tf.so3 -> deeph_tf.cli (line 1): so3 imports the higher layer cli" in result.stdout


@pytest.mark.parametrize("argv", [["--summary"], []])
def test_the_tool_runs_on_the_package(argv, capsys):
    assert graph.main(argv) == 0
    out = capsys.readouterr().out
    assert "layers, low to high: base -> so3 -> data -> model -> artifacts -> train | infer -> workflows -> cli" in out
    assert ("[data]" in out) is (argv == [])
