"""deeph_tf.infer.electronic: orbital energies, HOMO-LUMO gaps, Bloch sums, bands, Fermi levels and band plots."""
import dataclasses
import json

import numpy as np
import pytest
import scipy.linalg

from conftest import REPO_ROOT, WATER, requires_shared, shared_path
from deeph_tf.data.block_h5 import BlockSet, blocks_to_dense
from deeph_tf.data.structure import load_structure
from deeph_tf.infer.electronic import (BandErrors, BlochSum, CrystalBands, KPathSegment, MolecularOrbitalErrors,
                                       band_structure, crystal_bands, default_k_grid, fermi_level_from_occupation,
                                       is_molecule, k_grid_points, k_path_points, molecular_orbital_errors,
                                       occupied_count, orbital_energies, physics_errors, plot_bands, read_k_path)

MOLECULES = REPO_ROOT / "tests" / "fixtures" / "mixed_molecules" / "dft"


def _load(folder):
    s = load_structure(folder)
    return s, s.read_blocks("hamiltonian"), s.read_blocks("overlap")


def _plus_mu_s(h: BlockSet, ov: BlockSet, mu: float) -> BlockSet:
    index = ov.pair_index()
    return BlockSet(h.atom_pairs, [b + mu * ov.blocks[index[tuple(int(v) for v in k)]]
                                   for k, b in zip(h.atom_pairs, h.blocks)])


# ---- molecules ----------------------------------------------------------------------------
def test_water_orbital_energies_match_pyscf_and_gap_is_plausible():
    s, h, ov = _load(WATER / "0")
    e = orbital_energies(h, ov, s)
    np.testing.assert_allclose(e, np.loadtxt(WATER / "0" / "mo_energy_eV.txt"), atol=1e-8)
    assert occupied_count(s) == s.info["occupation"] // 2 == 5
    r = molecular_orbital_errors(h, h, ov, s)
    assert r.n_occupied == 5 and list(r.orbital_indices) == [0, 1, 2, 3, 4, 5]  # all occupied + LUMO
    assert r.mae_meV == 0.0 and r.gap_error_meV == 0.0
    assert r.homo_ref_eV < s.fermi_energy_eV < r.lumo_ref_eV
    assert r.homo_ref_eV < 0.0 and 5.0 < r.gap_ref_eV < 10.0  # PBE/def2-SVP water: about 6.9 eV
    assert r.energies_ref_eV[0] < -500.0  # O 1s core


def test_gauge_shift_moves_every_orbital_energy_by_mu():
    s, h, ov = _load(MOLECULES / "methanol-000005")
    mu = 0.37
    r = molecular_orbital_errors(_plus_mu_s(h, ov, mu), h, ov, s)
    assert isinstance(r, MolecularOrbitalErrors)
    np.testing.assert_allclose(r.energies_pred_eV - r.energies_ref_eV, mu, atol=1e-9)
    assert r.mae_meV == pytest.approx(1000 * mu, rel=1e-9) and r.mean_shift_meV == pytest.approx(1000 * mu)
    assert abs(r.mae_shifted_meV) < 1e-6 and abs(r.gap_error_meV) < 1e-6
    assert r.homo_error_meV == pytest.approx(1000 * mu, rel=1e-9)
    assert r.n_occupied == 9 and len(r.orbital_indices) == 10
    window = molecular_orbital_errors(h, h, ov, s, n_occupied_window=2, n_virtual=3)
    assert list(window.orbital_indices) == [7, 8, 9, 10, 11]
    assert physics_errors(h, h, ov, s).to_dict()["kind"] == "molecule"


def test_occupation_from_fermi_energy_or_refusal():
    s, h, ov = _load(MOLECULES / "water-000002")
    info = {k: v for k, v in s.info.items() if k != "occupation"}
    no_occ = dataclasses.replace(s, info=info)
    assert molecular_orbital_errors(h, h, ov, no_occ).n_occupied == 5
    neither = dataclasses.replace(s, info=dict(info, fermi_energy_eV=None))
    with pytest.raises(ValueError, match="water-000002: info.json has no 'occupation'"):
        molecular_orbital_errors(h, h, ov, neither)


@requires_shared
def test_molecules13_without_occupation_or_fermi_is_refused():
    s, h, ov = _load(shared_path("molecules13", "1000"))
    assert is_molecule(h)
    with pytest.raises(ValueError, match="occupation"):
        physics_errors(h, h, ov, s)


# ---- Fermi level from the electron count -----------------------------------------------------
def test_fermi_level_from_occupation_insulator_metal_and_refusals():
    insulator = np.array([[-2.0, -1.0, 1.0, 2.0], [-1.5, -0.5, 0.5, 1.5]])  # [n_k = 2, n_bands = 4]
    assert fermi_level_from_occupation(insulator, 2) == pytest.approx(0.0)  # mid-gap: VBM -0.5, CBM 0.5
    assert fermi_level_from_occupation(insulator, 1) == pytest.approx(-1.25)  # band 0 max -1.5, band 1 min -1
    assert fermi_level_from_occupation(insulator + 0.37, 2) == pytest.approx(0.37)
    # a metal: band 0 (max 0.3) overlaps band 1 (min 0.1); 4 states of 8 filled, 1, 1, 2, 0 per k
    metal = np.array([[-1.0, 0.5], [0.2, 1.5], [-0.8, 0.1], [0.3, 2.0]])
    fermi = fermi_level_from_occupation(metal, 1)
    assert fermi == pytest.approx(0.25)  # between the 4th (0.2) and 5th (0.3) energy
    assert list((metal < fermi).sum(axis=1)) == [1, 1, 2, 0]
    # two crossing cosine bands, half filled: E_F at the crossing, 0, inside both bands
    k = np.arange(8) / 8
    cosine = np.stack([-2 * np.cos(2 * np.pi * k), 2 * np.cos(2 * np.pi * k)], axis=1)
    assert fermi_level_from_occupation(cosine, 1) == pytest.approx(0.0, abs=1e-12)
    for bad in (0, 4):
        with pytest.raises(ValueError, match="occupied bands of 4"):
            fermi_level_from_occupation(insulator, bad)
    with pytest.raises(ValueError, match=r"\[n_k, n_bands\]"):
        fermi_level_from_occupation(insulator.ravel(), 1)


# ---- k-points -----------------------------------------------------------------------------
def test_k_grids_and_path_parsing(tmp_path):
    g = k_grid_points((2, 3, 1))
    assert g.shape == (6, 3) and np.all(g[0] == 0.0) and np.allclose(sorted(set(g[:, 1])), [0, 1 / 3, 2 / 3])
    mp = k_grid_points((2, 2, 2), gamma_centered=False)
    assert np.allclose(sorted(set(mp[:, 0])), [-0.25, 0.25])
    path = tmp_path / "K_PATH"
    path.write_text("3 0 0 0 0.5 0 0 G M\n\n2 0.5 0.5 0 0 0 0 X G  # jump\n")
    segs = read_k_path(path)
    assert segs[0] == KPathSegment(3, (0.0, 0.0, 0.0), (0.5, 0.0, 0.0), "G", "M")
    pts = k_path_points(segs, np.eye(3))
    assert pts.k_frac.shape == (5, 3)
    assert pts.tick_labels == ["G", "M|X", "G"]
    assert pts.tick_distance[1] == pytest.approx(np.pi)  # |0.5 b1| with b1 = 2 pi / 1 Angstrom
    path.write_text("3 0 0 0 0.5 0 G M\n")
    with pytest.raises(ValueError, match="K_PATH:1: cannot parse"):
        read_k_path(path)


# ---- periodic (shared DeepH-dock data) ------------------------------------------------------
@requires_shared
def test_mote2_bloch_sums_hermitian_and_phase_convention():
    s, h, ov = _load(shared_path("periodic", "MoTe2"))
    assert not is_molecule(h) and default_k_grid(h) == (4, 4, 1)  # vacuum along c: no R3 != 0
    off = s.atom_orbital_offsets()
    hs, ss = BlochSum(h, off), BlochSum(ov, off)
    n_occ = occupied_count(s)
    assert n_occ == 23  # occupation 46, spinless
    for k in ([0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [1 / 3, 1 / 3, 0.0], [0.137, 0.291, 0.0]):
        hk, sk = blocks_to_dense(h, off, k), blocks_to_dense(ov, off, k)
        np.testing.assert_allclose(hs(k), hk, atol=1e-10)
        np.testing.assert_allclose(ss(k), sk, atol=1e-12)
        assert np.max(np.abs(hk - hk.conj().T)) < 1e-6  # H(k) Hermitian (data to ~1e-8 eV)
        assert np.linalg.eigvalsh(0.5 * (sk + sk.conj().T)).min() > 0.0  # S(k) positive definite
        e = scipy.linalg.eigh(0.5 * (hk + hk.conj().T), 0.5 * (sk + sk.conj().T), eigvals_only=True)
        # the physical check of the assembly: exactly occupation / 2 bands below the DFT Fermi level
        assert int(np.sum(e < s.fermi_energy_eV)) == n_occ
    # at Gamma the real blocks give a real symmetric problem; its eigenvalues are real
    e_gamma = scipy.linalg.eigvals(hs(), ss())
    assert np.abs(e_gamma.imag).max() < 1e-8
    np.testing.assert_allclose(np.sort(e_gamma.real), scipy.linalg.eigh(hs(), ss(), eigvals_only=True), atol=1e-8)


@requires_shared
def test_mote2_k_path_bands_and_plot(tmp_path):
    folder = shared_path("periodic", "MoTe2")
    s, h, ov = _load(folder)
    segs = read_k_path(folder / "K_PATH")
    assert [(g.n_points, g.label_start, g.label_end) for g in segs] == [(50, "GAMMA", "M"), (30, "M", "K"),
                                                                        (60, "K", "GAMMA")]
    assert segs[1].k_end == pytest.approx((1 / 3, 1 / 3, 0.0))
    full = k_path_points(segs, s.poscar.lattice)
    assert full.k_frac.shape == (140, 3) and full.tick_labels == ["GAMMA", "M", "K", "GAMMA"]
    assert np.all(np.diff(full.distance) >= 0.0)
    coarse = [dataclasses.replace(g, n_points=4) for g in segs]  # keep the test fast
    mu = 0.05
    r = band_structure(_plus_mu_s(h, ov, mu), h, ov, s, k_path=coarse)
    assert isinstance(r, BandErrors) and r.energies_ref_eV.shape == (12, 57)
    assert r.energies_ref_eV.dtype == np.float64
    assert r.n_occupied == 23 and r.fermi_source == "info.json"
    assert 0.8 < r.gap_ref_eV < 1.3  # monolayer 2H-MoTe2, PBE: about 1 eV at K
    assert abs(r.gap_error_meV) < 1e-6
    assert r.n_compared > 0 and r.mae_meV == pytest.approx(1000 * mu, rel=1e-8)
    assert r.mae_shifted_meV < 1e-6
    png = plot_bands(r, tmp_path / "bands.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    d = r.to_dict()
    assert d["kind"] == "bands" and "energies_ref_eV" not in d and d["tick_labels"][0] == "GAMMA"


@requires_shared
def test_si_grid_fermi_only():
    s, h, ov = _load(shared_path("periodic", "Si"))
    assert "occupation" not in s.info
    r = band_structure(h, h, ov, s, k_grid=(2, 2, 2))
    assert r.k_source == "grid 2x2x2" and r.energies_ref_eV.shape == (8, 26)
    assert r.n_occupied == 4  # 8 valence electrons, counted below the DFT Fermi energy at every k
    assert r.mae_meV == 0.0 and r.gap_error_meV == 0.0 and r.gap_ref_eV > 0.0


@requires_shared
def test_mote2_path_and_grid_of_h_plus_1meV_s():
    """H + 1e-3 eV * S shifts every band by exactly 1 meV: raw MAE 1, shifted 0, gap 0, E_F error 1 meV."""
    folder = shared_path("periodic", "MoTe2")
    s, h, ov = _load(folder)
    r = crystal_bands(_plus_mu_s(h, ov, 1e-3), h, ov, s)
    assert isinstance(r, CrystalBands) and r.main is r.path
    assert r.path.k_source == f"K_PATH {folder / 'K_PATH'}" and r.path.energies_ref_eV.shape == (140, 57)
    assert r.grid.k_source == "grid 4x4x1" and r.grid.energies_ref_eV.shape == (16, 57)
    for part in (r.path, r.grid):
        assert part.n_compared == int(np.sum(np.abs(part.energies_ref_eV - s.fermi_energy_eV) <= 2.0)) > 0
        assert part.mae_meV == pytest.approx(1.0, rel=1e-6) and part.max_abs_meV == pytest.approx(1.0, rel=1e-6)
        assert part.mae_shifted_meV < 1e-6 and abs(part.gap_error_meV) < 1e-6
    assert r.path.gap_ref_eV < r.grid.gap_ref_eV  # K (the direct gap) is on the path, not on the 4x4 grid
    g = r.grid
    assert r.path.fermi_pred_eV is None and r.path.fermi_error_meV is None  # a path gives no Fermi level
    vbm, cbm = g.energies_ref_eV[:, 22].max(), g.energies_ref_eV[:, 23].min()  # 23 occupied bands
    assert g.fermi_ref_occupation_eV == pytest.approx(0.5 * (vbm + cbm), abs=1e-12)  # insulator: mid-gap
    assert abs(g.fermi_ref_occupation_eV - s.fermi_energy_eV) > 1e-3  # not info.json's value
    assert g.fermi_error_meV == pytest.approx(1.0, rel=1e-6)
    assert g.fermi_pred_eV == pytest.approx(g.fermi_ref_occupation_eV + 1e-3, abs=1e-9)
    # the window centre is info.json's, the Fermi levels are not: moving it changes only the window
    moved = dataclasses.replace(s, info=dict(s.info, fermi_energy_eV=s.fermi_energy_eV + 0.5))
    m = crystal_bands(_plus_mu_s(h, ov, 1e-3), h, ov, moved, window_eV=0.5).grid
    assert m.fermi_pred_eV == pytest.approx(g.fermi_pred_eV, abs=1e-12) and m.window_eV == 0.5
    assert m.n_compared == int(np.sum(np.abs(m.energies_ref_eV - s.fermi_energy_eV - 0.5) <= 0.5))
    assert 0 < m.n_compared < g.n_compared
    d = r.to_dict()
    assert d["kind"] == "bands" and d["k_grid"]["n_k"] == 16 and d["k_path"]["n_k"] == 140
    assert d["fermi_error_meV"] == pytest.approx(1.0, rel=1e-6) and d["fermi_energy_eV"] == s.fermi_energy_eV
    assert "energies_ref_eV" not in d["k_grid"] and json.loads(json.dumps(d)) == d
    # a given path replaces the folder's K_PATH; a given grid the default one
    coarse = [dataclasses.replace(seg, n_points=3) for seg in read_k_path(folder / "K_PATH")]
    other = crystal_bands(None, h, ov, s, k_path=coarse, k_grid=(2, 2, 1))
    assert other.path.k_source == "k-path" and len(other.path.k_frac) == 9 and other.grid.k_source == "grid 2x2x1"
    assert other.path.mae_meV is None and other.grid.fermi_pred_eV is None
    assert other.grid.fermi_ref_occupation_eV is not None


@requires_shared
def test_si_without_k_path_gets_the_grid_and_a_fermi_level_from_the_count():
    s, h, ov = _load(shared_path("periodic", "Si"))
    r = crystal_bands(_plus_mu_s(h, ov, 1e-3), h, ov, s)
    assert r.path is None and r.main is r.grid and r.grid.k_source == "grid 4x4x4"
    g = r.grid
    assert g.n_occupied == 4 and g.mae_meV == pytest.approx(1.0, rel=1e-6) and g.mae_shifted_meV < 1e-6
    assert abs(g.gap_error_meV) < 1e-6 and g.fermi_error_meV == pytest.approx(1.0, rel=1e-6)
    assert g.energies_ref_eV[:, 3].max() < g.fermi_ref_occupation_eV < g.energies_ref_eV[:, 4].min()
    assert r.to_dict()["k_path"] is None
