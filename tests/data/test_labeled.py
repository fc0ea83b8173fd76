"""Labelled frames from DeepH folders with force.h5 and from dpdata formats; deepmd/npy output."""
from __future__ import annotations

import shutil
import sys

import h5py
import numpy as np
import pytest

from deeph_tf.data.atoms_input import read_structures
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.force_h5 import FORCE_FILENAME, read_force_h5
from deeph_tf.data.labeled import LabeledFrame, frame_from_atoms, read_labeled_frames, write_deepmd_npy
from deeph_tf.data.poscar import read_poscar

from conftest import REPO_ROOT

dpdata = pytest.importorskip("dpdata")
pytest.importorskip("pyscf")

if str(REPO_ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tools"))
import make_pyscf_dataset as tool  # noqa: E402

IDS = ["ammonia-000001", "water-000000", "water-000002"]


@pytest.fixture(scope="module")
def unified(tmp_path_factory):
    """Water, ammonia, water at PBE/sto-3g with force.h5 (tools/make_pyscf_dataset.py --forces); ~2 s."""
    out = tmp_path_factory.mktemp("labeled")
    assert tool.main(["--out", str(out), "--molecule", "water,ammonia", "--n-structures", "3", "--basis", "sto-3g",
                      "--grid-level", "1", "--conv-tol", "1e-9", "--workers", "1", "--forces",
                      "-v", "WARNING"]) == 0
    return out


def _system(frames, virial=None):
    """A dpdata LabeledSystem of frames with one species sequence (built by hand, not by write_deepmd_npy)."""
    species = frames[0].species
    names = sorted(set(species))
    data = {"atom_names": names, "atom_numbs": [species.count(n) for n in names],
            "atom_types": np.array([names.index(s) for s in species]), "orig": np.zeros(3),
            "cells": np.stack([f.lattice for f in frames]), "coords": np.stack([f.positions for f in frames]),
            "energies": np.array([f.energy for f in frames]), "forces": np.stack([f.forces for f in frames])}
    if virial is not None:
        data["virials"] = np.stack([virial * (k + 1) for k in range(len(frames))])
    return dpdata.LabeledSystem(data=data)


def _waters(unified):
    return [f for sid, f in read_labeled_frames(unified) if sid.startswith("water")]


def _assert_same(a: LabeledFrame, b: LabeledFrame, virial=True):
    assert a.species == b.species
    np.testing.assert_array_equal(a.positions, b.positions)
    assert a.energy == b.energy
    np.testing.assert_array_equal(a.forces, b.forces)
    if virial:
        assert (a.virial is None) == (b.virial is None)
        if a.virial is not None:
            np.testing.assert_array_equal(a.virial, b.virial)


# ----------------------------------------------------------------------------- DeepH folders
def test_unified_folders(unified):
    frames = read_labeled_frames(unified)
    assert [sid for sid, _ in frames] == IDS
    for sid, frame in frames:
        folder = unified / "dft" / sid
        labels = read_force_h5(folder / FORCE_FILENAME)
        poscar = read_poscar(folder / "POSCAR")
        assert frame.name == str(folder) and frame.has_labels and frame.n_atoms == poscar.n_atoms
        assert frame.species == poscar.species and frame.pbc == (True, True, True)
        np.testing.assert_array_equal(frame.positions, poscar.positions)
        np.testing.assert_array_equal(frame.lattice, poscar.lattice)
        assert frame.energy == labels.energy and frame.virial is None
        np.testing.assert_array_equal(frame.forces, labels.forces)
        assert abs(frame.forces.sum(axis=0)).max() < 1e-3  # no net force on a free molecule
    assert [f.species for _, f in frames] == [["N", "H", "H", "H"], ["O", "H", "H"], ["O", "H", "H"]]
    # dft/ itself, a recursive search, explicit fmt, one structure folder, its POSCAR
    for kwargs in ({"path": unified / "dft"}, {"path": unified, "data_dir_depth": None},
                   {"path": unified, "fmt": "deeph"}):
        assert [sid for sid, _ in read_labeled_frames(**kwargs)] == IDS
    for path in (unified / "dft" / IDS[1], unified / "dft" / IDS[1] / "POSCAR"):
        [(sid, frame)] = read_labeled_frames(path)
        assert sid == IDS[1] and frame.energy == frames[1][1].energy


def test_unified_folders_without_force_h5(unified, tmp_path):
    out = shutil.copytree(unified, tmp_path / "run")
    (out / "dft" / "water-000002" / FORCE_FILENAME).unlink()
    with pytest.raises(DataFormatError, match="water-000002: no force.h5: energy_force training needs") as info:
        read_labeled_frames(out)
    assert info.value.path == str(out / "dft" / "water-000002")
    frames = dict(read_labeled_frames(out, require_labels=False))
    assert frames["water-000000"].has_labels
    unlabeled = frames["water-000002"]
    assert not unlabeled.has_labels and unlabeled.energy is None and unlabeled.forces is None
    for folder in (out / "dft").iterdir():
        (folder / FORCE_FILENAME).unlink(missing_ok=True)
    with pytest.raises(DataFormatError, match="2 other structure folder"):
        read_labeled_frames(out)
    # a wrong atom count in force.h5 names the file
    shutil.copy(unified / "dft" / "ammonia-000001" / FORCE_FILENAME, out / "dft" / "water-000000" / FORCE_FILENAME)
    with pytest.raises(DataFormatError, match="water-000000/force.h5: dataset force has 4 rows"):
        read_labeled_frames(out, require_labels=False)


# ----------------------------------------------------------------------------- dpdata formats
def test_deepmd_npy_and_raw_written_by_dpdata(unified, tmp_path, rng):
    waters = _waters(unified)
    virial = rng.normal(size=(3, 3))
    system = _system(waters, virial=virial)
    system.to("deepmd/npy", str(tmp_path / "npy"))
    system.to("deepmd/raw", str(tmp_path / "raw"))
    for path, fmt in ((tmp_path / "npy", None), (tmp_path / "npy", "deepmd/npy"), (tmp_path / "raw", None)):
        frames = read_labeled_frames(path, fmt=fmt)
        assert [sid for sid, _ in frames] == ["000000", "000001"]
        assert [f.name for _, f in frames] == [f"{path}#0", f"{path}#1"]
        for k, ((_, frame), ref) in enumerate(zip(frames, waters)):
            _assert_same(frame, ref, virial=False)
            assert frame.pbc == (True, True, True)
            np.testing.assert_array_equal(frame.lattice, ref.lattice)
            np.testing.assert_array_equal(frame.virial, virial * (k + 1))


def test_deepmd_hdf5_with_two_groups(unified, tmp_path):
    frames = dict(read_labeled_frames(unified))
    waters, ammonia = _waters(unified), frames["ammonia-000001"]
    path = tmp_path / "multi.h5"
    dpdata.MultiSystems(_system(waters), _system([ammonia])).to("deepmd/hdf5", str(path))
    with h5py.File(path, "r") as f:
        water_group, ammonia_group = sorted(f)  # named by formula over the merged atom names, e.g. H2O1N0
    assert water_group.startswith("H2O1") and ammonia_group.startswith("H3")
    got = read_labeled_frames(path)
    assert [sid for sid, _ in got] == [f"{water_group}/000000", f"{water_group}/000001", f"{ammonia_group}/000000"]
    got = dict(got)
    _assert_same(got[f"{water_group}/000001"], waters[1])
    _assert_same(got[f"{ammonia_group}/000000"], ammonia)
    assert got[f"{ammonia_group}/000000"].name == f"{path}#/{ammonia_group}#0"
    # one group of the file, guessed and explicit
    for fmt in (None, "deepmd/hdf5"):
        one = read_labeled_frames(f"{path}#/{water_group}", fmt=fmt)
        assert [sid for sid, _ in one] == ["000000", "000001"]
        _assert_same(one[0][1], waters[0])


def test_nopbc_and_extxyz(tmp_path):
    data = {"atom_names": ["O", "H"], "atom_numbs": [1, 2], "atom_types": np.array([0, 1, 1]),
            "orig": np.zeros(3), "cells": np.zeros((1, 3, 3)),
            "coords": np.array([[[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]]]),
            "energies": np.array([-2040.0]), "forces": np.full((1, 3, 3), 0.25), "nopbc": True}
    dpdata.LabeledSystem(data=data).to("deepmd/npy", str(tmp_path / "mol"))
    [(sid, frame)] = read_labeled_frames(tmp_path / "mol")
    assert sid == "000000" and frame.pbc == (False, False, False)
    assert abs(np.linalg.det(frame.lattice)) > 1000.0  # vacuum box instead of the zero cell
    assert frame.energy == -2040.0 and frame.forces[2, 1] == 0.25
    (tmp_path / "w.extxyz").write_text(
        '3\nLattice="10 0 0 0 10 0 0 0 10" Properties=species:S:1:pos:R:3:forces:R:3 energy=-12.5 pbc="T T T"\n'
        "O 0 0 0 0.1 0 0\nH 1 0 0 -0.1 0 0\nH 0 1 0 0 0 0\n")
    [(sid, frame)] = read_labeled_frames(tmp_path / "w.extxyz", fmt="extxyz")
    assert frame.energy == -12.5 and frame.forces[0, 0] == 0.1 and frame.species == ["O", "H", "H"]


def test_unlabeled_dpdata_data(unified, tmp_path):
    [atoms] = read_structures(unified / "dft" / "water-000000")
    data = {"atom_names": ["O", "H"], "atom_numbs": [1, 2], "atom_types": np.array([0, 1, 1]),
            "orig": np.zeros(3), "cells": atoms.lattice[None], "coords": atoms.positions[None]}
    dpdata.System(data=data).to("deepmd/npy", str(tmp_path / "plain"))
    with pytest.raises(DataFormatError, match="plain: no energy/force labels"):
        read_labeled_frames(tmp_path / "plain")
    [(sid, frame)] = read_labeled_frames(tmp_path / "plain", require_labels=False)
    assert sid == "000000" and not frame.has_labels and frame.virial is None
    np.testing.assert_array_equal(frame.positions, atoms.positions)
    # a format dpdata reads only without labels
    (tmp_path / "w.xyz").write_text("3\nwater\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n")
    with pytest.raises(DataFormatError, match="only as unlabelled structures"):
        read_labeled_frames(tmp_path / "w.xyz")
    [(_, frame)] = read_labeled_frames(tmp_path / "w.xyz", require_labels=False)
    assert frame.pbc == (False, False, False) and frame.energy is None
    # energies without forces
    _system(_waters(unified)).to("deepmd/npy", str(tmp_path / "noforce"))
    for f in (tmp_path / "noforce").glob("set.*/force.npy"):
        f.unlink()
    with pytest.raises(DataFormatError, match="noforce: labelled data needs energies and forces, but this "
                                              "system has no forces"):
        read_labeled_frames(tmp_path / "noforce")
    frames = read_labeled_frames(tmp_path / "noforce", require_labels=False)
    assert frames[0][1].energy is not None and frames[0][1].forces is None


def test_errors(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        read_labeled_frames(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no DeepH structure folder"):
        read_labeled_frames(tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown structure format"):
        read_labeled_frames(tmp_path, fmt="deepmd/nyp")


# ----------------------------------------------------------------------------- writer
def test_write_deepmd_npy_round_trip(unified, tmp_path):
    frames = [f for _, f in read_labeled_frames(unified)]  # ammonia, water, water
    out = tmp_path / "train"
    paths = write_deepmd_npy(frames, out, set_size=1)
    assert paths == [out / "sys.000", out / "sys.001"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]  # no temporary sibling left
    assert len(list((out / "sys.001").glob("set.*"))) == 2  # set_size 1
    ammonia = read_labeled_frames(paths[0])
    water = read_labeled_frames(paths[1])
    assert [sid for sid, _ in water] == ["000000", "000001"]
    for got, ref in zip([f for _, f in ammonia + water], frames):
        _assert_same(got, ref)
        np.testing.assert_array_equal(got.lattice, ref.lattice)
        assert got.pbc == (True, True, True)
    assert list(dpdata.LabeledSystem(str(paths[1]), fmt="deepmd/npy")["atom_names"]) == ["O", "H"]

    # one composition: written directly in the folder, virials kept
    virial = np.arange(9.0).reshape(3, 3)
    water_frames = [LabeledFrame(f.name, f.species, f.positions, f.lattice, f.pbc, f.energy, f.forces, virial)
                    for f in frames[1:]]
    assert write_deepmd_npy(water_frames, tmp_path / "water") == [tmp_path / "water"]
    for (_, got), ref in zip(read_labeled_frames(tmp_path / "water"), water_frames):
        _assert_same(got, ref)


def test_write_deepmd_npy_refuses_to_overwrite_and_is_atomic(unified, tmp_path, monkeypatch):
    frames = [f for _, f in read_labeled_frames(unified)]
    out = tmp_path / "train"
    out.mkdir()  # an empty folder is fine
    write_deepmd_npy(frames[1:], out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(FileExistsError, match="train exists and is not empty; pass overwrite=True"):
        write_deepmd_npy(frames, out)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert write_deepmd_npy(frames, out, overwrite=True) == [out / "sys.000", out / "sys.001"]
    assert not (out / "type.raw").exists()  # the old system is gone, not mixed in
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]

    with pytest.raises(ValueError, match="lack an energy or forces"):
        write_deepmd_npy([frame_from_atoms(frames[0].to_atoms())], tmp_path / "x")
    mixed = [frames[1], LabeledFrame(**{**frames[2].__dict__, "virial": np.eye(3)})]
    with pytest.raises(ValueError, match="have a virial but .* has none"):
        write_deepmd_npy(mixed, tmp_path / "x")

    # interrupted after the first system: nothing that looks like data is left
    original = dpdata.LabeledSystem.to
    calls = []

    def failing_to(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(dpdata.LabeledSystem, "to", failing_to)
    with pytest.raises(KeyboardInterrupt):
        write_deepmd_npy(frames, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]


def test_labeled_frame_checks_and_frame_from_atoms(unified):
    [atoms] = read_structures(unified / "dft" / "water-000000")
    frame = frame_from_atoms(atoms)
    assert frame.name == atoms.name and frame.species == atoms.species and not frame.has_labels
    np.testing.assert_array_equal(frame.to_atoms().positions, atoms.positions)
    args = (atoms.name, atoms.species, atoms.positions, atoms.lattice, atoms.pbc)
    labelled = LabeledFrame(*args, energy=np.float32(-1.5), forces=np.zeros((3, 3)))
    assert labelled.energy == -1.5 and type(labelled.energy) is float and labelled.has_labels
    with pytest.raises(ValueError):
        labelled.forces[0, 0] = 1.0  # read-only
    with pytest.raises(ValueError, match=r"forces must be \[3, 3\]"):
        LabeledFrame(*args, energy=0.0, forces=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="virial must be"):
        LabeledFrame(*args, virial=np.zeros(9))
    with pytest.raises(ValueError, match="non-finite energy"):
        LabeledFrame(*args, energy=float("nan"))
    with pytest.raises(ValueError, match="positions must be"):
        LabeledFrame(atoms.name, atoms.species, atoms.positions[:, :2], atoms.lattice)
