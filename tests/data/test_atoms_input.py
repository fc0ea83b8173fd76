"""Structures from DeepH folders and dpdata formats, and DeepH inference folders written from them."""
from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest

from deeph_tf.data.atoms_input import (AtomsInput, guess_format, read_structures,
                                       write_deeph_structure_folder)
from deeph_tf.data.errors import DataFormatError
from deeph_tf.data.poscar import read_poscar
from deeph_tf.data.structure import load_structure, read_info_json

from conftest import REPO_ROOT

dpdata = pytest.importorskip("dpdata")

WATER = REPO_ROOT / "examples" / "water_rotated" / "dft" / "0"
WATER_MAP = {"O": [0, 0, 1, 1, 2], "H": [0, 0, 1], "C": [0, 0, 1, 1, 2]}  # O 13, H 5 orbitals

XYZ_TEXT = "3\nwater\nO 0.0 0.0 0.0\nH 0.96 0.0 0.0\nH -0.24 0.93 0.0\n"


def water_system():
    return dpdata.System(str(WATER / "POSCAR"), fmt="vasp/poscar")


def test_deepmd_npy_roundtrip(tmp_path):
    reference = read_poscar(WATER / "POSCAR")
    water_system().to("deepmd/npy", str(tmp_path / "sys"))
    assert guess_format(tmp_path / "sys") == "deepmd/npy"
    frames = read_structures(tmp_path / "sys")
    assert len(frames) == 1
    atoms = frames[0]
    assert atoms.name == f"{tmp_path / 'sys'}#0"
    assert atoms.species == reference.species == ["O", "H", "H"]
    assert all(type(s) is str for s in atoms.species)
    np.testing.assert_array_equal(atoms.positions, reference.positions)
    np.testing.assert_array_equal(atoms.lattice, reference.lattice)
    assert atoms.pbc == (True, True, True)
    with pytest.raises(ValueError):
        atoms.positions[0, 0] = 1.0  # read-only


def test_several_frames_and_hdf5_systems(tmp_path):
    s = water_system()
    moved = water_system()
    moved.data["coords"] = moved.data["coords"] + 0.5
    s.append(moved)
    s.to("deepmd/npy", str(tmp_path / "npy"))
    frames = read_structures(tmp_path / "npy", fmt="deepmd/npy")
    assert [f.name.rsplit("#", 1)[1] for f in frames] == ["0", "1"]
    np.testing.assert_allclose(frames[1].positions - frames[0].positions, 0.5)

    s.to("deepmd/hdf5", str(tmp_path / "one.hdf5"))
    assert len(read_structures(tmp_path / "one.hdf5")) == 2
    # A file with several systems (dpdata's own System() silently returns nothing for it).
    methane = dpdata.System(data={"atom_names": ["C", "H"], "atom_numbs": [1, 4],
                                  "atom_types": np.array([0, 1, 1, 1, 1]), "orig": np.zeros(3),
                                  "cells": 12.0 * np.eye(3)[None], "coords": np.random.default_rng(0)
                                  .uniform(0, 12, size=(1, 5, 3))})
    dpdata.MultiSystems(s, methane).to("deepmd/hdf5", str(tmp_path / "multi.h5"))
    frames = read_structures(tmp_path / "multi.h5")
    assert sorted(len(f.species) for f in frames) == [3, 3, 5]
    assert all("#/" in f.name for f in frames)


def test_nopbc_molecule(tmp_path, caplog):
    (tmp_path / "w.xyz").write_text(XYZ_TEXT)
    [atoms] = read_structures(tmp_path / "w.xyz")
    assert atoms.pbc == (False, False, False)
    assert atoms.species == ["O", "H", "H"]
    np.testing.assert_allclose(atoms.positions[2], [-0.24, 0.93, 0.0])
    # deepmd/npy stores a zero cell for nopbc systems: a vacuum box replaces it.
    dpdata.System(str(tmp_path / "w.xyz"), fmt="xyz").to("deepmd/npy", str(tmp_path / "npy"))
    [atoms] = read_structures(tmp_path / "npy")
    assert atoms.pbc == (False, False, False)
    assert abs(np.linalg.det(atoms.lattice)) > 1000.0
    folder = write_deeph_structure_folder(atoms, tmp_path / "deeph", WATER_MAP)
    assert load_structure(folder).n_atoms == 3
    # dpdata's xyz reader drops every frame after the first: warn about it.
    (tmp_path / "two.xyz").write_text(XYZ_TEXT + XYZ_TEXT)
    with caplog.at_level(logging.WARNING, logger="deeph_tf.data.atoms_input"):
        assert len(read_structures(tmp_path / "two.xyz")) == 1
    assert "first of 2 frames" in caplog.text


def test_deeph_folder_and_poscar():
    reference = read_poscar(WATER / "POSCAR")
    for path in (WATER, WATER / "POSCAR"):
        assert guess_format(path) == "deeph"
        [atoms] = read_structures(path)
        assert atoms.name == str(path)
        assert atoms.pbc == (True, True, True)
        assert atoms.species == reference.species
        np.testing.assert_array_equal(atoms.positions, reference.positions)
    [via_dpdata] = read_structures(WATER / "POSCAR", fmt="vasp/poscar")
    np.testing.assert_allclose(via_dpdata.positions, reference.positions, atol=1e-12)


def test_write_deeph_structure_folder(tmp_path):
    [atoms] = read_structures(WATER)
    folder = write_deeph_structure_folder(atoms, tmp_path / "a" / "b", WATER_MAP)
    structure = load_structure(folder)
    assert structure.species == ["O", "H", "H"]
    np.testing.assert_array_equal(structure.poscar.positions, atoms.positions)
    np.testing.assert_array_equal(structure.poscar.lattice, atoms.lattice)
    info = read_info_json(folder / "info.json")
    assert info["atoms_quantity"] == 3 and info["orbits_quantity"] == 13 + 5 + 5
    assert info["orthogonal_basis"] is False and info["spinful"] is False
    assert info["fermi_energy_eV"] is None
    assert info["elements_orbital_map"] == {"O": WATER_MAP["O"], "H": WATER_MAP["H"]}
    with pytest.raises(ValueError, match="no entry for H"):
        write_deeph_structure_folder(atoms, tmp_path / "c", {"O": [0]})


def test_errors(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"\0")
    with pytest.raises(ValueError) as err:
        read_structures(tmp_path / "data.bin")
    assert str(tmp_path / "data.bin") in str(err.value)
    for fmt in ("deepmd/npy", "vasp/poscar", "xyz", "deeph"):
        assert fmt in str(err.value)
    with pytest.raises(ValueError, match="unknown structure format 'deepmd/npz'.*deepmd/npy"):
        read_structures(WATER, fmt="deepmd/npz")
    with pytest.raises(DataFormatError, match="no such file"):
        read_structures(tmp_path / "missing")
    with pytest.raises(DataFormatError, match="DeepH block file"):
        read_structures(WATER / "overlap.h5")
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_group("nothing")
    with pytest.raises(DataFormatError, match="no deepmd system"):
        read_structures(empty)
    with pytest.raises(ValueError, match="positions"):
        AtomsInput(name="x", species=["H"], positions=np.zeros((1, 2)), lattice=np.eye(3))
    with pytest.raises(ValueError, match="singular"):
        AtomsInput(name="x", species=["H"], positions=np.zeros((1, 3)), lattice=np.zeros((3, 3)))
