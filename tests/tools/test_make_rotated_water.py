"""tools/make_rotated_water.py and the committed examples/water_rotated fixture."""
from __future__ import annotations

import importlib.util
import shutil
import sys

import numpy as np
import pytest
import scipy.linalg

from deeph_tf.conventions import euler_zyz_to_matrix
from deeph_tf.so3.wigner import wigner_D_numpy
from deeph_tf.data import blocks_to_dense, load_structure, read_block_h5, write_block_h5

from conftest import REPO_ROOT, requires_shared
from conftest import SHARED_EXAMPLES as SHARED
FIXTURE = REPO_ROOT / "examples" / "water_rotated" / "dft"


def _load_tool():
    spec = importlib.util.spec_from_file_location("make_rotated_water", REPO_ROOT / "tools" / "make_rotated_water.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_rotated_water", module)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


# ---------------------------------------------------------------------------- committed fixture
def test_fixture_loads_and_is_physical():
    folders = sorted(p.name for p in FIXTURE.iterdir())
    assert folders == ["0", "1", "2", "3"]
    spectra = []
    for name in folders:
        st = load_structure(FIXTURE / name)
        assert st.n_atoms == 3 and st.n_orbitals == 24 and st.species == ["O", "H", "H"]
        assert st.elements_orbital_map == {"O": [0, 0, 0, 1, 1, 2], "H": [0, 0, 1]}
        assert st.info["occupation"] == 10 and st.info["basis"] == "PBE/def2-SVP"
        np.testing.assert_array_equal(st.poscar.lattice, 10 * np.eye(3))
        off = st.atom_orbital_offsets()
        mats = {}
        for block_name in ("hamiltonian", "overlap", "density_matrix"):
            bs = st.read_blocks(block_name)
            assert bs.n_pairs == 9 and not np.any(bs.atom_pairs[:, :3])
            assert bs.max_hermiticity_deviation() < 1e-8
            mats[block_name] = blocks_to_dense(bs, off)
        h, s, d = mats["hamiltonian"], mats["overlap"], mats["density_matrix"]
        np.testing.assert_allclose(np.diag(s), 1.0, atol=1e-10)  # normalized contracted GTOs
        e = scipy.linalg.eigh(h, s, eigvals_only=True)
        assert -520 < e[0] < -500  # O 1s (all-electron PBE ~ -510 eV)
        homo, lumo = e[4], e[5]
        assert homo < st.fermi_energy_eV < lumo and 4 < lumo - homo < 8
        assert np.trace(d @ s) == pytest.approx(10.0, abs=1e-8)
        # idempotency of the closed-shell density: (D S / 2)^2 = D S / 2
        p = d @ s / 2
        np.testing.assert_allclose(p @ p, p, atol=1e-8)
        spectra.append(e)
    for e in spectra[1:]:  # rotations do not change the spectrum
        np.testing.assert_allclose(e, spectra[0], atol=1e-8)


def test_fixture_copies_are_rotations_of_copy_0():
    ref = load_structure(FIXTURE / "0")
    centroid = ref.poscar.positions.mean(axis=0)
    for name in ("1", "2", "3"):
        st = load_structure(FIXTURE / name)
        q = euler_zyz_to_matrix(*np.loadtxt(st.path / "euler_angle"))
        np.testing.assert_allclose(st.poscar.positions, (ref.poscar.positions - centroid) @ q.T + centroid,
                                   atol=1e-12)
        for block_name in ("overlap", "hamiltonian", "density_matrix"):
            dev = tool.rotation_deviation(ref, st, q, block_name)
            assert set(dev) == {(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)}
            assert max(dev.values()) < 1e-9, (name, block_name, dev)


def test_validate_mode_on_fixture(caplog):
    caplog.set_level("INFO", logger="make_rotated_water")
    summary = tool.validate(FIXTURE, rotation_tol=1e-9)
    assert summary["eig_err"] < 1e-6 and summary["herm_err"] < 1e-8
    assert summary["rot_hamiltonian_pp"] < 1e-9 and summary["rot_hamiltonian_ss"] < 1e-9
    assert "validated 4 structures" in caplog.text
    assert tool.main(["--validate", str(FIXTURE.parent), "-v", "WARNING"]) == 0


def test_validate_catches_a_corrupted_copy(tmp_path):
    work = tmp_path / "dft"
    shutil.copytree(FIXTURE, work)
    path = work / "2" / "hamiltonian.h5"
    bs = read_block_h5(path)
    k = bs.pair_index()[(0, 0, 0, 0, 0)]
    blocks = [b.copy() for b in bs.blocks]
    blocks[k][3, 4] += 1e-3  # a p-p entry of O; keep it Hermitian
    blocks[k][4, 3] += 1e-3
    write_block_h5(path, type(bs)(atom_pairs=bs.atom_pairs, blocks=blocks))
    with pytest.raises(AssertionError, match="eigenvalues"):
        tool.validate(work)
    (work / "2" / "mo_energy_eV.txt").unlink()
    shutil.rmtree(work / "1")
    shutil.rmtree(work / "3")
    # without the eigenvalue reference the rotation check is what fails
    shutil.copy(FIXTURE / "1" / "mo_energy_eV.txt", work / "2" / "mo_energy_eV.txt")
    with pytest.raises(AssertionError):
        tool.validate(work, eig_tol=1.0, rotation_tol=1e-4)
    assert tool.main(["--validate", str(work), "-v", "ERROR"]) == 1


# ---------------------------------------------------------------------------- generator pieces
def _overlap_in_deeph_order(mol_atoms, basis):
    from pyscf import gto

    mol = gto.M(atom=mol_atoms, basis=basis, unit="Angstrom", verbose=0)
    perm, eom, offsets = tool.deeph_ao_order(mol)
    s = mol.intor("int1e_ovlp")
    return s[np.ix_(perm, perm)], eom, offsets


@pytest.mark.parametrize("basis", [
    "def2-SVP",
    "cc-pVDZ",  # O s shell with 2 general contractions (nctr = 2)
    {"O": [[2, [1.1, 1.0]], [1, [3.0, 1.0], [0.8, 1.0]], [0, [5.0, 1.0]], [1, [0.3, 1.0]]],
     "H": [[1, [1.0, 1.0]], [0, [1.2, 1.0]]]},  # given out of l order (PySCF sorts by l)
    {"O": [[1, [3.0, 1.0, 0.2], [0.9, 0.5, 1.0]], [0, [2.0, 1.0]]],
     "H": [[0, [1.0, 1.0]]]},  # a p shell with 2 contractions
], ids=["def2-SVP", "cc-pVDZ", "unsorted", "p-nctr2"])
def test_ao_permutation_gives_rotating_overlap(basis):
    """S in DeepH order transforms with D^l (p = y, z, x), whatever PySCF's shell layout."""
    species, pos = tool.water_geometry()
    q = euler_zyz_to_matrix(0.4, 1.1, -2.3)
    s0, eom, offsets = _overlap_in_deeph_order(list(zip(species, pos)), basis)
    s1, _, _ = _overlap_in_deeph_order(list(zip(species, tool.rotate_about_centroid(pos, q))), basis)
    for ls in eom.values():
        assert ls == sorted(ls), "elements_orbital_map must ascend in l"
    n = offsets[-1]
    d = np.zeros((n, n))
    start = 0
    for element in species:
        for l in eom[element]:
            d[start:start + 2 * l + 1, start:start + 2 * l + 1] = wigner_D_numpy(l, q)
            start += 2 * l + 1
    assert start == n
    np.testing.assert_allclose(s1, d @ s0 @ d.T, atol=1e-12)


def test_wigner_d_p_is_permuted_rotation():
    q = euler_zyz_to_matrix(0.3, 2.0, 1.0)
    perm = np.array([1, 2, 0])  # (x, y, z) -> (y, z, x)
    np.testing.assert_allclose(wigner_D_numpy(1, q), q[np.ix_(perm, perm)], atol=1e-13)
    q2 = euler_zyz_to_matrix(-1.0, 0.5, 0.2)
    np.testing.assert_allclose(wigner_D_numpy(2, q @ q2), wigner_D_numpy(2, q) @ wigner_D_numpy(2, q2),
                               atol=1e-12)


@requires_shared
def test_validator_rotation_check_agrees_with_deeph_dock_data():
    """The D matrices of the validator reproduce DeepH-dock's rotated water (grid noise ~3e-4 eV)."""
    root = SHARED / "water_rotated"
    ref = load_structure(root / "0")
    for name in ("1", "2", "3"):
        st = load_structure(root / name)
        q = euler_zyz_to_matrix(*np.loadtxt(st.path / "euler_angle"))
        assert max(tool.rotation_deviation(ref, st, q, "hamiltonian").values()) < 1e-3
        assert max(tool.rotation_deviation(ref, st, q, "overlap").values()) < 1e-5
        # the transposed rotation is clearly wrong: the check has teeth
        assert max(tool.rotation_deviation(ref, st, q.T, "hamiltonian").values()) > 0.1


def test_generate_small_then_validate(tmp_path):
    """End to end with PySCF: STO-3G, coarse grid, one rotated copy (about a second)."""
    elapsed = tool.generate(tmp_path, seed=7, xc="PBE", basis="sto-3g", n_rotations=1, grid_level=1,
                            grid_frame="molecule")
    assert elapsed < 30
    st = load_structure(tmp_path / "dft" / "1")
    assert st.elements_orbital_map == {"O": [0, 0, 1], "H": [0]} and st.n_orbitals == 7
    assert (tmp_path / "dft" / "1" / "euler_angle").is_file()
    assert not (tmp_path / "dft" / "0" / "euler_angle").exists()
    summary = tool.validate(tmp_path / "dft", rotation_tol=1e-8)
    assert summary["eig_err"] < 1e-6
    # the lab-fixed grid is only approximately rotation invariant
    lab = tmp_path / "lab"
    tool.generate(lab, seed=7, xc="PBE", basis="sto-3g", n_rotations=1, grid_level=1, grid_frame="lab")
    summary_lab = tool.validate(lab, rotation_tol=None)
    assert summary_lab["rot_hamiltonian_ss"] > summary["rot_hamiltonian_ss"]
    assert summary_lab["rot_overlap_pp"] < 1e-12  # S has no grid


def test_cli_arguments():
    args = tool.build_parser().parse_args(["--out", "x"])
    assert (args.xc, args.basis, args.n_rotations, args.grid_level, args.grid_frame, args.seed) == \
        ("PBE", "def2-SVP", 3, 5, "molecule", 0)
    with pytest.raises(SystemExit):
        tool.build_parser().parse_args([])
