"""End to end for target "energy_force": dtrain on force.h5 and on a dpdata-written deepmd/npy
system, the training report against lcurve.out, dfreeze's energy/forces/virial signature with
forces = -dE/dr on real PySCF structures, dtest's DeePMD printout and detail files, restart,
and force-field distillation (teacher -> student, mixed with DFT labels).

Fixture: tests/fixtures/water_forces (16 PySCF water molecules, PBE/def2-SVP, with forces).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "water_forces" / "dft"
TINY = {"target": "energy_force", "irreps_hidden": "8x0e+4x1o+2x2e", "num_blocks": 1, "lmax_sh": 2,
        "num_radial_basis": 4, "radial_hidden": [8], "energy_hidden": [8], "cutoff": 4.0, "precision": "float64"}


def write_input(folder: Path, systems=str(FIXTURE), name: str = "input.json", **sections) -> Path:
    config = {
        "model": dict(TINY),
        "learning_rate": {"type": "exp", "start_lr": 5e-3, "stop_lr": 1e-3, "decay_steps": 4},
        "training": {
            "training_data": {"systems": systems, "batch_size": 2},
            "dataset": {"split": {"train": 10, "validate": 3, "test": 3, "seed": 0}, "num_buckets": 1,
                        "graph_dir": "graphs", "dtype": "float64"},
            "numb_steps": 12, "disp_freq": 4, "save_freq": 6, "seed": 3,
        },
        "targets": {"rmse_f": 100.0, "mae_e": 1e-9},
    }
    for key, value in sections.items():
        if key in ("training_data", "dataset"):
            config["training"][key].update(value)
        elif key in config["training"]:
            config["training"][key] = value
        else:
            config[key] = value
    path = folder / name
    path.write_text(json.dumps(config, indent=1))
    return path


def run(main, *args) -> int:
    return main([*args, "-v", "WARNING"])


def dtrain(*args) -> int:
    from deeph_tf.cli.dtrain import main

    return run(main, *args)


def dtrain_zero_steps_in(folder: Path, *args) -> int:
    """dtrain with 0 steps (a checkpoint of the starting model at step 0) run inside ``folder``."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        write_input(folder, numb_steps=0, disp_freq=1, save_freq=1)
        return dtrain("input.json", *args)
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ff")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        write_input(folder)
        assert dtrain("input.json") == 0
        from deeph_tf.cli.dfreeze import main as dfreeze

        assert run(dfreeze, "-o", "frozen_ff") == 0
    finally:
        os.chdir(cwd)
    return folder


def test_lcurve_columns_are_deepmd_energy_force(trained):
    data = np.genfromtxt(trained / "lcurve.out", names=True)
    assert list(data.dtype.names) == ["step", "loss_val", "loss_trn", "rmse_e_val", "rmse_e_trn", "rmse_f_val",
                                      "rmse_f_trn", "mae_e_val", "mae_e_trn", "mae_f_val", "mae_f_trn", "lr"]
    assert [int(s) for s in data["step"]] == [0, 4, 8, 12]
    assert data["rmse_f_val"][-1] < data["rmse_f_val"][0]  # it learns the forces (validation: 3 structures)
    out = json.loads((trained / "out.json").read_text())
    assert out["loss"]["type"] == "ener" and out["loss"]["start_pref_f"] == 1000.0
    from deeph_tf.data.inspect import summarize_index

    summary = summarize_index(trained / "graphs").format()
    assert "16 (force-field graphs, radius 4 A)" in summary and "force RMS" in summary


def _report_table(text: str):
    """(header, rows) of the report's per-epoch markdown table."""
    lines = text.split("## Per-epoch table", 1)[1].splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    return header, [[c.strip() for c in row.strip("|").split("|")] for row in rows[2:]]


def test_report_numbers_match_lcurve(trained):
    text = (trained / "report.md").read_text()
    header, rows = _report_table(text)
    lcurve_lines = [line.split() for line in (trained / "lcurve.out").read_text().splitlines()[1:]]
    columns = (trained / "lcurve.out").read_text().splitlines()[0].lstrip("#").split()
    by_step = {int(line[0]): dict(zip(columns, line)) for line in lcurve_lines}
    record = json.loads((trained / "training_record.json").read_text())
    # 10 training structures, batch 2: 5 steps per epoch; 12 steps = 2 epochs + a partial third.
    assert record["steps_per_epoch"] == pytest.approx(5.0)
    assert [row[header.index("step")] for row in rows] == ["5", "10", "12"]
    for row in rows:
        step = int(row[header.index("step")])
        source = int(row[header.index("lcurve step")])
        assert source == max(s for s in by_step if s <= step)
        for name in ("loss_val", "loss_trn", "rmse_e_val", "rmse_e_trn", "rmse_f_val", "rmse_f_trn", "mae_e_val",
                     "mae_e_trn", "lr"):
            assert row[header.index(name)] == by_step[source][name], (name, step)
    # Final metrics vs targets: one met, one not.
    assert re.search(r"`rmse_f` \| [^|]+ \| 100 \| eV/A \| met", text)
    assert re.search(r"`mae_e` \| [^|]+ \| 1e-09 \| eV/atom \| NOT met", text)
    assert record["final"]["subset"] == "validate" and record["final"]["structures"] == 3
    assert record["peak_rss_mib"] > 100 and all(e["seconds"] >= 0 for e in record["epochs"])
    for png in ("report_lcurve.png", "report_parity_force.png", "report_parity_energy_per_atom.png"):
        assert (trained / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dreport_rebuilds_the_report(trained, tmp_path):
    from deeph_tf.cli.dreport import main as dreport

    output = tmp_path / "again.md"
    assert run(dreport, str(trained), "-o", str(output), "--no-plots") == 0
    header, rows = _report_table(output.read_text())
    assert rows == _report_table((trained / "report.md").read_text())[1]


def test_frozen_forces_are_minus_energy_gradient_on_pysf_data(trained):
    """The frozen signature's forces equal -dE/dr by central differences on real structures."""
    import tensorflow as tf

    from deeph_tf.data.labeled import read_labeled_frames
    from deeph_tf.infer.predict import Predictor

    loaded = tf.saved_model.load(str(trained / "frozen_ff"))
    signature = loaded.signatures["serving_default"]
    assert set(signature.structured_outputs) == {"energy", "atom_energy", "forces", "virial"}
    predictor = Predictor.load(trained / "frozen_ff")
    frames = read_labeled_frames(FIXTURE)
    for _, frame in frames[:2]:
        out = predictor.predict_frame(frame)
        assert out["forces"].shape == (3, 3) and np.isfinite(out["energy"])
        assert out["energy"] == pytest.approx(out["atom_energy"].sum(), rel=1e-12)
        h = 1e-4
        numeric = np.zeros((3, 3))
        for i in range(3):
            for a in range(3):
                energies = []
                for sign in (1, -1):
                    moved = frame.positions.copy()
                    moved[i, a] += sign * h
                    shifted = type(frame)(name=frame.name, species=frame.species, positions=moved, lattice=frame.lattice,
                                          pbc=frame.pbc, energy=None, forces=None, virial=None)
                    energies.append(predictor.predict_frame(shifted)["energy"])
                numeric[i, a] = -(energies[0] - energies[1]) / (2 * h)
        np.testing.assert_allclose(out["forces"], numeric, atol=1e-6)
        assert np.abs(out["forces"].sum(axis=0)).max() < 1e-8  # translation invariance: no net force


def test_dtest_prints_deepmd_errors_and_detail_files(trained, tmp_path, capsys):
    from deeph_tf.cli.dtest import main as dtest

    prefix = tmp_path / "detail" / "water"
    split = trained / "graphs" / "split.json"
    assert run(dtest, "-m", str(trained / "frozen_ff"), "-s", str(FIXTURE), "--split", str(split), "--subset",
               "validate", "-d", str(prefix)) == 0
    printed = capsys.readouterr().out
    for label in ("Energy MAE ", "Energy RMSE ", "Energy MAE/Natoms", "Energy RMSE/Natoms", "Force  MAE", "Force  RMSE"):
        assert label in printed
    e = np.loadtxt(f"{prefix}.e.out")
    f = np.loadtxt(f"{prefix}.f.out")
    assert (prefix.parent / "water.e.out").read_text().startswith("# data_e pred_e")
    assert (prefix.parent / "water.f.out").read_text().startswith("# data_fx data_fy data_fz pred_fx pred_fy pred_fz")
    assert e.shape == (3, 2) and f.shape == (9, 6)
    rmse_f = float(np.sqrt(np.mean((f[:, 3:] - f[:, :3]) ** 2)))
    assert f"Force  RMSE        : {rmse_f:e}" in printed
    per_atom = np.loadtxt(f"{prefix}.e_peratom.out")
    np.testing.assert_allclose(per_atom, e / 3.0)
    # The report's final validation force RMSE is the same number (same 3 structures).
    record = json.loads((trained / "training_record.json").read_text())
    assert record["final"]["metrics"]["rmse_f"] == pytest.approx(rmse_f, rel=1e-8)
    assert record["final"]["metrics"]["mae_e"] == pytest.approx(float(np.mean(np.abs(per_atom[:, 1] - per_atom[:, 0]))), rel=1e-8)


def test_restart_continues(trained, tmp_path):
    import shutil

    folder = tmp_path / "restart"
    shutil.copytree(trained, folder, ignore=shutil.ignore_patterns("frozen_ff"))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        write_input(folder, numb_steps=16)
        assert dtrain("input.json", "-r", "model.ckpt-12.h5") == 0
    finally:
        os.chdir(cwd)
    steps = [int(s) for s in np.genfromtxt(folder / "lcurve.out", names=True)["step"]]
    assert steps == [0, 4, 8, 12, 16]


def test_init_frz_model_starts_from_the_frozen_force_field(trained, tmp_path):
    import h5py

    assert dtrain_zero_steps_in(tmp_path, "-f", str(trained / "frozen_ff")) == 0
    from deeph_tf.artifacts.frozen import load_frozen_weights
    from deeph_tf.artifacts.checkpoint import read_checkpoint

    _, frozen = load_frozen_weights(trained / "frozen_ff")
    ckpt = read_checkpoint(tmp_path / "model.ckpt-0.h5")
    assert ckpt.step == 0 and len(ckpt.model_weights) == len(frozen)
    for a, b in zip(ckpt.model_weights, frozen):
        np.testing.assert_array_equal(a, b)
    assert h5py.is_hdf5(tmp_path / "model.ckpt-0.h5")


def test_finetune_changes_the_atom_energies_by_least_squares(trained, tmp_path):
    """DeePMD's change-by-statistic for a force field: the per-element energy bias moves so the
    mean energy residual on the new data vanishes (a second change finds nothing to move)."""
    from deeph_tf.artifacts.checkpoint import read_checkpoint
    from deeph_tf.artifacts.loader import load_model
    from deeph_tf.data.pipeline import GraphSet
    from deeph_tf.train.finetune_bias import change_bias_by_statistic

    assert dtrain_zero_steps_in(tmp_path, "--finetune", str(trained / "frozen_ff")) == 0
    frozen, _ = load_model(trained / "frozen_ff")
    changed, _ = load_model(tmp_path / "model.ckpt-0.h5")
    assert read_checkpoint(tmp_path / "model.ckpt-0.h5").step == 0
    delta = np.asarray(changed.atom_energies) - np.asarray(frozen.atom_energies)
    assert np.abs(delta).max() > 1e-6
    again = change_bias_by_statistic(changed, GraphSet(tmp_path / "graphs"), "energy_force", batch_size=2)
    assert set(again) == {"H", "O"} and max(again.values()) < 1e-6 + 1e-3 * np.abs(delta).max()


def test_deepmd_npy_system_written_by_dpdata_trains(tmp_path):
    """A deepmd/npy system made by dpdata itself is a training system as it is (format guessed)."""
    import dpdata

    from deeph_tf.data.labeled import read_labeled_frames

    frames = [frame for _, frame in read_labeled_frames(FIXTURE)]
    names = ["H", "O"]
    system = dpdata.LabeledSystem(data={
        "atom_names": names, "atom_numbs": [2, 1], "atom_types": np.array([names.index(s) for s in frames[0].species]),
        "orig": np.zeros(3), "cells": np.stack([f.lattice for f in frames]), "coords": np.stack([f.positions for f in frames]),
        "energies": np.array([f.energy for f in frames]), "forces": np.stack([f.forces for f in frames]), "nopbc": True,
    })
    system.to("deepmd/npy", str(tmp_path / "water_npy"))
    assert (tmp_path / "water_npy" / "type.raw").is_file()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        write_input(tmp_path, systems="water_npy", numb_steps=4, disp_freq=2, save_freq=4)
        assert dtrain("input.json") == 0
    finally:
        os.chdir(cwd)
    index = json.loads((tmp_path / "graphs" / "index.json").read_text())
    assert index["operators"] == ["energy_force"] and index["split_sizes"] == {"train": 10, "validate": 3, "test": 3}
    split = json.loads((tmp_path / "graphs" / "split.json").read_text())
    assert all(sid.startswith("water_npy/") for sid in split["train"])
    data = np.genfromtxt(tmp_path / "lcurve.out", names=True)
    assert np.all(np.isfinite(data["rmse_f_trn"]))


def test_force_field_distillation_end_to_end(trained, tmp_path):
    """Teacher (the frozen model) labels the structures; the student trains on them mixed with DFT."""
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        distillation = {"teacher": str(trained / "frozen_ff"), "systems": str(FIXTURE), "dft_weight": 0.5,
                        "cache_dir": "teacher_labels"}
        # The teacher's labels of these (periodic-box) structures carry virials: train them too.
        write_input(tmp_path, numb_steps=4, disp_freq=2, save_freq=4, distillation=distillation,
                    loss={"start_pref_v": 0.02, "limit_pref_v": 1.0})
        assert dtrain("input.json") == 0
        labels = json.loads((tmp_path / "teacher_labels" / "labels.json").read_text())
        stamp = (tmp_path / "teacher_labels" / "labels.json").stat().st_mtime_ns
        assert labels["structures"] == 16 and (tmp_path / "teacher_labels" / "deepmd" / "type.raw").is_file()
        shards = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "graphs" / "shards").iterdir()}
        # Second run: the cache is reused, not relabelled, and so are the graph shards.
        assert dtrain("input.json") == 0
        assert (tmp_path / "teacher_labels" / "labels.json").stat().st_mtime_ns == stamp
        assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "graphs" / "shards").iterdir()} == shards
    finally:
        os.chdir(cwd)
    # Teacher labels equal the teacher's predictions.
    from deeph_tf.data.labeled import read_labeled_frames
    from deeph_tf.infer.predict import Predictor

    teacher = Predictor.load(trained / "frozen_ff")
    cached = read_labeled_frames(tmp_path / "teacher_labels" / "deepmd")
    _, frame = cached[0]
    np.testing.assert_allclose(teacher.predict_frame(frame)["forces"], frame.forces, atol=1e-8)
    np.testing.assert_allclose(teacher.predict_frame(frame)["virial"], frame.virial, atol=1e-8)
    index = json.loads((tmp_path / "graphs" / "index.json").read_text())
    assert index["split_sizes"]["train"] == 10 + 16  # teacher labels are training data only
    assert index["subsets"]["train"]["counts"]["virials"] == 16  # the DFT molecules have none
    names = np.genfromtxt(tmp_path / "lcurve.out", names=True).dtype.names
    assert "rmse_v_val" in names and "rmse_v_trn" in names
    record = json.loads((tmp_path / "training_record.json").read_text())
    names = [c["name"] for c in record["comparisons"]]
    assert names == ["student vs teacher", "student vs DFT", "teacher vs DFT"]
    vs_dft = record["comparisons"][1]["metrics"]
    assert vs_dft["rmse_f"] == pytest.approx(record["final"]["metrics"]["rmse_f"], rel=1e-8)
    text = (tmp_path / "report.md").read_text()
    assert "### student vs teacher" in text and "### teacher vs DFT" in text
