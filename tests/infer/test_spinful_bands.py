"""Bands of spinful (spin-orbit) crystals: Bloch sums of [[uu, ud], [du, dd]] blocks with S (x) 1.

The real CP2K hBN cell (tests/fixtures/hbn_cp2k) is made spinful as H = I_2 (x) A + i sigma_z (x) B
with A the DFT blocks and B_ij(R) = c (d . t) S_ij(R), d the bond vector and t a fixed tilt
(so B_ji(-R) = -B_ij(R)^T: Hermitian and time-reversal symmetric). Such an H is block diagonal in spin, so its bands are
those of A + iB and A - iB together: an exact reference for the spinful code paths.
"""
import dataclasses

import numpy as np
import pytest

from conftest import REPO_ROOT
from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.structure import load_structure
from deeph_tf.infer.electronic import BlochSum, band_structure
from deeph_tf.infer.electronic.bloch import band_energies, bloch_operators
from deeph_tf.infer.electronic.spectrum import electronic_structure
from deeph_tf.so3.spin_blocks import merge_spinful, split_spinful, time_reversal_residual

HBN = REPO_ROOT / "tests" / "fixtures" / "hbn_cp2k" / "dft" / "hBN-000000"
COUPLING = 0.4  # eV / Angstrom: spin-orbit-like B of a few 0.1 eV


def _spinful_hbn():
    """(spinless structure, its spinful copy, H, S, spinful H, the spin-up sector A + iB)."""
    s = load_structure(HBN)
    h, ov = s.read_blocks("hamiltonian"), s.read_blocks("overlap")
    o_index = ov.pair_index()
    tilt = np.array([0.3, 0.2, 1.0])  # d . tilt is non-zero on hBN's in-plane bonds too
    b_z = []
    for rx, ry, rz, i, j in (tuple(int(v) for v in key) for key in h.atom_pairs):
        d = s.poscar.positions[j] + np.array([rx, ry, rz]) @ s.poscar.lattice - s.poscar.positions[i]  # Angstrom
        b_z.append(COUPLING * float(d @ tilt) * ov.blocks[o_index[(rx, ry, rz, i, j)]])
    hs = BlockSet(h.atom_pairs, [merge_spinful(a, np.stack([np.zeros_like(b), np.zeros_like(b), b]))
                                 for a, b in zip(h.blocks, b_z)])
    up = BlockSet(h.atom_pairs, [a + 1j * b for a, b in zip(h.blocks, b_z)])
    spinful = dataclasses.replace(s, info=dict(s.info, spinful=True))
    return s, spinful, h, ov, hs, up


def _without_spin_part(blocks: BlockSet) -> BlockSet:
    """I_2 (x) A of spinful blocks (B dropped)."""
    return BlockSet(blocks.atom_pairs, [merge_spinful(a, np.zeros((3,) + a.shape))
                                        for a in (split_spinful(b)[0] for b in blocks.blocks)])


def test_spinful_blocks_are_hermitian_time_reversal_pairs():
    hs = _spinful_hbn()[4]
    index = hs.pair_index()
    for key, block in zip(hs.atom_pairs, hs.blocks):
        rx, ry, rz, i, j = (int(v) for v in key)
        partner = hs.blocks[index[(-rx, -ry, -rz, j, i)]]
        np.testing.assert_allclose(partner, block.conj().T, atol=1e-12)
        assert time_reversal_residual(block) < 1e-12
    assert max(np.abs(split_spinful(b)[1]).max() for b in hs.blocks) > 0.05  # B of ~0.1 eV


def test_spinful_bands_are_the_two_spin_sectors():
    s, spinful, _, ov, hs, up = _spinful_hbn()
    k = np.array([[0, 0, 0], [0.5, 0, 0], [1 / 3, 1 / 3, 0], [0.1, 0.27, 0]])
    hk, sk = bloch_operators(hs, ov, spinful)
    assert hk.size == 2 * s.atom_orbital_offsets()[-1] == 16
    got = band_energies(hk, sk, k)
    offsets = s.atom_orbital_offsets()
    down = BlockSet(up.atom_pairs, [b.conj() for b in up.blocks])
    s_k = BlochSum(ov, offsets)
    want = np.sort(np.concatenate([band_energies(BlochSum(up, offsets), s_k, k),
                                   band_energies(BlochSum(down, offsets), s_k, k)], axis=1), axis=1)
    np.testing.assert_allclose(got, want, atol=1e-9)
    # Kramers: E_up(k) = E_down(-k), so every level is doubly degenerate at Gamma and M (TRIM)
    # and split elsewhere
    np.testing.assert_allclose(got[:2, 0::2], got[:2, 1::2], atol=1e-9)
    assert np.abs(got[3, 0::2] - got[3, 1::2]).max() > 1e-3


def test_spinful_electronic_structure_dense_and_sparse_agree_and_count_electrons_once():
    s, spinful, h, ov, hs, _ = _spinful_hbn()
    dense = electronic_structure(hs, ov, spinful, solver="dense", k_grid=(4, 4, 1), use_path=False)
    assert dense.n_orbitals == 16 and dense.spin_degeneracy == 1
    assert dense.n_occupied == s.info["occupation"] == 8  # one electron per spin-orbital
    sparse = electronic_structure(hs, ov, spinful, solver="sparse", k_grid=(4, 4, 1), use_path=False, n_bands=12)
    assert sparse.gap_eV == pytest.approx(dense.gap_eV, abs=1e-6)
    assert sparse.vbm_eV == pytest.approx(dense.vbm_eV, abs=1e-6)
    # without the spin part the spinful gap is the spinless one
    plain = _without_spin_part(hs)
    spinless = electronic_structure(h, ov, s, solver="dense", k_grid=(4, 4, 1), use_path=False)
    no_soc = electronic_structure(plain, ov, spinful, solver="dense", k_grid=(4, 4, 1), use_path=False)
    assert no_soc.gap_eV == pytest.approx(spinless.gap_eV, abs=1e-9)
    assert no_soc.fermi_energy_eV == pytest.approx(spinless.fermi_energy_eV, abs=1e-6)
    assert abs(dense.gap_eV - spinless.gap_eV) > 1e-3  # the spin part changes the bands


def test_spinful_band_errors_see_a_spin_orbit_error():
    _, spinful, _, ov, hs, _ = _spinful_hbn()
    exact = band_structure(hs, hs, ov, spinful, k_grid=(3, 3, 1))
    assert exact.mae_meV == pytest.approx(0.0, abs=1e-9)
    no_soc = _without_spin_part(hs)
    wrong = band_structure(no_soc, hs, ov, spinful, k_grid=(3, 3, 1))
    assert wrong.mae_meV > 1.0
