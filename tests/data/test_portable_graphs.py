"""Portable graph folders: shards are named by their sources' content, a copied folder (new
paths, new mtimes) is used as it is, and a graph folder alone (no dft/) trains like the
original; a folder built with other options is refused naming the option."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"
TINY_MODEL = {"irreps_hidden": "8x0e+4x1o+4x2e", "num_blocks": 1, "lmax_sh": 2, "num_radial_basis": 4,
              "radial_hidden": [8]}


def write_input(folder: Path, **dataset) -> None:
    config = {
        "model": dict(TINY_MODEL),
        "learning_rate": {"type": "exp", "start_lr": 3e-3, "stop_lr": 1e-4, "decay_steps": 2},
        "training": {
            "training_data": {"systems": "dft", "batch_size": 2},
            "dataset": {"split": {"train": 6, "validate": 2, "test": 0, "seed": 1}, "num_buckets": 1,
                        "graph_dir": "graphs", **dataset},
            "numb_steps": 4, "disp_freq": 2, "save_freq": 4, "seed": 5, "report": False, "plots": False,
        },
    }
    (folder / "input.json").write_text(json.dumps(config, indent=1))


def dtrain(folder: Path, *args: str) -> int:
    from deeph_tf.cli.dtrain import main

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return main(["input.json", *args, "-v", "WARNING"])
    finally:
        os.chdir(cwd)


def shard_times(folder: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in (folder / "graphs" / "shards").iterdir()}


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("original")
    shutil.copytree(FIXTURE, folder / "dft")
    write_input(folder)
    assert dtrain(folder) == 0
    return folder


def copy_elsewhere(source: Path, target: Path) -> Path:
    """A copy with new modification times everywhere (shutil.copy, not copy2), without the run's outputs."""
    target.mkdir()
    for name in ("dft", "graphs"):
        shutil.copytree(source / name, target / name, copy_function=shutil.copy)
    (target / "graphs" / "source_hashes.json").unlink(missing_ok=True)  # as if copied without the cache
    shutil.copy(source / "input.json", target / "input.json")
    return target


def test_a_copied_folder_with_new_mtimes_is_reused(original, tmp_path):
    from deeph_tf.config import load_input
    from deeph_tf.data.shards import build_from_config

    copy = copy_elsewhere(original, tmp_path / "copy")
    before = shard_times(copy)
    index_before = json.loads((copy / "graphs" / "index.json").read_text())
    cwd = os.getcwd()
    os.chdir(copy)
    try:
        index = build_from_config(load_input("input.json"))
    finally:
        os.chdir(cwd)
    assert shard_times(copy) == before  # nothing rebuilt
    assert index["fingerprint"] == index_before["fingerprint"]
    # the content, not the time, decides: change one file's bytes and its shard is rebuilt
    info = copy / "dft" / "water-000002" / "info.json"
    data = json.loads(info.read_text())
    data["fermi_energy_eV"] += 1e-3
    info.write_text(json.dumps(data))
    os.chdir(copy)
    try:
        changed = build_from_config(load_input("input.json"))
    finally:
        os.chdir(cwd)
    assert changed["fingerprint"] != index_before["fingerprint"]


def test_training_from_the_graph_folder_alone_equals_the_original_run(original, tmp_path):
    copy = copy_elsewhere(original, tmp_path / "copy")
    shutil.rmtree(copy / "dft")
    before = shard_times(copy)
    assert dtrain(copy) == 0
    assert shard_times(copy) == before
    a = np.genfromtxt(original / "lcurve.out", names=True)
    b = np.genfromtxt(copy / "lcurve.out", names=True)
    for name in a.dtype.names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("option, value", [("dtype", "float64"), ("split", {"train": 5, "validate": 3, "test": 0, "seed": 1}),
                                           ("targets", ["hamiltonian", "overlap"])])
def test_a_graph_folder_built_with_other_options_is_refused_naming_the_option(original, tmp_path, capsys, option, value):
    copy = copy_elsewhere(original, tmp_path / "copy")
    shutil.rmtree(copy / "dft")
    write_input(copy, **{option: value})
    assert dtrain(copy) != 0
    err = capsys.readouterr().err
    assert f"training.dataset.{option}" in err and "rebuild" in err


def test_no_data_and_no_graphs_says_what_is_missing(tmp_path, capsys):
    write_input(tmp_path)
    assert dtrain(tmp_path) != 0
    err = capsys.readouterr().err
    assert "not found" in err and "index.json" in err
