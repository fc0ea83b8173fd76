"""A built wheel works on its own: installed (not editable) into a fresh venv, ``dtrain`` runs.

The wheel is built from the checkout without build isolation (no download) and installed
with ``--no-deps`` into a new venv that sees this venv's dependencies through a ``.pth``
line (a plain path, so this venv's editable hook for deeph_tf is *not* loaded). ``dtrain``
then trains two steps on the committed fixture from a folder outside the repository.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"
TINY_MODEL = {"irreps_hidden": "4x0e+2x1o", "num_blocks": 1, "lmax_sh": 1, "num_radial_basis": 4,
              "radial_hidden": [4]}


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{args}\nstdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    return result


def _fresh_venv(folder: Path) -> Path:
    """A venv without pip whose site-packages also sees this venv's packages; returns its python."""
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    (Path(site) / "outer_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_wheel_installs_and_dtrain_runs_outside_the_checkout(tmp_path):
    # A copy of the sources: setuptools builds in-tree, and a build/ folder left from an older
    # layout would put stale modules into the wheel.
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "examples", "tests", "benchmarks"))
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels,
          source], cwd=tmp_path)
    (wheel,) = wheels.glob("deeph_tf-*.whl")
    python = _fresh_venv(tmp_path / "venv")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel], cwd=tmp_path)

    work = tmp_path / "run"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    code = "import deeph_tf, json, os, sys; print(json.dumps([deeph_tf.__file__, [os.path.abspath(p) for p in sys.path]]))"
    package_file, path = json.loads(_run([python, "-c", code], cwd=work, env=env).stdout)
    assert package_file.startswith(str(tmp_path / "venv")), package_file
    assert str(REPO_ROOT) not in path, path

    config = {
        "_comment": "wheel test",
        "model": TINY_MODEL,
        "training": {
            "training_data": {"systems": str(FIXTURE), "batch_size": 2},
            "dataset": {"split": {"train": 6, "validate": 2, "test": 0, "seed": 1}, "num_buckets": 1},
            "numb_steps": 2, "disp_freq": 1, "save_freq": 2, "seed": 3,
        },
    }
    (work / "input.json").write_text(json.dumps(config))
    _run([tmp_path / "venv" / "bin" / "dtrain", "input.json", "-v", "WARNING"], cwd=work, env=env)
    assert json.loads((work / "out.json").read_text())["training"]["numb_steps"] == 2
    assert (work / "lcurve.out").is_file() and (work / "model.ckpt.h5").is_file()
