"""Real DFT data pin the m-order and the rotation convention of the SO(3) core.

Copies 1-3 of a rotated water molecule must hold the blocks of copy 0 rotated as
U_i H_ij U_j^T (U = direct sum of real Wigner-D over shells), with Q from `euler_angle`.
Spinful (spin-orbit) copies of HI must hold (D^1/2 x U_i) H_ij (D^1/2 x U_j)^dagger, for a
proper and an improper Q (``rotation_matrix``).
"""
import numpy as np
import pytest

from conftest import REPO_ROOT, requires_shared, shared_path
from deeph_tf.conventions import euler_zyz_to_matrix
from deeph_tf.data.block_h5 import BlockSet
from deeph_tf.data.rotation import compare_rotated_copy, orbital_rotation_matrix, rotate_blocks
from deeph_tf.data.structure import load_structure
from deeph_tf.so3.rotations import random_rotation_matrices
from deeph_tf.so3.su2 import su2_matrix

OWN_FIXTURE = REPO_ROOT / "examples" / "water_rotated" / "dft"
#: HI in three orientations (copy 2 improper), each a PySCF GKS+SOC run (tools/make_rotated_spinful.py).
SPINFUL_ROTATED = REPO_ROOT / "tests" / "fixtures" / "spinful_rotated" / "dft"


def _copies(folder):
    reference = load_structure(folder / "0")
    for name in ("1", "2", "3"):
        angles = [float(v) for v in (folder / name / "euler_angle").read_text().split()]
        yield reference, load_structure(folder / name), euler_zyz_to_matrix(*angles)


@requires_shared
def test_deeph_dock_water_rotated_matches_wigner_D():
    """FHI-aims data from DeepH-dock: ~1e-3 eV is what the data allow (5-decimal positions)."""
    for reference, copy, rotation in _copies(shared_path("water_rotated")):
        h = compare_rotated_copy(reference, copy, rotation, "hamiltonian")
        assert h.max_abs_error < 1e-3, (copy.name, h)
        assert set(h.max_abs_by_shell_pair) == {(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)}
        s = compare_rotated_copy(reference, copy, rotation, "overlap")
        assert s.max_abs_error < 1e-5, (copy.name, s)


@requires_shared
def test_wrong_convention_fails_on_real_data():
    """Negative control: the inverse rotation (or a swapped m-order) is off by eV, not meV."""
    reference, copy, rotation = next(_copies(shared_path("water_rotated")))
    assert compare_rotated_copy(reference, copy, rotation.T, "hamiltonian").max_abs_error > 1.0


def test_own_pyscf_fixture_rotates_exactly():
    """PySCF PBE/def2-SVP water, grid rotated with the molecule: exact up to SCF convergence."""
    for reference, copy, rotation in _copies(OWN_FIXTURE):
        for name, tolerance in (("hamiltonian", 1e-8), ("overlap", 1e-12), ("density_matrix", 1e-9)):
            result = compare_rotated_copy(reference, copy, rotation, name)
            assert result.max_abs_error < tolerance, (copy.name, name, result)
        assert compare_rotated_copy(reference, copy, rotation.T, "hamiltonian").max_abs_error > 1e-2


def test_rotate_blocks_round_trip_and_spectrum():
    structure = load_structure(OWN_FIXTURE / "0")
    blocks = structure.read_blocks("hamiltonian")
    rotation = random_rotation_matrices(1, seed=4).numpy()[0]
    there = rotate_blocks(structure, blocks, rotation)
    back = rotate_blocks(structure, there, rotation.T)
    for a, b in zip(blocks.blocks, back.blocks):
        np.testing.assert_allclose(a, b, atol=1e-10)
    u = orbital_rotation_matrix([0, 0, 1, 1, 2], rotation)
    np.testing.assert_allclose(u @ u.T, np.eye(13), atol=1e-12)
    on_site = there.block((0, 0, 0, 0, 0))
    np.testing.assert_allclose(
        np.linalg.eigvalsh(on_site), np.linalg.eigvalsh(blocks.block((0, 0, 0, 0, 0))), atol=1e-9
    )


def test_doubled_blocks_need_a_spinful_structure():
    """Complex spinless blocks rotate like real ones; doubled (spinful) shapes in a spinless folder are refused."""
    structure = load_structure(OWN_FIXTURE / "0")
    blocks = structure.read_blocks("overlap")
    rotation = random_rotation_matrices(1, seed=5).numpy()[0]
    complex_blocks = BlockSet(blocks.atom_pairs, [b.astype(complex) for b in blocks.blocks])
    for a, b in zip(rotate_blocks(structure, complex_blocks, rotation).blocks,
                    rotate_blocks(structure, blocks, rotation).blocks):
        np.testing.assert_allclose(a, b, atol=1e-14)
    doubled = BlockSet(blocks.atom_pairs, [np.kron(np.eye(2), b) for b in blocks.blocks])
    with pytest.raises(ValueError, match="spinful"):
        rotate_blocks(structure, doubled, np.eye(3))


def _spinful_copies():
    reference = load_structure(SPINFUL_ROTATED / "0")
    for name in ("1", "2"):
        yield reference, load_structure(SPINFUL_ROTATED / name), np.loadtxt(SPINFUL_ROTATED / name / "rotation_matrix")


def test_spinful_pyscf_copies_rotate_with_su2_exactly():
    """Real GKS+SOC data: copy k = (D^1/2 x U_i) H_0 (D^1/2 x U_j)^dagger, proper and improper Q."""
    for reference, copy, rotation in _spinful_copies():
        assert copy.spinful
        for name, tolerance in (("hamiltonian", 1e-9), ("density_matrix", 1e-10), ("overlap", 1e-12)):
            result = compare_rotated_copy(reference, copy, rotation, name)
            assert result.max_abs_error < tolerance, (copy.name, name, result)
        assert set(result.max_abs_by_shell_pair) == {(0, 0), (0, 1), (1, 1)}


def _spin_flip_b(block):
    """I (x) A + i sigma.B -> I (x) A - i sigma.B (B polar under inversion instead of axial, or time-reversed)."""
    n_i, n_j = block.shape[0] // 2, block.shape[1] // 2
    uu, ud, du, dd = block[:n_i, :n_j], block[:n_i, n_j:], block[n_i:, :n_j], block[n_i:, n_j:]
    a = (uu + dd) / 2
    return 2 * np.kron(np.eye(2), a) - block


def test_wrong_spin_conventions_fail_on_spinful_data():
    """Negative controls: no spin rotation, the conjugate SU(2) matrix, or a polar spin are off by >> 1e-9."""
    for reference, copy, rotation in _spinful_copies():
        h0, h1 = reference.read_blocks("hamiltonian"), copy.read_blocks("hamiltonian")
        predicted = rotate_blocks(reference, h0, rotation)
        key = (0, 0, 0, 1, 1)  # the I on-site block: largest spin-orbit part
        shells = reference.orbital_shells(1)
        no_spin = np.kron(np.eye(2), orbital_rotation_matrix(shells, rotation))
        assert np.abs(no_spin @ h0.block(key) @ no_spin.T - h1.block(key)).max() > 1e-2
        conj = np.kron(su2_matrix(rotation).conj(), orbital_rotation_matrix(shells, rotation))
        assert np.abs(conj @ h0.block(key) @ conj.conj().T - h1.block(key)).max() > 1e-2
        assert np.abs(predicted.block(key) - h1.block(key)).max() < 1e-9
        if np.linalg.det(rotation) < 0:  # polar spin would flip B under the inversion
            assert np.abs(_spin_flip_b(predicted.block(key)) - h1.block(key)).max() > 1e-2


def test_rotate_spinful_structure_round_trip_and_spectrum():
    structure = load_structure(SPINFUL_ROTATED / "0")
    blocks = structure.read_blocks("hamiltonian")
    rotation = random_rotation_matrices(1, seed=9).numpy()[0]
    there = rotate_blocks(structure, blocks, rotation)
    assert there.is_complex and there.block((0, 0, 0, 0, 1)).shape == (10, 22)
    back = rotate_blocks(structure, there, rotation.T)
    for a, b in zip(blocks.blocks, back.blocks):
        np.testing.assert_allclose(a, b, atol=1e-12)
    on_site = (0, 0, 0, 1, 1)
    np.testing.assert_allclose(np.linalg.eigvalsh(there.block(on_site)), np.linalg.eigvalsh(blocks.block(on_site)),
                               atol=1e-10)
    overlap = rotate_blocks(structure, structure.read_blocks("overlap"), rotation)  # spinless in a spinful folder
    assert not overlap.is_complex and overlap.block(on_site).shape == (11, 11)
    # time reversal survives the rotation: the spin parts stay real
    n = 11
    b = there.block(on_site)
    for part in ((b[:n, :n] + b[n:, n:]) / 2, (b[:n, :n] - b[n:, n:]) / 2j, (b[:n, n:] + b[n:, :n]) / 2j,
                 (b[:n, n:] - b[n:, :n]) / 2):
        assert np.abs(part.imag).max() < 1e-12
