"""SU(2) spin rotations D^{1/2}(Q) and the rotation of spinful (spin-orbit) orbital blocks.

Conventions (``deeph_tf.conventions``: atoms move by r' = Q r):

* :func:`su2_matrix` gives U = D^{1/2}(Q) = exp(-i theta/2 n . sigma) for the rotation by theta about
  the unit axis n, in the basis (spin up, spin down) along z. It satisfies
  U sigma_a U^dagger = sum_b Q_ba sigma_b, i.e. U (v . sigma) U^dagger = (Q v) . sigma, and
  U(Q1) U(Q2) = +-U(Q1 Q2).
* Sign ambiguity: U and -U describe the same rotation (SU(2) covers SO(3) twice). The sign is
  irrelevant for operator blocks: D^{1/2} appears once on each side, H' = (U x D_i) H (U x D_j)^dagger,
  so it cancels. The sign chosen here is the one with Re tr U >= 0 (the quaternion with w >= 0);
  at theta = pi both signs have tr U = 0 and the choice is arbitrary but deterministic.
* Improper rotations (det Q = -1): spin is an axial vector, invariant under inversion, so the spin
  factor is D^{1/2}(det(Q) Q), while the orbital factor D^l(Q) keeps its parity (-1)^l (the real
  Wigner-D of :func:`~deeph_tf.so3.wigner.wigner_D_numpy` is fitted to Y^l(Q r), which contains it).
* Spinful blocks are 2 n_i x 2 n_j, spin outer, orbital inner ([[uu, ud], [du, dd]]), so the full
  rotation of an atom's spin-orbitals is the Kronecker product U (x) U_orb with U_orb the direct sum
  of D^l(Q) over the atom's shells (:func:`spinful_rotation_matrix`), and a block rotates as
  H'_ij = (U (x) U_orb,i) H_ij (U (x) U_orb,j)^dagger (:func:`rotate_spinful_block`).

Written as H = I_2 (x) A + i sum_k sigma_k (x) B_k, this is A' = U_i A U_j^T (a spinless block) and
B'_a = det(Q) sum_k Q_ak U_i B_k U_j^T (an axial vector of orbital blocks).

NumPy, float64 / complex128 (data tools, augmentation, tests); no TensorFlow.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from deeph_tf.so3.wigner import wigner_D_numpy

#: Pauli matrices sigma_x, sigma_y, sigma_z, [3, 2, 2] complex128.
PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128)


def _check_rotation(rotation: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    q = np.asarray(rotation, dtype=np.float64)
    if q.shape != (3, 3):
        raise ValueError(f"expected a [3, 3] rotation matrix, got shape {q.shape}")
    err = float(np.max(np.abs(q @ q.T - np.eye(3))))
    if err > tol:
        raise ValueError(f"matrix is not orthogonal: max |Q Q^T - 1| = {err:.1e} > {tol}")
    return q


def _quaternion(q: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z), w >= 0, of a proper rotation [3, 3] (Shepperd's method)."""
    t = np.trace(q)
    candidates = np.array([t, q[0, 0], q[1, 1], q[2, 2]])
    k = int(np.argmax(candidates))
    if k == 0:
        w = np.sqrt(1.0 + t) / 2
        v = np.array([q[2, 1] - q[1, 2], q[0, 2] - q[2, 0], q[1, 0] - q[0, 1]]) / (4 * w)
        out = np.array([w, *v])
    else:
        i, j, m = k - 1, k % 3, (k + 1) % 3
        s = np.sqrt(1.0 + 2 * q[i, i] - t) / 2  # |component i|
        vec = np.zeros(3)
        vec[i] = s
        vec[j] = (q[j, i] + q[i, j]) / (4 * s)
        vec[m] = (q[m, i] + q[i, m]) / (4 * s)
        w = (q[m, j] - q[j, m]) / (4 * s)
        out = np.array([w, *vec])
    out = out / np.linalg.norm(out)
    return out if out[0] >= 0 else -out


def su2_matrix(rotation: np.ndarray) -> np.ndarray:
    """D^{1/2}(Q) [2, 2] complex128 for a rotation matrix Q [3, 3] (r' = Q r); see the module docstring.

    For an improper Q (det -1) returns D^{1/2}(det(Q) Q) = D^{1/2}(-Q): spin is axial.

    Raises:
        ValueError: if ``rotation`` is not a [3, 3] orthogonal matrix.
    """
    q = _check_rotation(rotation)
    if np.linalg.det(q) < 0:
        q = -q
    w, x, y, z = _quaternion(q)
    return w * np.eye(2, dtype=np.complex128) - 1j * (x * PAULI[0] + y * PAULI[1] + z * PAULI[2])


def orbital_rotation_matrix(shells: Sequence[int], rotation: np.ndarray) -> np.ndarray:
    """U_orb(Q) = direct sum of D^l(Q) over ``shells`` (one l per radial shell); [n_orb, n_orb] float64.

    Improper Q included: D^l(Q) = (-1)^l D^l(-Q).
    """
    sizes = [2 * int(l) + 1 for l in shells]
    u = np.zeros((sum(sizes), sum(sizes)))
    start = 0
    for l, size in zip(shells, sizes):
        u[start:start + size, start:start + size] = wigner_D_numpy(int(l), rotation)
        start += size
    return u


def spinful_rotation_matrix(shells: Sequence[int], rotation: np.ndarray) -> np.ndarray:
    """D^{1/2}(det(Q) Q) (x) U_orb(Q): [2 n_orb, 2 n_orb] complex128, spin outer, orbital inner."""
    q = _check_rotation(rotation)
    return np.kron(su2_matrix(q), orbital_rotation_matrix(shells, q))


def rotate_spinful_block(block: np.ndarray, shells_i: Sequence[int], shells_j: Sequence[int],
                         rotation: np.ndarray) -> np.ndarray:
    """H'_ij = (D^{1/2} (x) U_orb,i) H_ij (D^{1/2} (x) U_orb,j)^dagger for a [2 n_i, 2 n_j] block.

    Args:
        block: spinful block, spin outer ([[uu, ud], [du, dd]]), orbitals of atom i / j inner.
        shells_i, shells_j: l of each radial shell of atom i / j (``elements_orbital_map``).
        rotation: Q [3, 3] orthogonal (r' = Q r).

    Returns:
        [2 n_i, 2 n_j] complex128.

    Raises:
        ValueError: if the block shape does not match the shells.
    """
    u_i = spinful_rotation_matrix(shells_i, rotation)
    u_j = spinful_rotation_matrix(shells_j, rotation)
    b = np.asarray(block)
    if b.shape != (u_i.shape[0], u_j.shape[0]):
        raise ValueError(f"spinful block has shape {b.shape}, expected {(u_i.shape[0], u_j.shape[0])} "
                         f"from shells {list(shells_i)} / {list(shells_j)} (2 x orbitals)")
    return u_i @ b @ u_j.conj().T


__all__ = ["PAULI", "su2_matrix", "orbital_rotation_matrix", "spinful_rotation_matrix", "rotate_spinful_block"]
