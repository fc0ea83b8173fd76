"""Spin-orbit metrics of crystals at the K_PATH corners, on the real periodic SOC data of
examples/soc_crystal (PySCF k-point GKS of displaced rock-salt LiI with the I spin-orbit ECP).

A prediction equal to DFT scores zero; one whose spin-orbit part B is scaled by 0.9 moves every
SOC shift and splitting by about 10% and leaves the scalar part alone.
"""
import numpy as np
import pytest

from conftest import REPO_ROOT
from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.structure import load_structure
from deeph_tf.infer.electronic.kpoints import read_k_path
from deeph_tf.infer.electronic.spin_orbit import high_symmetry_points, spin_orbit_errors, spin_orbit_levels
from deeph_tf.so3.spin_blocks import merge_spinful, split_spinful

LII = REPO_ROOT / "examples" / "soc_crystal" / "data" / "dft" / "LiI-000000"


def _scaled_soc(blocks: BlockSet, factor: float) -> BlockSet:
    return BlockSet(blocks.atom_pairs, [merge_spinful(a, factor * b) for a, b in map(split_spinful, blocks.blocks)])


def test_high_symmetry_points_are_the_distinct_k_path_corners():
    points = high_symmetry_points(read_k_path(LII / "K_PATH"))
    labels = [label for label, _ in points]
    assert labels == ["GAMMA", "X", "W", "K", "L", "U"]
    np.testing.assert_allclose(dict(points)["L"], [0.5, 0.5, 0.5])


def test_spin_orbit_errors_at_k_points_of_a_crystal():
    st = load_structure(LII)
    h, s = st.read_blocks("hamiltonian"), st.read_blocks("overlap")
    points = high_symmetry_points(read_k_path(LII / "K_PATH"))
    worse = _scaled_soc(h, 0.9)
    for label, k in points:
        same = spin_orbit_errors(h, h, s, st, k_frac=k, k_label=label)
        assert same.shift_mae_meV == 0.0 and same.k_label == label and same.k_frac == list(k)
        off = spin_orbit_errors(worse, h, s, st, k_frac=k, k_label=label)
        ref = np.abs(off.shifts_ref_eV).mean() * 1000
        assert 0.03 * ref < off.shift_mae_meV < 0.2 * ref  # ~10% of the SOC shifts (second order: less)
    # Gamma differs from a general point, and Kramers pairs are degenerate at Gamma only among these two
    full_g, _ = spin_orbit_levels(h, s, st)
    full_w, _ = spin_orbit_levels(h, s, st, dict(points)["W"])
    np.testing.assert_allclose(full_g[0::2], full_g[1::2], atol=1e-8)
    assert np.abs(full_w - full_g).max() > 0.1


def test_gamma_default_is_unchanged_for_the_k_argument():
    st = load_structure(LII)
    h, s = st.read_blocks("hamiltonian"), st.read_blocks("overlap")
    a = spin_orbit_errors(_scaled_soc(h, 0.8), h, s, st)
    b = spin_orbit_errors(_scaled_soc(h, 0.8), h, s, st, k_frac=np.zeros(3))
    assert a.k_label == "Gamma" and a.shift_mae_meV == pytest.approx(b.shift_mae_meV, abs=1e-12)
