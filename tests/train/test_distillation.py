"""Hamiltonian distillation end to end (tiny): an accurate-preset teacher, frozen, labels structures
without labels; a light-preset student trains on them mixed with DFT labels; the report holds the
student's error against the teacher and against DFT.

The fixture's 16 PySCF water molecules serve as both: their DFT Hamiltonians for the DFT part,
and copies without hamiltonian.h5 as the unlabelled structures.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "water_forces" / "dft"
SMALL = {"irreps_hidden": "8x0e+4x1o+4x2e", "num_blocks": 1, "lmax_sh": 2, "num_radial_basis": 4, "radial_hidden": [8]}


def write_input(folder: Path, preset: str, name: str, **extra) -> Path:
    config = {
        "model": dict(SMALL, preset=preset),
        "learning_rate": {"type": "exp", "start_lr": 3e-3, "stop_lr": 1e-3, "decay_steps": 2},
        "training": {
            "training_data": {"systems": str(FIXTURE), "batch_size": 2},
            "dataset": {"split": {"train": 10, "validate": 3, "test": 3, "seed": 0}, "num_buckets": 1,
                        "graph_dir": f"graphs_{name}"},
            "numb_steps": 4, "disp_freq": 2, "save_freq": 4, "seed": 1,
            "save_ckpt": f"{name}/model.ckpt", "disp_file": f"{name}/lcurve.out",
        },
        **extra,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def cli(module: str, *args: str) -> int:
    import importlib

    return importlib.import_module(f"deeph_tf.cli.{module}").main([*args, "-v", "WARNING"])


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distill")
    unlabeled = folder / "unlabeled"
    for source in sorted(FIXTURE.iterdir())[:6]:
        target = unlabeled / source.name
        target.mkdir(parents=True)
        for name in ("POSCAR", "info.json", "overlap.h5"):
            shutil.copy(source / name, target / name)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        write_input(folder, "accurate", "teacher")
        assert cli("dtrain", "teacher.json") == 0
        assert cli("dfreeze", "-c", "teacher", "-o", "teacher_model") == 0
        write_input(folder, "light", "student", distillation={
            "teacher": "teacher_model", "systems": "unlabeled", "cache_dir": "teacher_labels", "dft_weight": 0.5})
        assert cli("dtrain", "student.json") == 0
    finally:
        os.chdir(cwd)
    return folder


def test_teacher_labels_are_cached_as_unified_folders(distilled):
    from deeph_tf.data.structure import load_structure
    from deeph_tf.infer.predict import Predictor

    labels = json.loads((distilled / "teacher_labels" / "labels.json").read_text())
    assert labels["structures"] == 6 and labels["target"] == "hamiltonian"
    folders = sorted((distilled / "teacher_labels" / "teacher").iterdir())
    assert [f.name for f in folders] == sorted(p.name for p in (distilled / "unlabeled").iterdir())
    teacher = Predictor.load(distilled / "teacher_model")
    cached = load_structure(folders[0])
    _, predicted = teacher.predict_structure(load_structure(distilled / "unlabeled" / folders[0].name), score=False)
    stored = cached.read_blocks("hamiltonian")
    for a, b in zip(stored.blocks, predicted.blocks):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert stored.max_hermiticity_deviation() < 1e-6


def test_student_trains_on_teacher_and_dft_labels(distilled):
    index = json.loads((distilled / "graphs_student" / "index.json").read_text())
    split = json.loads((distilled / "graphs_student" / "split.json").read_text())
    assert index["split_sizes"] == {"train": 16, "validate": 3, "test": 3}  # 10 DFT + 6 teacher-labelled
    assert sum(sid.startswith("teacher/") for sid in split["train"]) == 6
    assert not any(sid.startswith("teacher/") for sid in split["validate"] + split["test"])
    out = json.loads((distilled / "out.json").read_text())
    assert out["model"]["preset"] == "light" and out["distillation"]["dft_weight"] == 0.5
    teacher_input = json.loads((distilled / "teacher_model" / "metadata.json").read_text())["input"]
    assert teacher_input["model"]["preset"] == "accurate"


def test_report_compares_student_with_teacher_and_dft(distilled):
    record = json.loads((distilled / "student" / "training_record.json").read_text())
    comparisons = {c["name"]: c for c in record["comparisons"]}
    assert list(comparisons) == ["student vs teacher", "student vs DFT", "teacher vs DFT"]
    for comparison in comparisons.values():
        assert comparison["structures"] == 3 and comparison["units"]["mae"] == "eV"
        assert np.isfinite(comparison["metrics"]["mae"]) and np.isfinite(comparison["metrics"]["mae_gauge"])
    text = (distilled / "student" / "report.md").read_text()
    assert "### student vs teacher" in text and "### student vs DFT" in text
    # Student vs DFT here is dtest's number: mean over the 3 validation structures of their MAE.
    from deeph_tf.infer.evaluate import evaluate
    from deeph_tf.infer.selection import select_structures
    from deeph_tf.infer.predict import Predictor

    student = Predictor.load(distilled / "student")
    structures = select_structures(FIXTURE, 0, distilled / "graphs_student" / "split.json", "validate")
    _, errors = evaluate(student, structures, physics=False, progress=False)
    assert comparisons["student vs DFT"]["metrics"]["mae"] == pytest.approx(errors.summary()["mae_raw_meV"] / 1000, rel=1e-5)
