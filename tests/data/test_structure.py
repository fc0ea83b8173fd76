"""info.json, structure folders, and every real structure of the shared DeepH-dock examples."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from deeph_tf.conventions import HERMITICITY_TOLERANCE_EV
from deeph_tf.data import (BlockSet, DataFormatError, Poscar, blocks_from_dense, blocks_to_dense,
                           is_structure_folder, load_structure, read_block_h5, read_info_json,
                           write_block_h5, write_info_json, write_poscar)

from conftest import requires_shared
from conftest import SHARED_EXAMPLES as SHARED

WATER_MAP = {"O": [0, 0, 1, 1, 2], "H": [0, 0, 1]}  # O: 13 orbitals, H: 5


def water_info(**overrides):
    info = {"atoms_quantity": 3, "orbits_quantity": 23, "orthogonal_basis": False, "spinful": False,
            "fermi_energy_eV": -1.5, "elements_orbital_map": WATER_MAP, "occupation": 8}
    info.update(overrides)
    return info


def make_water_folder(folder: Path, rng, spinful: bool = False, info_overrides=None) -> Path:
    """A synthetic but consistent water structure (molecule: R = 0 pairs only)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_poscar(folder / "POSCAR", Poscar(lattice=10 * np.eye(3), species=["O", "H", "H"],
                                           positions=[[5.0, 5.0, 5.0], [5.8, 5.6, 5.0], [4.2, 5.6, 5.0]]))
    write_info_json(folder / "info.json", water_info(spinful=spinful, **(info_overrides or {})))
    s = rng.normal(size=(23, 23))
    write_block_h5(folder / "overlap.h5", blocks_from_dense(s + s.T, [0, 13, 18, 23]))
    n = 46 if spinful else 23
    h = rng.normal(size=(n, n)) + (1j * rng.normal(size=(n, n)) if spinful else 0)
    off = [0, 26, 36, 46] if spinful else [0, 13, 18, 23]
    write_block_h5(folder / "hamiltonian.h5", blocks_from_dense(h + h.conj().T, off))
    return folder


# ---------------------------------------------------------------------------- info.json
def test_info_round_trip(tmp_path):
    path = tmp_path / "info.json"
    write_info_json(path, water_info(basis="PBE/def2-SVP", fermi_energy_eV=None))
    info = read_info_json(path)
    assert info == water_info(basis="PBE/def2-SVP", fermi_energy_eV=None)
    assert "\n" not in path.read_text().strip()  # one line, like DeepH's files


@pytest.mark.parametrize("change, fragments", [
    ({"atoms_quantity": None}, ["missing key(s) atoms_quantity"]),
    ({"elements_orbital_map": None, "spinful": None}, ["spinful, elements_orbital_map"]),
    ({"atoms_quantity": "3"}, ["atoms_quantity", "non-negative integer"]),
    ({"orbits_quantity": 23.0}, ["orbits_quantity"]),
    ({"spinful": 0}, ["spinful", "true or false"]),
    ({"orthogonal_basis": "no"}, ["orthogonal_basis"]),
    ({"fermi_energy_eV": "high"}, ["fermi_energy_eV", "number in eV or null"]),
    ({"elements_orbital_map": {"O": [0, -1]}}, ["elements_orbital_map['O']"]),
    ({"elements_orbital_map": {"O": "spd"}}, ["elements_orbital_map['O']"]),
    ({"elements_orbital_map": {}}, ["elements_orbital_map"]),
    ({"occupation": "ten"}, ["occupation"]),
])
def test_info_errors_name_file_and_key(tmp_path, change, fragments):
    info = water_info()
    for key, value in change.items():
        if value is None and key in ("atoms_quantity", "spinful", "elements_orbital_map"):
            del info[key]
        else:
            info[key] = value
    path = tmp_path / "info.json"
    path.write_text(json.dumps(info))
    with pytest.raises(DataFormatError) as exc:
        read_info_json(path)
    assert str(path) in str(exc.value)
    for fragment in fragments:
        assert fragment in str(exc.value)
    # the writer refuses the same content and leaves no file behind
    with pytest.raises(DataFormatError):
        write_info_json(tmp_path / "out.json", info)
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("text, fragment", [
    ('{"atoms_quantity": 3,', "invalid JSON at line 1"),
    ("[1, 2]", "expected a JSON object"),
    ("", "invalid JSON"),
])
def test_info_bad_json(tmp_path, text, fragment):
    path = tmp_path / "info.json"
    path.write_text(text)
    with pytest.raises(DataFormatError, match=fragment) as exc:
        read_info_json(path)
    assert str(path) in str(exc.value)


def test_info_missing(tmp_path):
    with pytest.raises(DataFormatError, match="info.json not found"):
        read_info_json(tmp_path / "info.json")


# ---------------------------------------------------------------------------- structure folder
def test_load_synthetic_structure(tmp_path, rng):
    st = load_structure(make_water_folder(tmp_path / "0", rng))
    assert st.name == "0" and st.n_atoms == 3 and st.n_orbitals == 23 and not st.spinful
    assert st.orbital_shells(0) == [0, 0, 1, 1, 2] and st.orbital_shells(2) == [0, 0, 1]
    assert st.orbital_slices(0) == [slice(0, 1), slice(1, 2), slice(2, 5), slice(5, 8), slice(8, 13)]
    assert st.orbital_slices(1) == [slice(0, 1), slice(1, 2), slice(2, 5)]
    np.testing.assert_array_equal(st.atom_orbital_counts(), [13, 5, 5])
    np.testing.assert_array_equal(st.atom_orbital_offsets(), [0, 13, 18, 23])
    np.testing.assert_array_equal(st.atom_orbital_offsets(spinful=True), [0, 26, 36, 46])
    assert st.fermi_energy_eV == -1.5
    h = st.read_blocks("hamiltonian")
    assert h.block((0, 0, 0, 0, 1)).shape == (13, 5)
    assert st.has_blocks("overlap") and not st.has_blocks("density_matrix")
    assert is_structure_folder(st.path)


def test_spinful_shapes(tmp_path, rng):
    st = load_structure(make_water_folder(tmp_path / "s", rng, spinful=True))
    h = st.read_blocks("hamiltonian")
    s = st.read_blocks("overlap")
    assert h.is_complex and h.block((0, 0, 0, 0, 1)).shape == (26, 10)
    assert s.block((0, 0, 0, 0, 1)).shape == (13, 5)  # overlap stays spinless
    assert st.spin_factor("hamiltonian") == 2 and st.spin_factor("overlap") == 1
    # spinless H in a spinful folder is a shape error
    write_block_h5(st.block_path("density_matrix"), blocks_from_dense(np.eye(23), [0, 13, 18, 23]))
    with pytest.raises(DataFormatError, match=r"density_matrix.h5.*expected \(26, 26\) \(spinful"):
        st.read_blocks("density_matrix")


def test_folder_must_hold_poscar_and_info(tmp_path, rng):
    folder = make_water_folder(tmp_path / "0", rng)
    (folder / "POSCAR").unlink()
    assert not is_structure_folder(folder)
    with pytest.raises(DataFormatError, match="missing POSCAR") as exc:
        load_structure(folder)
    assert str(folder) in str(exc.value)
    (folder / "info.json").unlink()
    with pytest.raises(DataFormatError, match="missing POSCAR and info.json"):
        load_structure(folder)
    with pytest.raises(DataFormatError, match="does not exist"):
        load_structure(tmp_path / "nope")


@pytest.mark.parametrize("overrides, fragments", [
    ({"atoms_quantity": 4}, ["info.json", "atoms_quantity = 4 but POSCAR has 3 atoms"]),
    ({"orbits_quantity": 24}, ["info.json", "orbits_quantity = 24", "give 23"]),
    ({"elements_orbital_map": {"O": [0, 0, 1, 1, 2]}, "orbits_quantity": 23}, ["no entry for H"]),
])
def test_structure_consistency_errors(tmp_path, rng, overrides, fragments):
    folder = make_water_folder(tmp_path / "0", rng)
    write_info_json(folder / "info.json", water_info(**overrides))
    with pytest.raises(DataFormatError) as exc:
        load_structure(folder)
    for fragment in fragments:
        assert fragment in str(exc.value)


def test_block_shape_errors(tmp_path, rng):
    st = load_structure(make_water_folder(tmp_path / "0", rng))
    # H as if O had 14 orbitals
    write_block_h5(st.block_path("hamiltonian"), blocks_from_dense(np.eye(24), [0, 14, 19, 24]))
    with pytest.raises(DataFormatError) as exc:
        st.read_blocks("hamiltonian")
    message = str(exc.value)
    assert "hamiltonian.h5" in message and "[0, 0, 0, 0, 0]" in message and "(14, 14)" in message
    assert "expected (13, 13)" in message and "O: [0, 0, 1, 1, 2]" in message
    assert st.read_blocks("hamiltonian", check=False).n_pairs == 9


def test_block_atom_index_and_partner_errors(tmp_path, rng):
    st = load_structure(make_water_folder(tmp_path / "0", rng))
    bad_atom = BlockSet(atom_pairs=np.array([[0, 0, 0, 0, 3]]), blocks=[np.zeros((13, 5))])
    write_block_h5(st.block_path("overlap"), bad_atom)
    with pytest.raises(DataFormatError, match=r"overlap.h5.*\[0, 0, 0, 0, 3\].*POSCAR has 3 atoms"):
        st.read_blocks("overlap")
    lonely = BlockSet(atom_pairs=np.array([[1, 0, 0, 0, 1]]), blocks=[np.zeros((13, 5))])
    write_block_h5(st.block_path("overlap"), lonely)
    with pytest.raises(DataFormatError, match=r"Hermitian partner.*\[-1, 0, 0, 1, 0\]"):
        st.read_blocks("overlap")


def test_corrupt_block_file_propagates_name(tmp_path, rng):
    st = load_structure(make_water_folder(tmp_path / "0", rng))
    st.block_path("hamiltonian").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 10)
    with pytest.raises(DataFormatError, match="hamiltonian.h5: cannot read as HDF5"):
        st.read_blocks("hamiltonian")


# ---------------------------------------------------------------------------- real data
def _shared_structures():
    if not SHARED.exists():
        return []
    found = [Path(d) for d, _, _ in os.walk(SHARED) if is_structure_folder(d)]
    return sorted(str(p.relative_to(SHARED)) for p in found)


SHARED_STRUCTURES = _shared_structures()


@requires_shared
def test_shared_examples_are_all_found():
    groups = {s.split("/")[0] for s in SHARED_STRUCTURES}
    assert {"molecules13", "water_rotated", "periodic", "water6_with_density_matrix", "single_atoms"} <= groups
    assert len(SHARED_STRUCTURES) == 13 + 4 + 2 + 6 + 4


@requires_shared
@pytest.mark.parametrize("sid", SHARED_STRUCTURES)
def test_shared_structure_loads_and_is_consistent(sid):
    st = load_structure(SHARED / sid)
    assert st.info["orbits_quantity"] == st.n_orbitals
    names = sorted(p.stem for p in st.path.glob("*.h5"))
    assert "overlap" in names and "hamiltonian" in names
    sets = {name: st.read_blocks(name) for name in names}  # checks shapes and partners
    reference = sets["overlap"].atom_pairs
    off = st.atom_orbital_offsets()
    for name, bs in sets.items():
        assert bs.dtype == np.float64  # no spinful / complex data among the examples
        # all files of a structure share the same atom_pairs, in the same order
        np.testing.assert_array_equal(bs.atom_pairs, reference, err_msg=f"{sid}/{name}")
        diag = {(0, 0, 0, a, a) for a in range(st.n_atoms)}
        assert diag <= set(bs.pair_index()), "on-site blocks must be present"
        assert bs.max_hermiticity_deviation() < 1e-6, f"{sid}/{name} not Hermitian"
        for (r1, r2, r3, i, j), block in zip(bs.atom_pairs, bs.blocks):
            assert block.shape == (off[i + 1] - off[i], off[j + 1] - off[j])
    assert sets["hamiltonian"].max_hermiticity_deviation() < min(1e-6, HERMITICITY_TOLERANCE_EV)
    # physics sanity: S(k=0) positive definite, finite spectrum
    s = blocks_to_dense(sets["overlap"], off)
    h = blocks_to_dense(sets["hamiltonian"], off)
    assert np.linalg.eigvalsh(s).min() > 1e-4
    e = scipy.linalg.eigh(h, s, eigvals_only=True)
    assert -1000 < e[0] < e[-1] < 1000
    if "density_matrix" in sets and st.info.get("occupation") is None:
        n_el = np.trace(blocks_to_dense(sets["density_matrix"], off) @ s)
        assert abs(n_el - round(n_el)) < 1e-6  # water6: 8 valence electrons, both spins


@requires_shared
def test_molecules13_structure_1000():
    st = load_structure(SHARED / "molecules13" / "1000")
    assert st.n_atoms == 12 and st.n_orbitals == 108
    assert st.species == ["C"] * 6 + ["H"] * 6
    h = st.read_blocks("hamiltonian")
    assert h.n_pairs == 144
    assert h.atom_pairs[0].tolist() == [0, 0, 0, 0, 9]  # pairs are not sorted in real files


@requires_shared
def test_molecules13_features_json_matches_folders():
    features = json.loads((SHARED / "molecules13" / "features.json").read_text())
    folders = sorted(p.name for p in (SHARED / "molecules13").iterdir() if is_structure_folder(p))
    assert sorted(features["dft_dirname_list"]) == folders
    assert features["dft_data_num"] == len(folders)
    for name in folders:
        info = read_info_json(SHARED / "molecules13" / name / "info.json")
        for element, shells in info["elements_orbital_map"].items():
            assert features["elements_orbital_map"][element] == shells
    assert features["common_orbital_num"] == sum(2 * l + 1 for l in features["common_orbital_types"])


@requires_shared
def test_periodic_si_has_images_and_partners():
    st = load_structure(SHARED / "periodic" / "Si")
    h = st.read_blocks("hamiltonian")
    r = h.atom_pairs[:, :3]
    assert r.min() == -2 and r.max() == 2 and h.n_pairs == 294
    # a Bloch Hamiltonian at a general k is Hermitian
    off = st.atom_orbital_offsets()
    hk = blocks_to_dense(h, off, k_frac=[0.1, 0.2, 0.3])
    assert np.abs(hk - hk.conj().T).max() < 1e-6


@requires_shared
def test_read_is_bit_exact_against_h5py():
    import h5py

    path = SHARED / "periodic" / "MoTe2" / "hamiltonian.h5"
    bs = read_block_h5(path)
    with h5py.File(path, "r") as f:
        entries = f["entries"][()]
        bounds = f["chunk_boundaries"][()]
    k = 57
    assert bs.blocks[k].tobytes() == entries[bounds[k]:bounds[k + 1]].tobytes()
