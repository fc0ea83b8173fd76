"""Spinful blocks: split/merge, time reversal, Hermiticity, SU(2) rotation, the spin coupling."""
import numpy as np
import pytest
import tensorflow as tf

from deeph_tf.so3.rotations import random_rotation_matrices
from deeph_tf.so3.spin_blocks import (PAULI, SpinBlockCoupling, merge_spinful, merge_spinful_tf, rotate_spin_vector,
                                      split_spinful, split_spinful_tf, time_reversal_residual)
from deeph_tf.so3.wigner import wigner_D_numpy


def _su2(q):
    """D^{1/2}(Q) = exp(-i theta n.sigma / 2) for a proper rotation Q (axis n, angle theta)."""
    angle = np.arccos(np.clip((np.trace(q) - 1) / 2, -1, 1))
    axis = np.array([q[2, 1] - q[1, 2], q[0, 2] - q[2, 0], q[1, 0] - q[0, 1]])
    axis = axis / np.linalg.norm(axis)
    return np.cos(angle / 2) * np.eye(2) - 1j * np.sin(angle / 2) * np.einsum("k,kab->ab", axis, PAULI)


def _shell_rotation(shells, q):
    """Orbital rotation of a shell list under the O(3) matrix Q: D^l(det Q Q) det(Q)^l per shell."""
    det = np.sign(np.linalg.det(q))
    blocks = [wigner_D_numpy(l, q * det) * det**l for l in shells]
    n = sum(len(b) for b in blocks)
    out, start = np.zeros((n, n)), 0
    for b in blocks:
        out[start:start + len(b), start:start + len(b)] = b
        start += len(b)
    return out


def test_split_merge_round_trip_and_components():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 3, 5)), rng.normal(size=(4, 3, 3, 5))
    h = merge_spinful(a, b)
    assert h.shape == (4, 6, 10) and h.dtype == np.complex128
    expected = np.kron(np.eye(2), a[1]) + 1j * sum(np.kron(PAULI[k], b[1, k]) for k in range(3))
    np.testing.assert_allclose(h[1], expected, atol=1e-14)
    a2, b2 = split_spinful(h)
    np.testing.assert_allclose(a2, a, atol=1e-14)
    np.testing.assert_allclose(b2, b, atol=1e-14)
    assert time_reversal_residual(h) < 1e-14


def test_time_reversal_symmetry_and_residual():
    rng = np.random.default_rng(1)
    h = merge_spinful(rng.normal(size=(3, 3)), rng.normal(size=(3, 3, 3)))
    theta = np.kron(-1j * PAULI[1], np.eye(3))  # Theta = -i sigma_y K
    np.testing.assert_allclose(theta @ h.conj() @ np.linalg.inv(theta), h, atol=1e-13)
    magnetic = h + np.kron(PAULI[2], 0.01 * np.eye(3))  # a Zeeman term breaks TR
    assert time_reversal_residual(magnetic) == pytest.approx(0.01)


def test_hermiticity_in_terms_of_a_and_b():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, 5)), rng.normal(size=(3, 3, 5))
    h_ij = merge_spinful(a, b)
    h_ji = merge_spinful(a.T, -np.swapaxes(b, -1, -2))
    np.testing.assert_allclose(h_ji, h_ij.conj().T, atol=1e-14)


@pytest.mark.parametrize("shells_i,shells_j", [([1], [2]), ([0, 1], [1, 2])])
def test_su2_rotation_equals_axial_rotation_of_b(shells_i, shells_j):
    rng = np.random.default_rng(3)
    di, dj = _shell_rotation(shells_i, np.eye(3)).shape[0], _shell_rotation(shells_j, np.eye(3)).shape[0]
    a, b = rng.normal(size=(di, dj)), rng.normal(size=(3, di, dj))
    for q in random_rotation_matrices(3, seed=4):
        q = np.asarray(q)
        u = _su2(q)
        left, right = np.kron(u, _shell_rotation(shells_i, q)), np.kron(u, _shell_rotation(shells_j, q))
        rotated = left @ merge_spinful(a, b) @ right.conj().T
        ri, rj = _shell_rotation(shells_i, q), _shell_rotation(shells_j, q)
        expected = merge_spinful(ri @ a @ rj.T, rotate_spin_vector(ri @ b @ rj.T, q))
        np.testing.assert_allclose(rotated, expected, atol=1e-12)


def test_tf_split_merge_match_numpy():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 3, 4))
    h = merge_spinful_tf(tf.constant(a), tf.constant(b)).numpy()
    np.testing.assert_allclose(h, merge_spinful(a, b), atol=1e-14)
    a2, b2 = split_spinful_tf(tf.constant(h))
    np.testing.assert_allclose(a2.numpy(), a, atol=1e-14)
    np.testing.assert_allclose(b2.numpy(), b, atol=1e-14)
    assert merge_spinful_tf(tf.constant(a, tf.float32), tf.constant(b, tf.float32)).dtype == tf.complex64


def test_spin_coupling_orthogonal_and_equivariant():
    shells = [0, 1, 2]
    coupling = SpinBlockCoupling(shells, [0, 1])
    w = coupling.matrix
    assert w.shape == (3 * 9 * 4, 3 * 9 * 4) and coupling.irreps.dim == w.shape[1]
    np.testing.assert_allclose(w.T @ w, np.eye(w.shape[1]), atol=1e-12)
    rng = np.random.default_rng(6)
    b = rng.normal(size=(3, 9, 4))
    for q in list(random_rotation_matrices(2, seed=7)) + [-np.eye(3)]:
        q = np.asarray(q)
        ri, rj = _shell_rotation(shells, q), _shell_rotation([0, 1], q)
        rotated = rotate_spin_vector(ri @ b @ rj.T, q)
        irreps, irreps_rotated = coupling.to_irreps_numpy(b), coupling.to_irreps_numpy(rotated)
        det = np.linalg.det(q)
        for (_, ir), part in zip(coupling.irreps, coupling.irreps.slices()):
            d = wigner_D_numpy(ir.l, q * det) * (det if ir.p == -1 else 1.0)
            np.testing.assert_allclose(irreps_rotated[part], d @ irreps[part], atol=1e-10)
    np.testing.assert_allclose(coupling.to_block_numpy(coupling.to_irreps_numpy(b)), b, atol=1e-12)


def test_spin_coupling_refuses_too_large_shells():
    with pytest.raises(ValueError, match="at most l = 3"):
        SpinBlockCoupling([4], [0])
