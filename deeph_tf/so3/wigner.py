"""Real Wigner-D matrices D^l(Q) in DeepH's m-order (p = y, z, x).

Contract (checked in tests/so3/test_wigner.py):
    Y^l(Q r) = D^l(Q) Y^l(r),   D^l(Q1 Q2) = D^l(Q1) D^l(Q2),   D^l(Q)^T D^l(Q) = 1,
and for orbital blocks H'_ij = D^{l_i}(Q) H_ij D^{l_j}(Q)^T when atoms move by r' = Q r.

Two constructions, both XLA-compatible and differentiable:

* :func:`wigner_D` from rotation matrices [..., 3, 3]. Because Y^l spans an invariant
  subspace, D^l(Q) is the exact least-squares solution of Y^l(Q p_k) = D Y^l(p_k) on a
  fixed, well-conditioned set of unit vectors p_k: D^l(Q) = (A^+ Y^l(Q P))^T with
  A = Y^l(P) and its pseudo-inverse A^+ tabulated once in float64. No Euler angles, so
  no gimbal lock.
* :func:`wigner_D_from_euler` from z-y-z Euler angles: D(Rz(a) Ry(b) Rz(g)) =
  Dz(a) J Dz(b) J^T Dz(g), where Dz is the sparse rotation about z and J = D(Rx(-pi/2))
  turns the z axis into the y axis. Cheap per edge (used for SO(2) convolutions).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from deeph_tf.conventions import LMAX_SUPPORTED
from deeph_tf.so3.spherical_harmonics import _check_lmax, spherical_harmonics, spherical_harmonics_numpy

#: Number of fixed sample directions used to fit D (>> 2 * LMAX_SUPPORTED + 1).
_N_SAMPLE_DIRECTIONS = 72


@lru_cache(maxsize=None)
def _sample_directions() -> np.ndarray:
    """Fibonacci-sphere unit vectors, [n, 3] float64 (deterministic)."""
    n = _N_SAMPLE_DIRECTIONS
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    phi = np.pi * (1.0 + np.sqrt(5.0)) * k
    rho = np.sqrt(1.0 - z * z)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=-1)


@lru_cache(maxsize=None)
def _fit_pseudo_inverse(l: int) -> np.ndarray:
    """A^+ for A = Y^l(P): [2l+1, n_directions] float64."""
    harmonics = spherical_harmonics_numpy(l, _sample_directions())[:, l * l :]
    return np.linalg.pinv(harmonics)


def wigner_D_numpy(l: int, rotation: np.ndarray) -> np.ndarray:
    """Float64 NumPy D^l(Q) for rotation matrices [..., 3, 3]; returns [..., 2l+1, 2l+1]."""
    _check_lmax(l)
    q = np.asarray(rotation, dtype=np.float64)
    rotated = np.einsum("...ij,nj->...ni", q, _sample_directions())
    harmonics = spherical_harmonics_numpy(l, rotated)[..., l * l :]  # [..., n, 2l+1]
    return np.swapaxes(np.einsum("mn,...nk->...mk", _fit_pseudo_inverse(l), harmonics), -1, -2)


def wigner_D(lmax: int, rotation):
    """Real Wigner-D matrices of rotation matrices, TensorFlow op.

    Args:
        lmax: largest l (0..8).
        rotation: [..., 3, 3] float tensor of proper rotations (r' = Q r).

    Returns:
        list over l = 0..lmax of [..., 2l+1, 2l+1] tensors in the dtype of ``rotation``.
    """
    import tensorflow as tf

    _check_lmax(lmax)
    q = tf.convert_to_tensor(rotation)
    directions = tf.constant(_sample_directions(), dtype=q.dtype)
    rotated = tf.einsum("...ij,nj->...ni", q, directions)
    harmonics = spherical_harmonics(lmax, rotated)  # [..., n, (lmax+1)^2]
    out = []
    for l in range(lmax + 1):
        pinv = tf.constant(_fit_pseudo_inverse(l), dtype=q.dtype)
        out.append(tf.einsum("mn,...nk->...km", pinv, harmonics[..., l * l : (l + 1) ** 2]))
    return out


@lru_cache(maxsize=None)
def _z_to_y_matrix(l: int) -> np.ndarray:
    """J^l = D^l(Rx(-pi/2)): Rx(-pi/2) maps e_z to e_y, so Ry(b) = Rx Rz(b) Rx^T."""
    rx = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    return wigner_D_numpy(l, rx)


def z_rotation_D(l: int, angle):
    """D^l(Rz(angle)) for angles [...] (TensorFlow), returns [..., 2l+1, 2l+1].

    In the real basis, m and -m mix as a 2x2 rotation by m * angle:
    D[m, m] = cos(m a), D[-m, m] = sin(m a), D[m, -m] = -sin(m a) for m > 0.
    """
    import tensorflow as tf

    angle = tf.convert_to_tensor(angle)
    m = tf.constant(np.arange(-l, l + 1), dtype=angle.dtype)
    m_angle = angle[..., None] * m  # [..., 2l+1]
    flip = tf.constant(np.fliplr(np.eye(2 * l + 1)), dtype=angle.dtype)
    return tf.linalg.diag(tf.cos(m_angle)) + flip * tf.sin(-m_angle)[..., :, None]


def wigner_D_from_euler(l: int, alpha, beta, gamma):
    """D^l(Rz(alpha) Ry(beta) Rz(gamma)) for angle tensors [...] (radians); [..., 2l+1, 2l+1]."""
    import tensorflow as tf

    _check_lmax(l)
    alpha = tf.convert_to_tensor(alpha)
    j = tf.constant(_z_to_y_matrix(l), dtype=alpha.dtype)
    d_beta = tf.matmul(tf.matmul(j, z_rotation_D(l, beta)), j, transpose_b=True)
    return tf.matmul(tf.matmul(z_rotation_D(l, alpha), d_beta), z_rotation_D(l, gamma))


def edge_alignment_angles(vectors):
    """Euler angles (alpha, beta) of a rotation Rz(alpha) Ry(beta) that maps e_z onto each vector.

    Args:
        vectors: [..., 3] tensor (need not be normalized; zero vectors give alpha = beta = 0).
    Returns:
        (alpha, beta), each [...]. D^l(alpha, beta, 0)^T rotates a feature into the frame where
        the edge lies along z: the frame eSCN-style SO(2) convolutions work in.
    """
    import tensorflow as tf

    v = tf.convert_to_tensor(vectors)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    rho_sq = x * x + y * y
    safe_rho = tf.sqrt(tf.where(rho_sq > 0, rho_sq, tf.ones_like(rho_sq)))
    rho = tf.where(rho_sq > 0, safe_rho, tf.zeros_like(rho_sq))
    alpha = tf.where(rho_sq > 0, tf.atan2(y, tf.where(rho_sq > 0, x, tf.ones_like(x))), tf.zeros_like(x))
    nonzero = (rho_sq > 0) | tf.not_equal(z, 0)
    beta = tf.where(nonzero, tf.atan2(rho, tf.where(nonzero, z, tf.ones_like(z))), tf.zeros_like(z))
    return alpha, beta


__all__ = [
    "wigner_D",
    "wigner_D_numpy",
    "wigner_D_from_euler",
    "z_rotation_D",
    "edge_alignment_angles",
    "LMAX_SUPPORTED",
]
