"""deeph_tf.so3.su2: D^{1/2}(Q) and the rotation of spinful blocks (numbers only; real DFT data in
tests/data/test_rotation.py and tests/tools/test_spinful_data.py)."""
import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.transform import Rotation

from deeph_tf.so3.su2 import (PAULI, orbital_rotation_matrix, rotate_spinful_block, spinful_rotation_matrix,
                              su2_matrix)
from deeph_tf.so3.wigner import wigner_D_numpy


def _rotations(n, seed):
    return Rotation.random(n, random_state=np.random.default_rng(seed)).as_matrix()


def _special_rotations():
    """Angles 0 and pi about the axes and a diagonal: the branches of the quaternion extraction."""
    out = [np.eye(3)]
    for axis in (*np.eye(3), np.ones(3) / np.sqrt(3), np.array([1.0, -2.0, 0.5]) / np.sqrt(5.25)):
        for angle in (np.pi, np.pi - 1e-9, 0.3, -2.0):
            out.append(Rotation.from_rotvec(angle * axis).as_matrix())
    return out


def test_su2_is_exp_of_pauli_and_unitary():
    for q in list(_rotations(20, 0)) + _special_rotations():
        rotvec = Rotation.from_matrix(q).as_rotvec()
        expected = scipy.linalg.expm(-0.5j * np.einsum("k,kab->ab", rotvec, PAULI))
        u = su2_matrix(q)
        assert min(np.abs(u - expected).max(), np.abs(u + expected).max()) < 1e-10
        np.testing.assert_allclose(u @ u.conj().T, np.eye(2), atol=1e-13)
        assert np.linalg.det(u) == pytest.approx(1.0, abs=1e-13)


def test_su2_rotates_the_pauli_vector():
    """U sigma_a U^dagger = sum_b Q_ba sigma_b, i.e. U (v . sigma) U^dagger = (Q v) . sigma."""
    for q in list(_rotations(30, 1)) + _special_rotations():
        u = su2_matrix(q)
        for a in range(3):
            np.testing.assert_allclose(u @ PAULI[a] @ u.conj().T, np.einsum("b,bij->ij", q[:, a], PAULI),
                                       atol=1e-12)


def test_su2_is_a_homomorphism_up_to_sign():
    qs = _rotations(40, 2)
    signs = set()
    for q1, q2 in zip(qs[::2], qs[1::2]):
        product, direct = su2_matrix(q1) @ su2_matrix(q2), su2_matrix(q1 @ q2)
        if np.abs(product - direct).max() < 1e-12:
            signs.add(1)
        else:
            np.testing.assert_allclose(product, -direct, atol=1e-12)
            signs.add(-1)
    assert signs == {1, -1}  # the double cover really shows up: a sign-blind check would not see -1


def test_improper_rotations_act_on_spin_as_an_axial_vector():
    q = _rotations(1, 3)[0]
    np.testing.assert_allclose(su2_matrix(-q), su2_matrix(q), atol=1e-14)
    np.testing.assert_allclose(su2_matrix(-np.eye(3)), np.eye(2), atol=1e-14)
    shells = [0, 1, 2]
    inversion = spinful_rotation_matrix(shells, -np.eye(3))
    parity = np.diag([1.0] + [-1.0] * 3 + [1.0] * 5)
    np.testing.assert_allclose(inversion, np.kron(np.eye(2), parity), atol=1e-12)
    np.testing.assert_allclose(orbital_rotation_matrix(shells, -q), orbital_rotation_matrix(shells, q) @ parity,
                               atol=1e-12)


def test_non_orthogonal_matrix_is_refused():
    with pytest.raises(ValueError, match="not orthogonal"):
        su2_matrix(np.diag([1.0, 1.0, 1.1]))
    with pytest.raises(ValueError, match=r"\[3, 3\]"):
        su2_matrix(np.eye(2))


def _tr_block(rng, n_i, n_j):
    """A random time-reversal-symmetric block I (x) A + i sum_k sigma_k (x) B_k (real A, B_k), and its parts."""
    a = rng.normal(size=(n_i, n_j))
    b = rng.normal(size=(3, n_i, n_j))
    block = np.kron(np.eye(2), a) + 1j * sum(np.kron(PAULI[k], b[k]) for k in range(3))
    return block, a, b


def _parts(block):
    n_i, n_j = block.shape[0] // 2, block.shape[1] // 2
    uu, ud, du, dd = block[:n_i, :n_j], block[:n_i, n_j:], block[n_i:, :n_j], block[n_i:, n_j:]
    return (uu + dd) / 2, np.stack([(ud + du) / 2j, (ud - du) / 2, (uu - dd) / 2j])


def test_rotated_block_scalar_part_is_spinless_and_spin_part_an_axial_vector():
    """A' = U_i A U_j^T and B'_a = det(Q) sum_k Q_ak U_i B_k U_j^T: the decomposition the model relies on."""
    rng = np.random.default_rng(4)
    shells_i, shells_j = [0, 0, 1, 1, 1], [0, 1, 2]
    block, a, b = _tr_block(rng, 11, 9)
    for q in list(_rotations(3, 5)) + [-_rotations(1, 6)[0]]:
        rotated = rotate_spinful_block(block, shells_i, shells_j, q)
        a2, b2 = _parts(rotated)
        u_i, u_j = orbital_rotation_matrix(shells_i, q), orbital_rotation_matrix(shells_j, q)
        np.testing.assert_allclose(a2, u_i @ a @ u_j.T, atol=1e-12)
        expected_b = np.linalg.det(q) * np.einsum("ak,kij->aij", q, u_i @ b @ u_j.T)
        np.testing.assert_allclose(b2, expected_b, atol=1e-12)
        assert np.abs(a2.imag).max() < 1e-12 and np.abs(b2.imag).max() < 1e-12  # time reversal is kept


def test_rotation_sign_cancels_and_blocks_compose():
    rng = np.random.default_rng(7)
    shells = [0, 1]
    block = rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8))
    q1, q2 = _rotations(2, 8)
    minus = np.kron(-su2_matrix(q1), orbital_rotation_matrix(shells, q1))
    np.testing.assert_allclose(minus @ block @ minus.conj().T, rotate_spinful_block(block, shells, shells, q1),
                               atol=1e-12)
    twice = rotate_spinful_block(rotate_spinful_block(block, shells, shells, q2), shells, shells, q1)
    np.testing.assert_allclose(twice, rotate_spinful_block(block, shells, shells, q1 @ q2), atol=1e-12)
    np.testing.assert_allclose(orbital_rotation_matrix([1], q1), wigner_D_numpy(1, q1), atol=1e-14)
    with pytest.raises(ValueError, match="expected"):
        rotate_spinful_block(block[:6], shells, shells, q1)
