"""dband's library: sparse H(k)/S(k), inertia counts, shift-invert eigenvalues, the sparse Fermi level,
supercell folding, automatic k-paths, and the dense/sparse electronic structure of one structure."""
import shutil
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, WATER
from deeph_tf.data.structure import load_structure, write_structure_folder
from deeph_tf.infer.electronic import (BlochSum, SparseBloch, band_energies, bloch_operators,
                                       fermi_level_from_occupation, generalized_eigenvalues, k_grid_points,
                                       occupied_count, orbital_energies)
from deeph_tf.infer.electronic.auto_path import automatic_k_path, periodic_directions
from deeph_tf.infer.electronic.sparse import (ShiftedFactor, count_below, eigenvalues_near, fermi_level_sparse,
                                              ranked_energy, sparse_bloch_operators)
from deeph_tf.infer.electronic.spectrum import (choose_solver, electronic_structure, gaussian_dos,
                                                sparse_default_k_grid)
from deeph_tf.infer.electronic.supercell import tile_blocks, tile_structure

SMALL = REPO_ROOT / "examples" / "graphene" / "dft" / "graphene-000000"  # 2x2 graphene, 32 orbitals
LARGE = REPO_ROOT / "examples" / "graphene" / "large" / "dft" / "graphene-000000"  # 4x4, 128 orbitals
COMPLEX_K = [0.137, -0.271, 0.0]


def _load(folder):
    s = load_structure(folder)
    return s, s.read_blocks("hamiltonian"), s.read_blocks("overlap")


@pytest.fixture(scope="module")
def small():
    return _load(SMALL)


@pytest.fixture(scope="module")
def large():
    return _load(LARGE)


def _dense_eigenvalues(structure, h, s, k):
    hd, sd = bloch_operators(h, s, structure)
    return band_energies(hd, sd, np.reshape(k, (1, 3)))[0]


# ---- sparse Bloch sums, inertia, shift-invert ---------------------------------------------------
@pytest.mark.parametrize("k", [None, COMPLEX_K])
def test_sparse_bloch_sums_equal_the_dense_ones(large, k):
    structure, h, s = large  # 4x4 graphene: every k-space entry is non-zero
    hd, sd = bloch_operators(h, s, structure)
    hs, ss = sparse_bloch_operators(h, s, structure)
    hk = hs(k)
    assert hk.format == "csr" and hk.dtype == (np.float64 if k is None else np.complex128)
    np.testing.assert_array_equal(hk.toarray(), hd(k))
    np.testing.assert_array_equal(ss(k).toarray(), sd(k))


@pytest.mark.parametrize("k", [None, COMPLEX_K])
@pytest.mark.parametrize("e0", [-1.4, 0.3, -7.0])
def test_sparse_eigenvalues_near_e0_equal_the_dense_selection(large, k, e0):
    structure, h, s = large
    dense = _dense_eigenvalues(structure, h, s, [0, 0, 0] if k is None else k)
    hs, ss = sparse_bloch_operators(h, s, structure)
    n = 20
    window = eigenvalues_near(hs(k), ss(k), e0, n)
    nearest = np.sort(dense[np.argsort(np.abs(dense - e0))[:n]])
    np.testing.assert_allclose(window.energies, nearest, rtol=0, atol=1e-8)
    assert window.n_below == int(np.sum(dense < e0))
    np.testing.assert_allclose(dense[window.first_band:window.first_band + n], window.energies, rtol=0, atol=1e-8)


@pytest.mark.parametrize("folder", [SMALL, LARGE])
@pytest.mark.parametrize("k", [None, COMPLEX_K, [0.5, 0.5, 0.0]])
def test_inertia_count_equals_the_dense_count(folder, k):
    structure, h, s = _load(folder)
    dense = _dense_eigenvalues(structure, h, s, [0, 0, 0] if k is None else k)
    hs, ss = sparse_bloch_operators(h, s, structure)
    # between every pair of neighbouring levels, and outside the spectrum
    energies = np.concatenate([[dense[0] - 1.0, dense[-1] + 1.0], 0.5 * (dense[1:] + dense[:-1])[::3]])
    for e in energies:
        factor = ShiftedFactor(hs(k), ss(k), e)
        assert np.array_equal(factor.lu.perm_r, factor.lu.perm_c)  # diagonal pivots: the count is the inertia
        assert factor.n_below == int(np.sum(dense < e)), e
    assert count_below(hs(k), ss(k), dense[0] - 1.0) == 0


def test_eigenvalues_near_refuses_too_many_and_the_window_ranks(small):
    structure, h, s = small
    hs, ss = sparse_bloch_operators(h, s, structure)
    with pytest.raises(ValueError, match="use the dense solver"):
        eigenvalues_near(hs(), ss(), -1.4, 31)
    dense = _dense_eigenvalues(structure, h, s, [0, 0, 0])
    window = eigenvalues_near(hs(), ss(), -1.4, 6)
    assert window.first_band > 0
    for rank in range(window.first_band + 1, window.first_band + 7):  # 1-based ranks of the window
        assert ranked_energy([window], rank, 32) == pytest.approx(dense[rank - 1], abs=1e-9)
    assert ranked_energy([window], window.first_band, 32) is None  # beyond the window
    assert ranked_energy([window], window.first_band + 7, 32) is None


@pytest.mark.parametrize("grid", [(1, 1, 1), (2, 2, 1)])
@pytest.mark.parametrize("n_window", [2, 40])
def test_sparse_fermi_level_equals_the_dense_one_on_the_4x4_cell(large, grid, n_window):
    structure, h, s = large
    k = k_grid_points(grid)
    hd, sd = bloch_operators(h, s, structure)
    n_occ = occupied_count(structure)
    dense = fermi_level_from_occupation(band_energies(hd, sd, k), n_occ)
    hs, ss = sparse_bloch_operators(h, s, structure)
    tol = 1e-6
    fermi, windows = fermi_level_sparse(hs, ss, k, n_occ, n_window=n_window, tol_eV=tol)
    assert abs(fermi - dense) <= tol
    assert len(windows) == len(k) and all(len(w.energies) >= n_window for w in windows)


# ---- supercells: exact folding ----------------------------------------------------------------
def test_tiled_supercell_folds_the_cell_bands_exactly(small, tmp_path):
    structure, h, s = small
    lattice, positions = structure.poscar.lattice, structure.poscar.positions
    h4, lattice4, positions4 = tile_blocks(h, lattice, positions, (2, 2, 1))
    s4, _, _ = tile_blocks(s, lattice, positions, (2, 2, 1))
    np.testing.assert_allclose(lattice4, lattice * [[2], [2], [1]])
    assert len(positions4) == 4 * len(positions) and len(h4) == 4 * len(h)
    poscar, info, blocks = tile_structure(structure, {"hamiltonian": h, "overlap": s}, (2, 2, 1))
    assert info["occupation"] == 4 * structure.info["occupation"] and info["orbits_quantity"] == 128
    folder = write_structure_folder(tmp_path / "tiled", poscar, info, blocks)
    big = load_structure(folder)  # the tiled blocks pass the format checks (shapes, Hermitian partners)
    h_big, s_big = big.read_blocks("hamiltonian"), big.read_blocks("overlap")
    assert np.array_equal(h_big.atom_pairs, h4.atom_pairs)
    assert big.read_blocks("hamiltonian").max_hermiticity_deviation() == h.max_hermiticity_deviation()
    for k_super in ([0.0, 0.0, 0.0], [0.3, -0.1, 0.0]):
        folded = np.sort(np.concatenate([_dense_eigenvalues(structure, h, s, [(k_super[0] + m1) / 2,
                                                                              (k_super[1] + m2) / 2, 0.0])
                                         for m1 in (0, 1) for m2 in (0, 1)]))
        np.testing.assert_allclose(_dense_eigenvalues(big, h_big, s_big, k_super), folded, rtol=0, atol=1e-8)
    # 3 x 2: R and -R differ modulo 3 (not modulo 2), so a wrong wrap of the translations shows
    h32, _, _ = tile_blocks(h, lattice, positions, (3, 2, 1))
    s32, _, _ = tile_blocks(s, lattice, positions, (3, 2, 1))
    offsets = np.arange(6 * len(positions) + 1) * 4
    k_super = np.array([0.21, -0.35, 0.0])
    assert h32.missing_partners() == [] and h32.max_hermiticity_deviation() == h.max_hermiticity_deviation()
    h32_k, s32_k = BlochSum(h32, offsets)(k_super), BlochSum(s32, offsets)(k_super)
    folded = np.sort(np.concatenate([_dense_eigenvalues(structure, h, s, [(k_super[0] + m1) / 3,
                                                                          (k_super[1] + m2) / 2, 0.0])
                                     for m1 in range(3) for m2 in range(2)]))
    np.testing.assert_allclose(generalized_eigenvalues(h32_k, s32_k), folded, rtol=0, atol=1e-8)
    # a 5x5 tiling (24.7 A) is sparse in k-space; its CSR H(k) is the dense Bloch sum
    h25, _, _ = tile_blocks(h, lattice, positions, (5, 5, 1))
    s25, _, _ = tile_blocks(s, lattice, positions, (5, 5, 1))
    offsets = np.arange(25 * len(positions) + 1) * 4
    h25_k = SparseBloch(h25, offsets)(COMPLEX_K)
    assert h25_k.nnz < 0.5 * 800 ** 2
    np.testing.assert_allclose(h25_k.toarray(), BlochSum(h25, offsets)(COMPLEX_K), rtol=0, atol=1e-12)
    del s25
    # and the sparse solve of the supercell at Gamma sees the cell's Gamma and zone-edge levels
    hs, ss = sparse_bloch_operators(h_big, s_big, big)
    window = eigenvalues_near(hs(), ss(), -1.4, 16)
    cell = np.concatenate([_dense_eigenvalues(structure, h, s, [m1 / 2, m2 / 2, 0]) for m1 in (0, 1) for m2 in (0, 1)])
    nearest = np.sort(cell[np.argsort(np.abs(cell + 1.4))[:16]])
    np.testing.assert_allclose(window.energies, nearest, rtol=0, atol=1e-8)


# ---- automatic k-paths ------------------------------------------------------------------------
def test_automatic_path_of_a_2d_hexagonal_lattice_with_vacuum(small):
    structure, h, _ = small
    pbc = periodic_directions(h)
    assert pbc == [True, True, False]  # no R along c: vacuum
    segments = automatic_k_path(structure.poscar.lattice, pbc, n_points=90)
    assert [(seg.label_start, seg.label_end) for seg in segments] == [("G", "M"), ("M", "K"), ("K", "G")]
    np.testing.assert_allclose(segments[1].k_end, [1 / 3, 1 / 3, 0.0], atol=1e-9)
    np.testing.assert_allclose(segments[0].k_end, [0.5, 0.0, 0.0], atol=1e-9)
    assert all(seg.k_start[2] == 0.0 and seg.k_end[2] == 0.0 for seg in segments)
    counts = [seg.n_points for seg in segments]
    assert abs(sum(counts) - 90) <= 2 and counts[1] < counts[0] < counts[2]  # |MK| < |GM| < |KG|
    with pytest.raises(ValueError, match="molecule"):
        automatic_k_path(structure.poscar.lattice, [False, False, False])


def test_automatic_path_without_ase_says_what_to_do(small, monkeypatch):
    structure, h, _ = small
    monkeypatch.setitem(sys.modules, "ase", None)
    monkeypatch.setitem(sys.modules, "ase.cell", None)
    with pytest.raises(ImportError, match="install ase or pass --k-path"):
        automatic_k_path(structure.poscar.lattice, [True, True, False])


def test_a_folder_without_k_path_gets_the_automatic_one(small, tmp_path):
    folder = tmp_path / "g"
    shutil.copytree(SMALL, folder, ignore=shutil.ignore_patterns("K_PATH", "dft_bands.h5", "cp2k.inp"))
    structure, h, s = _load(folder)
    result = electronic_structure(h, s, structure, path_points=30)
    assert result.k_path_source == "automatic (ASE)" and result.path_points.tick_labels == ["G", "M", "K", "G"]
    with_file = electronic_structure(h, s, structure, k_path=SMALL / "K_PATH", use_path=True)
    assert with_file.k_path_source.startswith("K_PATH") and len(with_file.path.k_frac) == 120


# ---- one structure: dense and sparse -------------------------------------------------------------
def test_dense_and_sparse_electronic_structure_agree_on_the_4x4_cell(large):
    structure, h, s = large
    segments = automatic_k_path(structure.poscar.lattice, [True, True, False], n_points=12)
    dense = electronic_structure(h, s, structure, solver="dense", k_path=segments, k_grid=(2, 2, 1))
    sparse = electronic_structure(h, s, structure, solver="sparse", k_path=segments, k_grid=(2, 2, 1), n_bands=24)
    assert (dense.solver, sparse.solver, dense.kind) == ("dense", "sparse", "crystal")
    assert dense.n_orbitals == sparse.n_orbitals == 128 and dense.n_occupied == 64
    assert sparse.fermi_energy_eV == pytest.approx(dense.fermi_energy_eV, abs=1e-8)
    assert dense.fermi_energy_eV == pytest.approx(
        fermi_level_from_occupation(dense.grid.energies, 64), abs=0)  # from the occupation, not info.json
    assert dense.fermi_energy_eV != structure.fermi_energy_eV
    for attr in ("vbm_eV", "cbm_eV", "gap_eV", "gap_grid_eV", "gap_path_eV"):
        assert getattr(sparse, attr) == pytest.approx(getattr(dense, attr), abs=1e-8), attr
    assert dense.vbm_eV < dense.fermi_energy_eV < dense.cbm_eV
    for spectrum_s, spectrum_d in ((sparse.grid, dense.grid), (sparse.path, dense.path)):
        for m, (first, row) in enumerate(zip(spectrum_s.first_band, spectrum_s.energies)):
            np.testing.assert_allclose(row, spectrum_d.energies[m, first:first + 24], rtol=0, atol=1e-8)
    # the sparse DOS is the dense one on its (window-limited) range
    lo, hi = sparse.dos_energy_eV[0], sparse.dos_energy_eV[-1]
    assert lo < sparse.fermi_energy_eV < hi
    e, d = gaussian_dos(dense.grid.energies, sparse.sigma_eV, 2, (lo, hi))
    np.testing.assert_allclose(e, sparse.dos_energy_eV, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sparse.dos, d, rtol=0, atol=1e-6 * d.max())


def test_dense_dos_counts_the_electrons(small):
    structure, h, s = small
    result = electronic_structure(h, s, structure, use_path=False)
    assert result.k_grid == (4, 4, 1) and result.path is None
    e, dos = result.dos_energy_eV, result.dos
    assert np.trapezoid(dos, e) == pytest.approx(2 * 32, rel=1e-6)  # spin degeneracy 2, 32 bands
    occupied = e <= result.fermi_energy_eV
    assert np.trapezoid(dos[occupied], e[occupied]) == pytest.approx(structure.info["occupation"], abs=1e-3)
    summary = result.summary()
    assert summary["solver"] == "dense" and summary["n_bands"] == 32 and summary["k_path"] is None


def test_molecule_orbital_energies_homo_lumo_and_no_path():
    structure, h, s = _load(WATER / "0")
    result = electronic_structure(h, s, structure)
    assert result.kind == "molecule" and result.path is None and result.k_grid == (1, 1, 1)
    e = orbital_energies(h, s, structure)
    np.testing.assert_allclose(result.grid.energies[0], e, atol=1e-12)
    n_occ = structure.info["occupation"] // 2
    assert result.vbm_eV == e[n_occ - 1] and result.cbm_eV == e[n_occ]
    assert result.summary()["homo_eV"] == e[n_occ - 1] and result.gap_eV == pytest.approx(e[n_occ] - e[n_occ - 1])
    sparse = electronic_structure(h, s, structure, solver="sparse", n_bands=6)
    assert sparse.summary()["lumo_eV"] == pytest.approx(e[n_occ], abs=1e-8)
    assert sparse.fermi_energy_eV == pytest.approx(result.fermi_energy_eV, abs=1e-8)


def test_solver_choice_and_sparse_default_grid(small, large):
    assert choose_solver("auto", 3000) == "dense" and choose_solver("auto", 3001) == "sparse"
    assert choose_solver("dense", 10 ** 6) == "dense"
    with pytest.raises(ValueError, match="solver"):
        choose_solver("lapack", 10)
    structure, h, _ = small
    assert sparse_default_k_grid(h, structure.poscar.lattice) == (4, 4, 1)  # a 4.9 A cell: not a supercell
    big_h, big_lattice, _ = tile_blocks(h, structure.poscar.lattice, structure.poscar.positions, (5, 5, 1))
    assert sparse_default_k_grid(big_h, big_lattice) == (1, 1, 1)  # 24.7 A: Gamma only


def test_missing_occupation_is_refused(small):
    import dataclasses

    structure, h, s = small
    no_occupation = dataclasses.replace(structure, info={k: v for k, v in structure.info.items() if k != "occupation"})
    with pytest.raises(ValueError, match="occupation"):
        electronic_structure(h, s, no_occupation, use_path=False)
